"""BYOL: an online encoder+projector+predictor chases a target encoder+projector that is an
exponential moving average of the online one (tau rises from ``ema`` to 1 on a cosine); the loss is
symmetric over the two views. Judged, like SimCLR, by a linear probe of the frozen encoder."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, augment, first, linear_probe, unwrap

# layerloom: end local imports


def byol_loss(p, z):
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1).mean()


class BYOLRecipe(Recipe):
    name = "byol"
    networks = {"encoder": "takes images and returns features [N, D]",
                "projector": "takes the features and returns embeddings [N, K]",
                "predictor": "takes embeddings [N, K] and returns [N, K]"}
    defaults = {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "steps": 300, "ema": 0.95}
    metric = ("probe_accuracy", "max")

    def param_groups(self):
        """The predictor learns faster than the rest (``predictor_lr_scale``, 10 by default):
        a predictor that keeps up with the target is what BYOL's analyses (DirectPred, SimSiam)
        find makes the features useful rather than merely non-collapsed."""
        scale = float(self.hp.get("predictor_lr_scale", 10.0))
        rest = [p for k in ("encoder", "projector") for p in self.nets[k].parameters()]
        return {"main": [{"params": rest},
                         {"params": list(self.nets["predictor"].parameters()),
                          "lr": float(self.hp["lr"]) * scale}]}

    def adapt(self, input_specs):
        self.initial_encoder = copy.deepcopy(unwrap(self.nets["encoder"]))
        self.target_encoder = copy.deepcopy(unwrap(self.nets["encoder"])).requires_grad_(False)
        self.target_projector = copy.deepcopy(unwrap(self.nets["projector"])).requires_grad_(False)
        if input_specs.get("encoder"):
            self.data.fit_input(0, input_specs["encoder"][0][0], "network 'encoder'")

    def online(self, x):
        z = first(self.nets["projector"](first(self.nets["encoder"](x))))
        return first(self.nets["predictor"](z)).float()

    @torch.no_grad()
    def target(self, x):
        return first(self.target_projector(first(self.target_encoder(x)))).float()

    def train_step(self, batch, step):
        x = batch[0]
        v1, v2 = augment(x), augment(x)
        with self.autocast():
            loss = byol_loss(self.online(v1), self.target(v2)) + \
                byol_loss(self.online(v2), self.target(v1))
        self.opt.step(loss)
        total = max(1, int(self.hp.get("total_steps", 1)))
        base = float(self.hp.get("ema", 0.99))
        tau = 1 - (1 - base) * (math.cos(math.pi * step / total) + 1) / 2
        with torch.no_grad():
            for online, target in ((self.nets["encoder"], self.target_encoder),
                                   (self.nets["projector"], self.target_projector)):
                for po, pt in zip(unwrap(online).parameters(), target.parameters(),
                                  strict=True):
                    pt.mul_(tau).add_(po.detach(), alpha=1 - tau)
                for bo, bt in zip(unwrap(online).buffers(), target.buffers(), strict=True):
                    bt.copy_(bo)
        return {"loss": loss}

    def train_mode(self, on=True):
        super().train_mode(on)
        self.target_encoder.train(on)
        self.target_projector.train(on)

    @torch.no_grad()
    def evaluate(self):
        out = {"probe_accuracy": linear_probe(self.nets["encoder"], self)}
        if getattr(self, "initial_encoder", None) is not None:
            self.initial_encoder.eval()
            self.probe_baseline = linear_probe(self.initial_encoder, self)
            self.initial_encoder = None
        if getattr(self, "probe_baseline", None) is not None:
            out["probe_baseline"] = self.probe_baseline
        return out

    def extra_state(self):
        state = {"target_encoder": self.target_encoder.state_dict(),
                 "target_projector": self.target_projector.state_dict()}
        if getattr(self, "probe_baseline", None) is not None:
            state["probe_baseline"] = self.probe_baseline
        return state

    def load_extra_state(self, state):
        self.target_encoder.load_state_dict(state["target_encoder"])
        self.target_projector.load_state_dict(state["target_projector"])
        if "probe_baseline" in state:
            self.probe_baseline, self.initial_encoder = state["probe_baseline"], None


RECIPE = BYOLRecipe
