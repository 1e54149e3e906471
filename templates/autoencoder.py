"""Autoencoders: learn a small code by reconstructing the input from it."""

from __future__ import annotations

from compiler import Project, add_network

from .registry import register


@register("autoencoder-dense", "Autoencoder", "small",
          "Dense autoencoder: 64 pixels are squeezed through a 16-number code and rebuilt. The "
          "bottleneck forces the code to keep what matters; the Sigmoid keeps outputs in [0, 1] "
          "like the pixels. Trains on the flattened 8×8 digits.",
          "autoencoder", "digits-flat", layout="LR")
def autoencoder_dense() -> Project:
    p = Project()
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 64])
    g.chain(x, ("linear.linear", {"out_features": 32}, "enc1"), ("activation.relu", {}, "enc_act"),
            ("linear.linear", {"out_features": 16}, "code"), ("activation.relu", {}, "code_act"),
            ("linear.linear", {"out_features": 32}, "dec1"), ("activation.relu", {}, "dec_act"),
            ("linear.linear", {"out_features": 64}, "dec2"), ("activation.sigmoid", {}, "squash"),
            ("io.output", {}, "recon"))
    return p


@register("autoencoder-conv", "Autoencoder", "small",
          "Convolutional autoencoder: strided convolutions shrink the 8×8 digit to a 2×2×32 "
          "code, transposed convolutions grow it back. Convolutions share weights across "
          "positions, so it needs far fewer weights than the dense one for the same job. Trains "
          "on the 8×8 digits as images [N, 1, 8, 8].",
          "autoencoder", "digits", layout="LR")
def autoencoder_conv() -> Project:
    p = Project()
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 1, 8, 8])
    g.chain(x, ("conv.conv2d", {"out_channels": 16, "kernel_size": 3, "stride": 2, "padding": 1},
                "enc1"), ("activation.relu", {}, "enc1_act"),
            ("conv.conv2d", {"out_channels": 32, "kernel_size": 3, "stride": 2, "padding": 1},
             "enc2"), ("activation.relu", {}, "code"),
            ("conv.conv_transpose2d", {"out_channels": 16, "kernel_size": 2, "stride": 2,
                                        "padding": 0}, "dec1"),
            ("activation.relu", {}, "dec1_act"),
            ("conv.conv_transpose2d", {"out_channels": 1, "kernel_size": 2, "stride": 2,
                                        "padding": 0}, "dec2"),
            ("activation.sigmoid", {}, "squash"), ("io.output", {}, "recon"))
    return p
