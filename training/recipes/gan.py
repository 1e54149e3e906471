"""GAN: alternating discriminator and generator updates (two optimisers), non-saturating loss;
a sample grid from fixed noise, so progress is comparable between steps."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, first, save_grid

# layerloom: end local imports


class GANRecipe(Recipe):
    name = "gan"
    networks = {"generator": "takes noise [N, nz] and returns images shaped like the data",
                "discriminator": "takes images and returns real/fake logits [N, 1]"}
    defaults = {"optimizer": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "batch_size": 64,
                "epochs": 20}
    metric = ("g_loss", "min")

    def adapt(self, input_specs):
        if input_specs.get("discriminator"):
            self.data.fit_input(0, input_specs["discriminator"][0][0], "network 'discriminator'")
        self.data.rescale(-1.0, 1.0)  # the generator ends with a Tanh
        dims = input_specs.get("generator", [(("N", 64), "float")])[0][0]
        self.noise_shape = tuple(int(d) for d in dims[1:])
        g = torch.Generator().manual_seed(1234)
        self.fixed_noise = torch.randn(64, *self.noise_shape, generator=g)

    def param_groups(self):
        return {"d": list(self.nets["discriminator"].parameters()),
                "g": list(self.nets["generator"].parameters())}

    def train_step(self, batch, step):
        real = batch[0]
        gen, disc = self.nets["generator"], self.nets["discriminator"]
        z = torch.randn(len(real), *self.noise_shape, device=real.device)
        with self.autocast():
            fake = first(gen(z))
            d_real = first(disc(real)).float()
            d_fake = first(disc(fake.detach().reshape(real.shape))).float()
            d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
                F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        self.opt.step(d_loss, "d")
        with self.autocast():
            g_out = first(disc(fake.reshape(real.shape))).float()
            g_loss = F.binary_cross_entropy_with_logits(g_out, torch.ones_like(g_out))
        self.opt.step(g_loss, "g")
        return {"loss": d_loss.detach() + g_loss.detach(), "d_loss": d_loss.detach(),
                "g_loss": g_loss.detach(),
                "d_real": torch.sigmoid(d_real.detach()).mean()}

    @torch.no_grad()
    def evaluate(self):
        real = self.data.batch("val", torch.arange(min(256, self.data.size("val"))), self.device)[0]
        z = torch.randn(len(real), *self.noise_shape, device=self.device)
        fake = first(self.nets["generator"](z)).reshape(real.shape)
        d_real = first(self.nets["discriminator"](real)).float()
        d_fake = first(self.nets["discriminator"](fake)).float()
        d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        g_loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        return {"loss": float(d_loss + g_loss), "d_loss": float(d_loss), "g_loss": float(g_loss)}

    @torch.no_grad()
    def samples(self, step, out_dir):
        fake = first(self.nets["generator"](self.fixed_noise.to(self.device))).float()
        shape = self.data.info.get("image_shape")
        if shape and fake[0].numel() == shape[0] * shape[1] * shape[2]:
            fake = fake.reshape(len(fake), *shape)
        if fake.dim() != 4:
            return []
        s = save_grid(out_dir, f"fake_{step:06d}.png", fake)
        return [s] if s else []

    def extra_state(self):
        return {"fixed_noise": self.fixed_noise}

    def load_extra_state(self, state):
        if "fixed_noise" in state:
            self.fixed_noise = state["fixed_noise"]


RECIPE = GANRecipe
