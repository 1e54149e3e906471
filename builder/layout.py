"""Layered auto-layout: data flows left to right, one column per topological generation.

networkx gives the layers (``topological_generations``); within a layer, nodes are ordered by the
barycentre of their neighbours in the previous layer (a few sweeps of the classic Sugiyama
heuristic), which keeps a ResNet's skip wires beside the main path instead of crossing it.
"""

from __future__ import annotations

import networkx as nx

from compiler.project import NetworkModel

COLUMN = 310.0  # px between layer columns: node width 184 plus room for a shape label
ROW = 110.0  # px between nodes of one layer
TB_LAYER = 120.0  # top to bottom: px between layers (node height ~70 plus a wire label)
TB_SPREAD = 240.0


def layered_positions(net: NetworkModel, direction: str = "LR") -> dict[str, list[float]]:
    """Positions per node id. ``direction`` "LR" flows left to right, "TB" top to bottom."""
    column, row = (COLUMN, ROW) if direction != "TB" else (TB_LAYER, TB_SPREAD)
    g = nx.DiGraph()
    g.add_nodes_from(n.id for n in net.nodes)
    g.add_edges_from((e.src, e.dst) for e in net.edges if e.src != e.dst)
    try:
        layers = [list(layer) for layer in nx.topological_generations(g)]
    except nx.NetworkXUnfeasible:  # a cycle: fall back to file order, one column per 8 nodes
        ids = [n.id for n in net.nodes]
        layers = [ids[i:i + 8] for i in range(0, len(ids), 8)]
    order = {n.id: i for i, n in enumerate(net.nodes)}
    # Longest-path layering pulls sinks (outputs) to the end; pull sources next to their use.
    layer_of = {nid: i for i, layer in enumerate(layers) for nid in layer}
    for nid in list(layer_of):
        if g.in_degree(nid) == 0 and g.out_degree(nid) > 0:
            layer_of[nid] = min(layer_of[s] for s in g.successors(nid)) - 1
    # A side branch with slack (a ResNet shortcut) sits midway along the span it bridges rather
    # than bunched at its start: the midpoint of its earliest and latest possible layers.
    if len(layers) > 2 and nx.is_directed_acyclic_graph(g):
        latest: dict[str, int] = {}
        for nid in reversed(list(nx.topological_sort(g))):
            succ = [latest[s] for s in g.successors(nid)]
            latest[nid] = min(succ) - 1 if succ else layer_of[nid]
        for nid in nx.topological_sort(g):
            if g.in_degree(nid) and g.out_degree(nid) and latest[nid] > layer_of[nid]:
                low = max(layer_of[p] for p in g.predecessors(nid)) + 1
                layer_of[nid] = max(low, (layer_of[nid] + latest[nid]) // 2)
    n_layers = max(layer_of.values(), default=-1) + 1
    layers = [[] for _ in range(n_layers)]
    for nid, li in layer_of.items():
        layers[li].append(nid)
    for layer in layers:
        layer.sort(key=lambda n: order.get(n, 0))
    slot = {nid: float(i) for layer in layers for i, nid in enumerate(layer)}
    for _ in range(3):
        for layer in layers[1:]:
            _reorder(layer, slot, g.predecessors)
        for layer in reversed(layers[:-1]):
            _reorder(layer, slot, g.successors)
    out: dict[str, list[float]] = {}
    for li, layer in enumerate(layers):
        offset = (len(layer) - 1) / 2.0
        for i, nid in enumerate(layer):
            a, b = li * column, (i - offset) * row
            out[nid] = [a, b] if direction != "TB" else [b, a]
    return out


def _reorder(layer: list[str], slot: dict[str, float], neighbours) -> None:
    def key(nid: str) -> float:
        ns = [slot[n] for n in neighbours(nid) if n in slot]
        return sum(ns) / len(ns) if ns else slot[nid]

    layer.sort(key=key)
    for i, nid in enumerate(layer):
        slot[nid] = float(i)
