"""Classification: cross-entropy on class logits; top-1 accuracy.

The app also shows a confusion matrix (:mod:`training.appside`); train.py leaves it out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, first

# layerloom: end local imports


class ClassificationRecipe(Recipe):
    name = "classification"
    networks = {"net": "takes the inputs and returns class logits [N, classes]"}
    defaults = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 10}
    metric = ("accuracy", "max")

    def loss(self, x, y):
        """The forward pass and the loss: what the optimised mode compiles, as one graph."""
        with self.autocast():
            logits = first(self.nets["net"](x))
        return F.cross_entropy(logits.float(), y), logits

    def compile(self):
        """Optimised mode: compile :meth:`loss` (evaluation runs the network eagerly)."""
        self.loss = torch.compile(self.loss)
        return lambda: delattr(self, "loss")

    def train_step(self, batch, step):
        loss, logits = self.loss(batch[0], batch[1])
        self.opt.step(loss)
        if not self.logs_now:
            return {"loss": loss}
        return {"loss": loss, "accuracy": (logits.detach().argmax(-1) == batch[1]).float().mean()}

    @torch.no_grad()
    def evaluate(self):
        total, correct, loss_sum = 0, 0, 0.0
        for x, y in self.val_batches():
            with self.autocast():
                logits = first(self.nets["net"](x)).float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct, total = correct + int((logits.argmax(-1) == y).sum()), total + len(y)
        return {"loss": loss_sum / max(1, total), "accuracy": correct / max(1, total)}


RECIPE = ClassificationRecipe
