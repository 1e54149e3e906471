"""Causal language modelling: next-token cross-entropy, perplexity, sampled text."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, TrainingFault, first

# layerloom: end local imports


class LanguageModelRecipe(Recipe):
    name = "language_model"
    networks = {"net": "takes token ids [N, T] (long) and returns logits [N, T, vocab]"}
    defaults = {"optimizer": "adamw", "lr": 3e-3, "batch_size": 32, "steps": 600,
                "schedule": "cosine", "warmup_steps": 20, "grad_clip": 1.0}
    metric = ("perplexity", "min")

    def adapt(self, input_specs):
        dims = input_specs["net"][0][0] if input_specs.get("net") else ("N", "T")
        t = self.data.train[0].shape[1] - 1
        self.fixed_length = len(dims) > 1 and isinstance(dims[1], int)
        self.block = dims[1] if self.fixed_length else t
        if self.block > t:
            raise TrainingFault(f"the network takes {self.block} tokens but the data windows "
                                f"hold {t}", f"set the dataset's seq_len to {self.block}", "data")
        if self.block < t:
            self.data.train = (self.data.train[0][:, :self.block + 1],)
            self.data.val = (self.data.val[0][:, :self.block + 1],)

    def _loss(self, ids):
        with self.autocast():
            logits = first(self.nets["net"](ids[:, :-1])).float()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))

    def train_step(self, batch, step):
        loss = self._loss(batch[0])
        self.opt.step(loss)
        return {"loss": loss}

    @torch.no_grad()
    def evaluate(self):
        total, n = 0.0, 0
        for (ids,) in self.val_batches():
            total += float(self._loss(ids)) * len(ids)
            n += len(ids)
        loss = total / max(1, n)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}

    @torch.no_grad()
    def generate(self, prompt, length, temperature=0.8):
        ids = prompt
        block = getattr(self, "block", prompt.shape[1])
        for _ in range(length):
            ctx = ids[:, -block:]
            if ctx.shape[1] < block and getattr(self, "fixed_length", False):
                ctx = F.pad(ctx, (block - ctx.shape[1], 0), value=0)
            logits = first(self.nets["net"](ctx)).float()[:, -1] / temperature
            nxt = torch.multinomial(F.softmax(logits, -1), 1)
            ids = torch.cat([ids, nxt], 1)
        return ids

    @torch.no_grad()
    def samples(self, step, out_dir):
        itos = self.data.info.get("itos")
        prompt = self.data.val[0][:1, :min(16, self.block)].to(self.device)
        ids = self.generate(prompt, int(self.hp.get("sample_length", 200)))[0].tolist()
        text = "".join(itos[i] if itos and i < len(itos) else f"<{i}>" for i in ids)
        return [{"kind": "text", "text": text}]


RECIPE = LanguageModelRecipe
