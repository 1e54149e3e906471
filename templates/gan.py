"""GAN (Goodfellow et al. 2014) in the DCGAN style (Radford et al. 2015): two networks, one game.

The generator turns noise into images; the discriminator scores images as real or generated.
DCGAN's rules: strided (transposed) convolutions instead of pooling, batch norm in both networks
(but not at the generator's output or the discriminator's input), ReLU in the generator with a
Tanh output, LeakyReLU(0.2) in the discriminator.
"""

from __future__ import annotations

from compiler import Graph, Project, add_network

from .registry import register


def _up(g: Graph, h: str, i: int, out: int, *, k: int = 4, s: int = 2, pad: int = 1,
        last: bool = False) -> str:
    conv = {"out_channels": out, "kernel_size": k, "stride": s, "padding": pad, "bias": False}
    if last:
        return g.chain(h, ("conv.conv_transpose2d", {**conv, "bias": True}, f"up{i}"),
                       ("activation.tanh", {}, "to_image"))[-1]
    return g.chain(h, ("conv.conv_transpose2d", conv, f"up{i}"),
                   ("norm.batch_norm2d", {}, f"bn{i}"), ("activation.relu", {}, f"relu{i}"))[-1]


def _down(g: Graph, h: str, i: int, out: int, *, bn: bool) -> str:
    items: list = [("conv.conv2d", {"out_channels": out, "kernel_size": 4, "stride": 2,
                                    "padding": 1, "bias": not bn}, f"conv{i}")]
    if bn:
        items.append(("norm.batch_norm2d", {}, f"bn{i}"))
    items.append(("activation.leaky_relu", {"negative_slope": 0.2}, f"lrelu{i}"))
    return g.chain(h, *items)[-1]


@register("gan-dcgan-small", "GAN", "small",
          "A DCGAN for the 8×8 digits: the generator maps 16 noise numbers through a Linear and "
          "two transposed convolutions to a [1, 8, 8] image (Tanh, in [-1, 1]); the "
          "discriminator's two strided convolutions with LeakyReLU end in one real/fake logit. "
          "Networks: generator (z [N, 16]), discriminator (image -> [N, 1]).",
          "gan", "digits", layout="LR")
def gan_dcgan_small() -> Project:
    p = Project()
    g = add_network(p, "generator")
    z = g.add("io.input", "z", shape=["N", 16])
    h = g.chain(z, ("linear.linear", {"out_features": 64 * 2 * 2, "bias": False}, "project"),
                ("shape.reshape", {"shape": [64, 2, 2]}, "to_map"),
                ("norm.batch_norm2d", {}, "bn0"), ("activation.relu", {}, "relu0"))[-1]
    h = _up(g, h, 1, 32)
    h = _up(g, h, 2, 1, last=True)
    g.connect(h, g.add("io.output", "image"))

    d = add_network(p, "discriminator")
    x = d.add("io.input", "image", shape=["N", 1, 8, 8])
    h = _down(d, x, 1, 32, bn=False)
    h = _down(d, h, 2, 64, bn=True)
    d.chain(h, ("shape.flatten", {}, "flatten"), ("linear.linear", {"out_features": 1}, "score"),
            ("io.output", {}, "logit"))
    return p


@register("gan-dcgan", "GAN", "small",
          "The DCGAN of Radford et al. for 32×32 colour images: noise z [N, 64] becomes a 1×1 "
          "map that four transposed convolutions grow to [3, 32, 32] (widths 256-128-64-3); "
          "the discriminator mirrors it with strided convolutions (64-128-256) and a final 4×4 "
          "convolution to one logit. Trains on the built-in coloured shapes.",
          "gan", "shapes32", layout="LR")
def gan_dcgan() -> Project:
    p = Project()
    g = add_network(p, "generator")
    z = g.add("io.input", "z", shape=["N", 64])
    h = g.chain(z, ("shape.reshape", {"shape": [64, 1, 1]}, "to_map"))[-1]
    h = _up(g, h, 1, 256, s=1, pad=0)
    h = _up(g, h, 2, 128)
    h = _up(g, h, 3, 64)
    h = _up(g, h, 4, 3, last=True)
    g.connect(h, g.add("io.output", "image"))

    d = add_network(p, "discriminator")
    x = d.add("io.input", "image", shape=["N", 3, 32, 32])
    h = _down(d, x, 1, 64, bn=False)
    h = _down(d, h, 2, 128, bn=True)
    h = _down(d, h, 3, 256, bn=True)
    d.chain(h, ("conv.conv2d", {"out_channels": 1, "kernel_size": 4}, "score"),
            ("shape.flatten", {}, "flatten"), ("io.output", {}, "logit"))
    return p
