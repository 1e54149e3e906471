"""BYOL (Grill et al. 2020): self-supervised learning with no negative pairs at all."""

from __future__ import annotations

from compiler import Project

from .common import conv_encoder, mlp_head
from .registry import register


@register("byol-small", "BYOL", "small",
          "Bootstrap Your Own Latent: an online network (encoder -> projector -> predictor) "
          "learns to predict, from one augmented view, what a slowly moving average of itself "
          "(the target, kept by the recipe) projects from another view. The predictor and the "
          "moving-average target are what stop it from collapsing without negatives. Networks: "
          "encoder (image -> 64), projector (64 -> 128 -> 32, batch norm), predictor "
          "(32 -> 128 -> 32). Trains on the built-in shapes, labels unused.",
          "byol", "shapes32", layout="LR")
def byol_small() -> Project:
    p = Project()
    conv_encoder(p, "encoder", widths=(32, 64, 64))
    mlp_head(p, "projector", features=64, hidden=128, out=32, batch_norm=True)
    mlp_head(p, "predictor", features=32, hidden=128, out=32, batch_norm=True)
    return p
