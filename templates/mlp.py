"""Multilayer perceptron: the smallest network worth training, and the first one to read."""

from __future__ import annotations

from compiler import Project, add_network

from .registry import register


@register("mlp-digits", "MLP", "small",
          "A feed-forward network: 64 pixel values -> 128 -> 64 -> 10 digit scores, ReLU between "
          "layers. Every unit sees every input, so it ignores that pixels have neighbours; that is "
          "what convolutions add. Trains on the 8×8 digits (flattened) in seconds.",
          "classification", "digits-flat", layout="LR")
def mlp_digits() -> Project:
    p = Project()
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 64])
    g.chain(x, ("linear.linear", {"out_features": 128}, "fc1"), ("activation.relu", {}, "act1"),
            ("linear.linear", {"out_features": 64}, "fc2"), ("activation.relu", {}, "act2"),
            ("linear.linear", {"out_features": 10}, "head"), ("io.output", {}, "logits"))
    return p
