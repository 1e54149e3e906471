"""Sequence to sequence: teacher forcing in training; greedy decoding, exact match in validation.
The network takes (src [N, S], tgt_in [N, T]) and returns logits [N, T, vocab];
tgt_in is the target shifted right behind the BOS id."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, first

# layerloom: end local imports


class Seq2SeqRecipe(Recipe):
    name = "seq2seq"
    networks = {"net": "takes (src [N, S], tgt [N, T]) token ids and returns logits [N, T, vocab]"}
    defaults = {"optimizer": "adamw", "lr": 2e-3, "batch_size": 64, "steps": 800,
                "schedule": "cosine", "warmup_steps": 20, "grad_clip": 1.0}
    metric = ("exact_match", "max")

    def adapt(self, input_specs):
        pass

    def _shift(self, tgt):
        bos = torch.full_like(tgt[:, :1], int(self.data.info.get("bos", 0)))
        return torch.cat([bos, tgt[:, :-1]], 1)

    def train_step(self, batch, step):
        src, tgt = batch
        with self.autocast():
            logits = first(self.nets["net"](src, self._shift(tgt))).float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        self.opt.step(loss)
        return {"loss": loss, "token_accuracy": (logits.detach().argmax(-1) == tgt).float().mean()}

    @torch.no_grad()
    def greedy(self, src, length):
        """Decode one position at a time; positions not yet decoded hold BOS (a causal decoder
        never looks at them)."""
        bos = int(self.data.info.get("bos", 0))
        out = torch.full((src.shape[0], length), bos, dtype=torch.long, device=src.device)
        for i in range(length):
            logits = first(self.nets["net"](src, self._shift(out)))
            out[:, i] = logits[:, i].argmax(-1)
        return out

    @torch.no_grad()
    def evaluate(self):
        n, exact, tl = 0, 0, 0.0
        for src, tgt in self.val_batches():
            logits = first(self.nets["net"](src, self._shift(tgt))).float()
            tl += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))) \
                * len(src)
            pred = self.greedy(src, tgt.shape[1])
            exact += int((pred == tgt).all(1).sum())
            n += len(src)
        return {"loss": tl / max(1, n), "exact_match": exact / max(1, n)}

    @torch.no_grad()
    def samples(self, step, out_dir):
        src, tgt = self.data.batch("val", torch.arange(min(4, self.data.size("val"))), self.device)
        pred = self.greedy(src, tgt.shape[1])
        lines = [f"{s.tolist()} -> {p.tolist()} (want {t.tolist()})"
                 for s, p, t in zip(src, pred, tgt, strict=True)]
        return [{"kind": "text", "text": "\n".join(lines)}]


RECIPE = Seq2SeqRecipe
