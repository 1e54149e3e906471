"""Variational autoencoder: an autoencoder whose code is a distribution, so it can be sampled."""

from __future__ import annotations

from compiler import Project, add_network

from .registry import register


@register("vae-digits", "VAE", "small",
          "Variational autoencoder: the encoder gives a mean and log-variance per latent "
          "dimension, Reparameterize samples z = mu + eps·sigma (differentiable), the decoder "
          "rebuilds the pixels. The KL term in the loss keeps the latent space smooth, so new "
          "digits can be drawn from N(0, 1). Outputs, in order: recon [N, 64], mu, logvar "
          "[N, 8]. Trains on the flattened 8×8 digits.",
          "vae", "digits-flat", layout="LR")
def vae_digits() -> Project:
    p = Project()
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 64])
    h = g.chain(x, ("linear.linear", {"out_features": 64}, "enc"),
                ("activation.relu", {}, "enc_act"))[-1]
    mu = g.add("linear.linear", "to_mu", out_features=8)
    logvar = g.add("linear.linear", "to_logvar", out_features=8)
    g.connect(h, mu)
    g.connect(h, logvar)
    z = g.add("generative.reparameterize", "z")
    g.connect(mu, z, "y", "mu")
    g.connect(logvar, z, "y", "logvar")
    g.chain(z, ("linear.linear", {"out_features": 64}, "dec"), ("activation.relu", {}, "dec_act"),
            ("linear.linear", {"out_features": 64}, "dec_out"),
            ("activation.sigmoid", {}, "squash"),
            ("io.output", {}, "recon"))
    g.connect(mu, g.add("io.output", "mu"))
    g.connect(logvar, g.add("io.output", "logvar"))
    return p
