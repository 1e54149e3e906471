"""Classification: cross-entropy on class logits; top-1 accuracy and a confusion matrix."""

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

    def train_step(self, batch, step):
        x, y = batch[0], batch[1]
        with self.autocast():
            logits = first(self.nets["net"](x))
            loss = F.cross_entropy(logits.float(), y)
        self.opt.step(loss)
        if not self.logs_after(step):
            return {"loss": loss}
        return {"loss": loss, "accuracy": (logits.detach().argmax(-1) == y).float().mean()}

    @torch.no_grad()
    def evaluate(self):
        k = int(self.data.info.get("num_classes", 0))
        total, correct, loss_sum, conf = 0, 0, 0.0, None
        for x, y in self.val_batches():
            with self.autocast():
                logits = first(self.nets["net"](x)).float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            pred = logits.argmax(-1)
            correct += int((pred == y).sum())
            total += len(y)
            k = max(k, logits.shape[-1])
            m = torch.bincount(y * k + pred, minlength=k * k).reshape(k, k).cpu()
            conf = m if conf is None or conf.shape != m.shape else conf + m
        self.confusion = conf
        return {"loss": loss_sum / max(1, total), "accuracy": correct / max(1, total)}

    @torch.no_grad()
    def samples(self, step, out_dir):
        if getattr(self, "confusion", None) is None:
            return []
        labels = self.data.info.get("labels") or [str(i) for i in range(len(self.confusion))]
        return [{"kind": "confusion", "matrix": self.confusion.tolist(),
                 "labels": list(labels)[:len(self.confusion)]}]


RECIPE = ClassificationRecipe
