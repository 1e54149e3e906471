"""Regression: mean squared error; reports MAE too (in the data's units when it was scaled)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, first

# layerloom: end local imports


class RegressionRecipe(Recipe):
    name = "regression"
    networks = {"net": "takes the inputs and returns predictions [N, targets]"}
    defaults = {"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 50}
    metric = ("mae", "min")

    def _pred(self, x, y):
        with self.autocast():
            pred = first(self.nets["net"](x)).float()
        return pred, y.float().reshape(pred.shape)

    def train_step(self, batch, step):
        pred, y = self._pred(batch[0], batch[1])
        loss = F.mse_loss(pred, y)
        self.opt.step(loss)
        return {"loss": loss, "mae": (pred.detach() - y).abs().mean()}

    @torch.no_grad()
    def evaluate(self):
        n, se, ae = 0, 0.0, 0.0
        for x, y in self.val_batches():
            pred, y = self._pred(x, y)
            se += float(((pred - y) ** 2).sum())
            ae += float((pred - y).abs().sum())
            n += y.numel()
        scale = float(self.data.info.get("target_std", 1.0))
        return {"loss": se / max(1, n), "mae": ae / max(1, n) * scale}


RECIPE = RegressionRecipe
