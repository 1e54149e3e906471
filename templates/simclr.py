"""SimCLR (Chen et al. 2020): learn image features without labels by contrasting augmented views."""

from __future__ import annotations

from compiler import Project

from .common import conv_encoder, mlp_head
from .registry import register


@register("simclr-small", "SimCLR", "small",
          "Self-supervised contrastive learning: the recipe makes two random augmentations of "
          "each image; the encoder (three conv-BN-ReLU stages, global pooling: image -> 64 "
          "features) and the projection head (64 -> 64 -> 32) are trained so the two views of an "
          "image land close together and other images far apart (NT-Xent loss). The projection "
          "head absorbs the augmentation-specific detail, leaving better features before it. "
          "Networks: encoder, projector. Trains on the built-in shapes, labels unused.",
          "simclr", "shapes32", layout="LR")
def simclr_small() -> Project:
    p = Project()
    conv_encoder(p, "encoder", widths=(32, 64, 64))
    mlp_head(p, "projector", features=64, hidden=64, out=32, batch_norm=False)
    return p
