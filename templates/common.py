"""Pieces several families share: a small convolutional image encoder and an MLP head."""

from __future__ import annotations

from compiler import Graph, Project, add_network


def conv_encoder(p: Project, name: str, *, size: int = 32, widths: tuple[int, ...] = (32, 64, 64)
                 ) -> Graph:
    """image [N, 3, size, size] -> features [N, widths[-1]]: conv-BN-ReLU stages, max pooling
    between them, global average pooling at the end."""
    g = add_network(p, name)
    h = g.add("io.input", "x", shape=["N", 3, size, size])
    for i, w in enumerate(widths, start=1):
        h = g.chain(h, ("conv.conv2d", {"out_channels": w, "kernel_size": 3, "padding": 1,
                                        "bias": False}, f"conv{i}"),
                    ("norm.batch_norm2d", {}, f"bn{i}"), ("activation.relu", {}, f"relu{i}"))[-1]
        if i < len(widths):
            h = g.chain(h, ("pool.max_pool2d", {"kernel_size": 2, "stride": 2}, f"pool{i}"))[-1]
    g.chain(h, ("pool.adaptive_avg_pool2d", {"output_size": 1}, "avgpool"),
            ("shape.flatten", {}, "flatten"), ("io.output", {}, "features"))
    return g


def mlp_head(p: Project, name: str, *, features: int, hidden: int, out: int,
             batch_norm: bool) -> Graph:
    """[N, features] -> Linear -> (BatchNorm) -> ReLU -> Linear -> [N, out]."""
    g = add_network(p, name)
    x = g.add("io.input", "x", shape=["N", features])
    items: list = [("linear.linear", {"out_features": hidden}, "fc1")]
    if batch_norm:
        items.append(("norm.batch_norm1d", {}, "bn1"))
    items += [("activation.relu", {}, "relu1"), ("linear.linear", {"out_features": out}, "fc2"),
              ("io.output", {}, "y")]
    g.chain(x, *items)
    return g
