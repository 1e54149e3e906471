"""Small builders shared by the core tests (real graph API, no mocks)."""

from __future__ import annotations

from compiler import Project, add_network


def mlp_project(hidden: int = 32, classes: int = 10) -> Project:
    p = Project(name="mlp test")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 64]}, "x"),
            ("linear.linear", {"out_features": hidden}, "fc1"),
            ("activation.relu", {}, "act1"),
            ("linear.linear", {"out_features": classes}, "fc2"),
            ("io.output", {}, "logits"))
    return p
