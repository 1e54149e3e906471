"""Variational autoencoder: reconstruction (BCE, data in [0, 1]) + beta * KL(q(z|x) || N(0, I));
samples from the prior.

Two shapes of project fit: networks 'encoder' (x -> mu, logvar) and 'decoder' (z -> x), where the
recipe draws z; or one network 'net' (x -> recon, mu, logvar) that samples z itself (then the
image grid shows reconstructions, since there is no decoder to feed prior samples to).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, save_grid

# layerloom: end local imports


def as_images(x, info):
    shape = info.get("image_shape")
    if shape and x[0].numel() == shape[0] * shape[1] * shape[2]:
        return x.reshape(len(x), *shape)
    return None


class VAERecipe(Recipe):
    name = "vae"
    networks = {"net": "takes the inputs and returns (reconstruction, mu, logvar)"}
    alternatives = [{"encoder": "takes the inputs and returns (mu, logvar)",
                     "decoder": "takes z [N, latent] and returns a reconstruction"}]
    defaults = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 20}
    metric = ("loss", "min")

    def adapt(self, input_specs):
        self.split = "encoder" in self.nets
        role = "encoder" if "encoder" in self.nets else "net"
        if input_specs.get(role):
            self.data.fit_input(0, input_specs[role][0][0], f"network '{role}'")
        self.data.rescale(0.0, 1.0)  # the reconstruction is a Sigmoid output; the loss is BCE
        if input_specs.get("decoder"):
            self.latent = input_specs["decoder"][0][0][1]

    def forward(self, x):
        if self.split:
            mu, logvar = self.nets["encoder"](x)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            recon = self.nets["decoder"](z)
        else:
            recon, mu, logvar = self.nets["net"](x)
        return recon.float(), mu.float(), logvar.float()

    def _loss(self, x):
        with self.autocast():
            recon, mu, logvar = self.forward(x)
        n = len(x)
        rec = F.binary_cross_entropy(recon.clamp(1e-6, 1 - 1e-6), x.reshape(recon.shape),
                                     reduction="sum") / n
        kl = -0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp()) / n
        return rec + float(self.hp.get("beta", 1.0)) * kl, rec, kl, recon

    def train_step(self, batch, step):
        loss, rec, kl, _ = self._loss(batch[0])
        self.opt.step(loss)
        return {"loss": loss, "recon": rec.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def evaluate(self):
        tl, tr, tk, n = 0.0, 0.0, 0.0, 0
        for batch in self.val_batches():
            loss, rec, kl, _ = self._loss(batch[0])
            k = len(batch[0])
            tl, tr, tk, n = tl + float(loss) * k, tr + float(rec) * k, tk + float(kl) * k, n + k
        return {"loss": tl / max(1, n), "recon": tr / max(1, n), "kl": tk / max(1, n)}

    @torch.no_grad()
    def samples(self, step, out_dir):
        """Reconstructions (row 1: data, row 2: the model's) and samples from the prior: with
        a decoder, z ~ N(0, I) is fed to it; in one network, each Reparameterize layer's z is
        replaced by N(0, I) draws (a forward hook), so what follows it decodes the prior."""
        x = self.data.batch("val", torch.arange(min(8, self.data.size("val"))), self.device)[0]
        recon = self._loss(x)[3]
        out = []
        imgs = as_images(torch.cat([x.reshape(len(x), -1), recon.reshape(len(x), -1)]),
                         self.data.info)
        s = save_grid(out_dir, f"recon_{step:06d}.png", imgs, nrow=len(x)) \
            if imgs is not None else None
        if s:
            out.append({**s, "title": "Reconstructions", "rows": ["data", "model"]})
        prior = self._prior(16)
        imgs = as_images(prior, self.data.info) if prior is not None else None
        s = save_grid(out_dir, f"prior_{step:06d}.png", imgs) if imgs is not None else None
        if s:
            out.append({**s, "title": "Samples from the prior z ~ N(0, I)",
                        "rows": ["prior"] * ((len(imgs) + 7) // 8)})
        return out

    def _prior(self, n):
        g = torch.Generator().manual_seed(0)
        if self.split and isinstance(getattr(self, "latent", None), int):
            z = torch.randn(n, self.latent, generator=g).to(self.device)
            return self.nets["decoder"](z).float()
        layers = [m for m in self.nets["net"].modules() if type(m).__name__ == "Reparameterize"]
        if not layers:
            return None

        def draw(_module, _inputs, z):
            return torch.randn(z.shape, generator=g).to(z.device, z.dtype)

        hooks = [m.register_forward_hook(draw) for m in layers]
        try:
            x = self.data.batch("val", torch.arange(min(n, self.data.size("val"))),
                                self.device)[0]
            return self.nets["net"](x)[0].float()
        finally:
            for h in hooks:
                h.remove()


RECIPE = VAERecipe
