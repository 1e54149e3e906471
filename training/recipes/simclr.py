"""SimCLR: two augmented views per image, NT-Xent loss with a temperature; the frozen encoder is
judged by a linear probe (ridge classifier on its features), beside the probe of the encoder as
it was before training."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, augment, first, linear_probe, unwrap

# layerloom: end local imports


def nt_xent(z1, z2, temperature):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


class SimCLRRecipe(Recipe):
    name = "simclr"
    networks = {"encoder": "takes images and returns features [N, D]",
                "projector": "takes the features and returns embeddings [N, K]"}
    defaults = {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "steps": 300,
                "temperature": 0.5}
    metric = ("probe_accuracy", "max")

    def adapt(self, input_specs):
        self.initial_encoder = copy.deepcopy(unwrap(self.nets["encoder"]))
        if input_specs.get("encoder"):
            self.data.fit_input(0, input_specs["encoder"][0][0], "network 'encoder'")

    def embed(self, x):
        return first(self.nets["projector"](first(self.nets["encoder"](x)))).float()

    def train_step(self, batch, step):
        x = batch[0]
        with self.autocast():
            loss = nt_xent(self.embed(augment(x)), self.embed(augment(x)),
                           float(self.hp.get("temperature", 0.5)))
        self.opt.step(loss)
        return {"loss": loss}

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
        base = getattr(self, "probe_baseline", None)
        return {"probe_baseline": base} if base is not None else {}

    def load_extra_state(self, state):
        if "probe_baseline" in state:
            self.probe_baseline, self.initial_encoder = state["probe_baseline"], None


RECIPE = SimCLRRecipe
