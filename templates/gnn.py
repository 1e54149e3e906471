"""Graph neural networks: each node updates its features from its neighbours' (message passing)."""

from __future__ import annotations

from compiler import Project, add_network

from .registry import register


@register("gcn-karate", "GNN", "small",
          "Two GCN layers on Zachary's karate club: every member starts as a one-hot feature "
          "(34), and each layer mixes a node's features with its neighbours', weighted by degree. "
          "Two hops are enough to tell which of the two factions a member joins. Node "
          "classification, 2 classes.",
          "node_classification", "karate", layout="LR")
def gcn_karate() -> Project:
    p = Project()
    g = add_network(p, "net")
    inp = g.add("io.graph_input", "graph_in", features=34)
    c1 = g.add("graph.gcn_conv", "gcn1", out_channels=16)
    g.connect(inp, c1, "x", "x")
    g.connect(inp, c1, "graph", "graph")
    act = g.add("activation.relu", "act1")
    g.connect(c1, act)
    c2 = g.add("graph.gcn_conv", "gcn2", out_channels=2)
    g.connect(act, c2, "y", "x")
    g.connect(inp, c2, "graph", "graph")
    g.connect(c2, g.add("io.output", "logits"))
    return p


@register("gcn-graphs", "GNN", "small",
          "Graph classification: three GCN layers spread information across each graph, a global "
          "mean pool turns each graph's nodes into one vector, and a Linear scores it. Pooling "
          "makes the answer independent of node order and graph size. Trains on the built-in "
          "synthetic graphs (8 node features, 2 classes).",
          "graph_classification", "graphs-synth", layout="LR")
def gcn_graphs() -> Project:
    p = Project()
    g = add_network(p, "net")
    inp = g.add("io.graph_input", "graph_in", features=8)
    h, port = inp, "x"
    for i in range(3):
        c = g.add("graph.gcn_conv", f"gcn{i + 1}", out_channels=32)
        g.connect(h, c, port, "x")
        g.connect(inp, c, "graph", "graph")
        h, port = g.add("activation.relu", f"act{i + 1}"), "y"
        g.connect(c, h)
    pool = g.add("graph.global_pool", "pool", reduce="mean")
    g.connect(h, pool, "y", "x")
    g.connect(inp, pool, "graph", "graph")
    g.chain(pool, ("linear.linear", {"out_features": 2}, "head"), ("io.output", {}, "logits"))
    return p
