"""Autoencoder: reconstruct the input (MSE); a grid of inputs above their reconstructions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, first, save_grid

# layerloom: end local imports


def as_images(x, info):
    shape = info.get("image_shape")
    if shape and x[0].numel() == shape[0] * shape[1] * shape[2]:
        return x.reshape(len(x), *shape)
    return None


class AutoencoderRecipe(Recipe):
    name = "autoencoder"
    networks = {"net": "takes the inputs and returns a reconstruction of the same size"}
    defaults = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 10}
    metric = ("loss", "min")

    def adapt(self, input_specs):
        """Inputs in [0, 1], the range of the Sigmoid the templates end with."""
        super().adapt(input_specs)
        self.data.rescale(0.0, 1.0)

    def _loss(self, x):
        with self.autocast():
            recon = first(self.nets["net"](x)).float()
        return F.mse_loss(recon, x.reshape(recon.shape)), recon

    def train_step(self, batch, step):
        loss, _ = self._loss(batch[0])
        self.opt.step(loss)
        return {"loss": loss}

    @torch.no_grad()
    def evaluate(self):
        total, n = 0.0, 0
        for batch in self.val_batches():
            total += float(self._loss(batch[0])[0]) * len(batch[0])
            n += len(batch[0])
        return {"loss": total / max(1, n)}

    @torch.no_grad()
    def samples(self, step, out_dir):
        x = self.data.batch("val", torch.arange(min(8, self.data.size("val"))), self.device)[0]
        _, recon = self._loss(x)
        imgs = as_images(torch.cat([x.reshape(len(x), -1), recon.reshape(len(x), -1)]),
                         self.data.info)
        s = save_grid(out_dir, f"recon_{step:06d}.png", imgs, nrow=len(x)) \
            if imgs is not None else None
        return [s] if s else []


RECIPE = AutoencoderRecipe
