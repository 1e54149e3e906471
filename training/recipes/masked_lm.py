"""Masked language modelling (BERT-style): loss and accuracy on 15% of the tokens, chosen at
random. Of those, 80% become the mask id, 10% a random token, 10% stay."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, first

# layerloom: end local imports


class MaskedLMRecipe(Recipe):
    name = "masked_lm"
    networks = {"net": "takes token ids [N, T] (long) and returns logits [N, T, vocab]"}
    defaults = {"optimizer": "adamw", "lr": 1e-3, "batch_size": 32, "steps": 600,
                "schedule": "cosine", "warmup_steps": 20, "grad_clip": 1.0}
    metric = ("masked_accuracy", "max")

    def adapt(self, input_specs):
        dims = input_specs["net"][0][0] if input_specs.get("net") else ("N", "T")
        t = self.data.train[0].shape[1] - 1
        block = dims[1] if len(dims) > 1 and isinstance(dims[1], int) else t
        block = min(block, t)
        self.data.train = (self.data.train[0][:, :block],)
        self.data.val = (self.data.val[0][:, :block],)

    def _mask(self, ids, vocab):
        """The mask id is the first id past the data's vocabulary when the model has room."""
        data_vocab = int(self.data.info.get("vocab", vocab))
        mask_id = data_vocab if vocab > data_vocab else vocab - 1
        p = float(self.hp.get("mask_prob", 0.15))
        chosen = torch.rand(ids.shape, device=ids.device) < p
        r = torch.rand(ids.shape, device=ids.device)
        inp = ids.clone()
        inp[chosen & (r < 0.8)] = mask_id
        rand_pos = chosen & (r >= 0.8) & (r < 0.9)
        inp[rand_pos] = torch.randint(0, data_vocab, ids.shape, device=ids.device)[rand_pos]
        return inp, chosen

    def _step(self, ids):
        vocab = getattr(self, "vocab", None)
        if vocab is None:
            with torch.no_grad():
                vocab = self.vocab = first(self.nets["net"](ids[:1])).shape[-1]
        inp, chosen = self._mask(ids, vocab)
        with self.autocast():
            logits = first(self.nets["net"](inp)).float()
        sel = logits[chosen]
        loss = F.cross_entropy(sel, ids[chosen]) if len(sel) else logits.sum() * 0
        acc = (sel.argmax(-1) == ids[chosen]).float().mean() if len(sel) else loss * 0
        return loss, acc

    def train_step(self, batch, step):
        loss, acc = self._step(batch[0])
        self.opt.step(loss)
        return {"loss": loss, "masked_accuracy": acc.detach()}

    @torch.no_grad()
    def evaluate(self):
        tl, ta, n = 0.0, 0.0, 0
        for (ids,) in self.val_batches():
            loss, acc = self._step(ids)
            tl, ta, n = tl + float(loss) * len(ids), ta + float(acc) * len(ids), n + len(ids)
        loss = tl / max(1, n)
        return {"loss": loss, "masked_accuracy": ta / max(1, n),
                "perplexity": math.exp(min(loss, 50.0))}


RECIPE = MaskedLMRecipe
