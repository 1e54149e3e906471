"""Layered auto-layout (Sugiyama style): data flows left to right, one column per layer.

networkx gives the layering (``topological_generations``). An edge that jumps several layers (a
ResNet shortcut) gets a *dummy* node in every layer it crosses, as in Sugiyama's method: the
dummies take part in the crossing-reduction sweeps (barycentre ordering) and reserve a free lane,
so the shortcut never runs behind the main chain; the canvas routes the wire through that lane
(``builder.canvas.routing``). Lanes are stacked from the top, so the main path stays on one
straight row and its side branches sit below it.

A long graph wraps into rows (like text) where at most two wires cross, so a 15-node ResNet-18
(or the inside of its residual block) fits a laptop window at a zoom where its names read.
"""

from __future__ import annotations

import math

import networkx as nx

from compiler.project import NetworkModel

COLUMN = 290.0  # px between layer columns: node width 184 plus room for a shape label
ROW = 110.0  # px between lanes of one layer
ROW_GAP = 50.0  # px between wrapped rows, below the last lane (room for the return wire)
TB_LAYER = 120.0  # top to bottom: px between layers (node height ~70 plus a wire label)
TB_SPREAD = 240.0
WRAP_MIN_LAYERS = 7  # shorter graphs always stay on one row
WRAP_ASPECT = 2.0  # wrapped rows aim at this width:height (a laptop's canvas between docks)
_DUMMY = "\x00dummy"


def layered_positions(net: NetworkModel, direction: str = "LR") -> dict[str, list[float]]:
    """Positions per node id. ``direction`` "LR" flows left to right, "TB" top to bottom."""
    g = nx.DiGraph()
    g.add_nodes_from(n.id for n in net.nodes)
    g.add_edges_from((e.src, e.dst) for e in net.edges if e.src != e.dst)
    order = {n.id: i for i, n in enumerate(net.nodes)}
    layer_of = _layering(g, [n.id for n in net.nodes])
    n_layers = max(layer_of.values(), default=-1) + 1
    layers: list[list[str]] = [[] for _ in range(n_layers)]
    for nid, li in layer_of.items():
        layers[li].append(nid)
    for layer in layers:
        layer.sort(key=lambda n: order.get(n, 0))
    h = _with_dummies(g, layer_of, layers)
    slot = {nid: float(i) for layer in layers for i, nid in enumerate(layer)}
    for _ in range(4):
        for layer in layers[1:]:
            _reorder(layer, slot, h.predecessors)
        for layer in reversed(layers[:-1]):
            _reorder(layer, slot, h.successors)
    out: dict[str, list[float]] = {}
    if direction == "TB":
        for li, layer in enumerate(layers):
            offset = (len(layer) - 1) / 2.0
            for i, nid in enumerate(layer):
                if not nid.startswith(_DUMMY):
                    out[nid] = [(i - offset) * TB_SPREAD, li * TB_LAYER]
        return out
    for (first, last), top in _rows(layers):
        for li in range(first, last):
            for i, nid in enumerate(layers[li]):
                if not nid.startswith(_DUMMY):
                    out[nid] = [(li - first) * COLUMN, top + i * ROW]
    return out


def _layering(g: nx.DiGraph, ids: list[str]) -> dict[str, int]:
    """Longest-path layers, with sources pulled next to their use and slack branches centred."""
    try:
        layers = [list(layer) for layer in nx.topological_generations(g)]
    except nx.NetworkXUnfeasible:  # a cycle: fall back to file order, one column per 8 nodes
        layers = [ids[i:i + 8] for i in range(0, len(ids), 8)]
        return {nid: i for i, layer in enumerate(layers) for nid in layer}
    layer_of = {nid: i for i, layer in enumerate(layers) for nid in layer}
    for nid in list(layer_of):
        if g.in_degree(nid) == 0 and g.out_degree(nid) > 0:
            layer_of[nid] = min(layer_of[s] for s in g.successors(nid)) - 1
    # A side branch with slack (a ResNet downsample) sits midway along the span it bridges rather
    # than bunched at its start: the midpoint of its earliest and latest possible layers.
    if len(layers) > 2:
        latest: dict[str, int] = {}
        for nid in reversed(list(nx.topological_sort(g))):
            succ = [latest[s] for s in g.successors(nid)]
            latest[nid] = min(succ) - 1 if succ else layer_of[nid]
        for nid in nx.topological_sort(g):
            if g.in_degree(nid) and g.out_degree(nid) and latest[nid] > layer_of[nid]:
                low = max(layer_of[p] for p in g.predecessors(nid)) + 1
                layer_of[nid] = max(low, (layer_of[nid] + latest[nid]) // 2)
    low = min(layer_of.values(), default=0)
    return {nid: li - low for nid, li in layer_of.items()}


def _with_dummies(g: nx.DiGraph, layer_of: dict[str, int],
                  layers: list[list[str]]) -> nx.DiGraph:
    """A copy of ``g`` where every edge spanning k > 1 layers is a chain through k - 1 dummies
    (added to ``layers``), so the ordering sweeps keep a lane free for it."""
    h = nx.DiGraph()
    h.add_nodes_from(g.nodes)
    count = 0
    for u, v in g.edges:
        lu, lv = layer_of[u], layer_of[v]
        prev = u
        for li in range(lu + 1, lv):
            dummy = f"{_DUMMY}{count}"
            count += 1
            layers[li].append(dummy)
            h.add_edge(prev, dummy)
            prev = dummy
        h.add_edge(prev, v)
    return h


def _rows(layers: list[list[str]]) -> list[tuple[tuple[int, int], float]]:
    """Split the layers into rows ((first, end) layer ranges, with each row's top y). A row may
    only end where at most two wires cross (the chain, and perhaps one shortcut), so the return
    to the next row stays legible."""
    n = len(layers)
    lanes = max((len(layer) for layer in layers), default=1)
    if n < WRAP_MIN_LAYERS:
        return [((0, n), 0.0)]
    row_h = lanes * ROW + ROW_GAP
    per_row = max(3, round(math.sqrt(n * row_h * WRAP_ASPECT / COLUMN)))
    if per_row >= n:
        return [((0, n), 0.0)]
    breaks = [i for i in range(1, n) if len(layers[i - 1]) <= 2 and len(layers[i]) <= 2]
    rows, first, top = [], 0, 0.0
    while first < n:
        want = first + per_row
        before = [b for b in breaks if first + 2 <= b <= want]
        after = [b for b in breaks if b > want]
        end = max(before) if before else (after[0] if after else n)
        if n - end < 3:  # never leave a stub of one or two nodes on a row of its own
            end = n
        rows.append(((first, end), top))
        top += max(len(layers[i]) for i in range(first, end)) * ROW + ROW_GAP
        first = end
    return rows


def _reorder(layer: list[str], slot: dict[str, float], neighbours) -> None:
    def key(nid: str) -> float:
        ns = [slot[n] for n in neighbours(nid) if n in slot]
        return sum(ns) / len(ns) if ns else slot[nid]

    layer.sort(key=key)
    for i, nid in enumerate(layer):
        slot[nid] = float(i)
