"""Random valid graphs: the module ``build`` execs and the ``model.py`` ``export`` writes agree.

Hypothesis draws chains of shape-compatible registry layers on feature ([N, C]), sequence
([N, T, C]) and image ([N, C, H, W]) inputs, with merges (add, multiply or mean of same-shape
branches, concat of two branches) and repeated blocks (used once or twice, with a ``$param``
width). Each graph is built in-process and
exported to a temporary folder; the exported file is imported afresh with importlib. Both copies of
the network, made under the same torch seed, must have the same state_dict (keys, shapes and the
initial values themselves) and give the same outputs in eval and, seeded, in train mode.

CI runs 60 graphs; ``LAYERLOOM_RANDOM_GRAPHS=1000`` runs that many (see scripts/random_graphs.py).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compiler import Project, add_network, analyze, build, generate
from compiler.export import export_model
from compiler.graph import Graph, add_block, ref

MAX_EXAMPLES = int(os.environ.get("LAYERLOOM_RANDOM_GRAPHS", "60"))
NETWORK = "net"
_case_ids = itertools.count()

ACTIVATIONS: list[tuple[str, dict[str, Any]]] = [
    ("activation.relu", {}), ("activation.gelu", {}), ("activation.tanh", {}),
    ("activation.sigmoid", {}), ("activation.silu", {}), ("activation.elu", {"alpha": 0.5}),
    ("activation.leaky_relu", {"negative_slope": 0.2}), ("linear.identity", {}),
]


@dataclass
class Builder:
    """A project being drawn: the network's graph, the current tensor's node and its dims."""

    project: Project
    g: Graph
    blocks: dict[str, int] = field(default_factory=dict)  # block name -> rank it works on
    names: itertools.count = field(default_factory=itertools.count)

    def name(self, stem: str) -> str:
        return f"{stem}_{next(self.names)}"

    def add(self, src: str, type_id: str, params: dict[str, Any]) -> str:
        node = self.g.add(type_id, self.name(type_id.split(".")[-1]), **params)
        self.g.connect(src, node)
        return node


# -- shape-keeping and shape-changing layers, by rank -------------------------------------------
def keep_shape_layer(draw, dims: list) -> tuple[str, dict[str, Any]]:
    """A layer whose output has the same dims as its input."""
    rank, c = len(dims), dims[1]
    choices: list[tuple[str, dict[str, Any]]] = list(ACTIVATIONS)
    choices += [("norm.dropout", {"p": draw(st.sampled_from([0.0, 0.1, 0.5]))})]
    if rank == 2:
        choices += [("linear.linear", {"out_features": c, "bias": draw(st.booleans())}),
                    ("norm.layer_norm", {}), ("norm.batch_norm1d", {}),
                    ("activation.softmax", {"dim": -1}), ("activation.log_softmax", {"dim": 1})]
    elif rank == 3:
        c = dims[2]
        heads = [h for h in (1, 2, 4) if c % h == 0]
        choices += [("linear.linear", {"out_features": c}), ("norm.layer_norm", {}),
                    ("activation.softmax", {"dim": -1}),
                    ("attention.transformer_encoder_layer",
                     {"nhead": draw(st.sampled_from(heads)), "dim_feedforward": 8,
                      "dropout": 0.1, "norm_first": draw(st.booleans())}),
                    ("attention.multihead_attention", {"num_heads": draw(st.sampled_from(heads))})]
    else:
        k = draw(st.sampled_from([1, 3]))
        groups = [g for g in (1, 2, 4) if c % g == 0]
        choices += [("conv.conv2d", {"out_channels": c, "kernel_size": k, "padding": k // 2,
                                     "bias": draw(st.booleans())}),
                    ("norm.batch_norm2d", {}), ("norm.dropout2d", {"p": 0.2}),
                    ("norm.group_norm", {"num_groups": draw(st.sampled_from(groups))})]
        if dims[2] * dims[3] > 1:
            # InstanceNorm2d on a 1x1 image is refused by analysis (nothing to normalise over);
            # drawing it there would only make invalid graphs.
            choices.append(("norm.instance_norm2d", {"affine": draw(st.booleans())}))
    return draw(st.sampled_from(choices))


def change_shape_layer(draw, dims: list) -> tuple[str, dict[str, Any], list]:
    """A layer that changes the dims, with the dims it gives."""
    width = draw(st.integers(1, 12))
    if len(dims) == 2:
        return "linear.linear", {"out_features": width}, ["N", width]
    if len(dims) == 3:
        n, t, _ = dims
        return draw(st.sampled_from([
            ("linear.linear", {"out_features": width}, [n, t, width]),
            ("recurrent.gru", {"hidden_size": width}, [n, t, width]),
            ("recurrent.lstm", {"hidden_size": width, "bidirectional": True}, [n, t, 2 * width]),
        ]))
    n, c, h, w = dims
    choices: list[tuple[str, dict[str, Any], list]] = [
        ("conv.conv2d", {"out_channels": width, "kernel_size": 1}, [n, width, h, w]),
        ("shape.flatten", {}, [n, c * h * w]),
        ("pool.global_avg_pool", {}, [n, c]),
        ("pool.adaptive_avg_pool2d", {"output_size": 1}, [n, c, 1, 1]),
    ]
    if h >= 3 and w >= 3:
        choices.append(("conv.conv2d", {"out_channels": width, "kernel_size": 3},
                        [n, width, h - 2, w - 2]))
    if h >= 2 and w >= 2:
        choices += [("pool.max_pool2d", {"kernel_size": 2}, [n, c, h // 2, w // 2]),
                    ("pool.avg_pool2d", {"kernel_size": 2}, [n, c, h // 2, w // 2])]
    return draw(st.sampled_from(choices))


# -- structures ---------------------------------------------------------------------------------
def draw_block(draw, b: Builder, rank: int) -> str:
    """A block (reused when one for this rank exists) that keeps its input's dims."""
    existing = [name for name, r in b.blocks.items() if r == rank]
    if existing and draw(st.booleans()):
        return draw(st.sampled_from(existing))
    name = f"Block{len(b.blocks)}"
    bg = add_block(b.project, name, {"width": 4})
    node = bg.add("io.block_input", "x")
    if rank < 4:
        layers = [("linear.linear", {"out_features": ref("width")}), *draw(st.lists(
            st.sampled_from(ACTIVATIONS + [("norm.layer_norm", {})]), max_size=2))]
    else:
        layers = [("conv.conv2d", {"out_channels": ref("width"), "kernel_size": 3, "padding": 1}),
                  *draw(st.lists(st.sampled_from(ACTIVATIONS + [("norm.batch_norm2d", {})]),
                                 max_size=2))]
    for i, (type_id, params) in enumerate(layers):
        layer = bg.add(type_id, f"layer{i}", **params)
        bg.connect(node, layer)
        node = layer
    bg.connect(node, bg.add("io.block_output", "y"))
    b.blocks[name] = rank
    return name


def draw_step(draw, b: Builder, node: str, dims: list) -> tuple[str, list]:
    """One step of the chain: a layer, a merge of two branches, or a block use."""
    kind = draw(st.sampled_from(["keep", "keep", "change", "add", "concat", "block"]))
    if kind == "keep":
        type_id, params = keep_shape_layer(draw, dims)
        return b.add(node, type_id, params), dims
    if kind == "change":
        type_id, params, out = change_shape_layer(draw, dims)
        return b.add(node, type_id, params), out
    if kind == "add":
        merge = b.g.add(draw(st.sampled_from(["merge.add", "merge.multiply", "merge.mean"])),
                        b.name("merge"))
        for i in range(draw(st.integers(2, 3))):
            branch = node  # only the first branch may be the bare input: one wire per pair
            for _ in range(draw(st.integers(min(i, 1), 2))):
                branch = b.add(branch, *keep_shape_layer(draw, dims))
            b.g.connect(branch, merge)
        return merge, dims
    if kind == "concat":
        axis = 2 if len(dims) == 3 else 1  # channels; a sequence's is asked for as -1
        merge = b.g.add("merge.concat", b.name("concat"), dim=-1 if axis == 2 else 1)
        total = 0
        for _ in range(2):
            width = draw(st.integers(1, 6))
            if len(dims) < 4:
                branch = b.add(node, "linear.linear", {"out_features": width})
            else:
                branch = b.add(node, "conv.conv2d", {"out_channels": width, "kernel_size": 1})
            b.g.connect(branch, merge)
            total += width
        return merge, [*dims[:axis], total, *dims[axis + 1:]]
    block = draw_block(draw, b, len(dims))
    axis = 2 if len(dims) == 3 else 1
    width = draw(st.sampled_from([dims[axis], draw(st.integers(1, 8))]))
    use = b.g.add("block.block", b.name("use"), block=block, repeat=draw(st.integers(1, 3)),
                  args={"width": width})
    b.g.connect(node, use)  # repeats chain the copies: only the first maps C to width
    return use, [*dims[:axis], width, *dims[axis + 1:]]


@st.composite
def random_graphs(draw) -> tuple[Project, list]:
    """A project with one network ``net``: an input, 1-6 steps, one or two outputs."""
    project = Project(name="random graph")
    b = Builder(project, add_network(project, NETWORK))
    rank = draw(st.sampled_from([2, 3, 4]))
    if rank == 2:
        dims: list = ["N", draw(st.integers(1, 16))]
    elif rank == 3:
        dims = ["N", draw(st.integers(1, 5)), draw(st.sampled_from([2, 4, 6, 8]))]
    else:
        dims = ["N", draw(st.integers(1, 6)), draw(st.integers(1, 8)), draw(st.integers(1, 8))]
    in_dims = list(dims)
    node = b.g.add("io.input", "x", shape=dims)
    side = None
    for _ in range(draw(st.integers(1, 6))):
        node, dims = draw_step(draw, b, node, dims)
        if side is None and draw(st.integers(0, 5)) == 0:
            side = node
    b.g.connect(node, b.g.add("io.output", "out"))
    if side is not None and side != node:
        b.g.connect(side, b.g.add("io.output", "side"))
    return project, in_dims


# -- the comparison -----------------------------------------------------------------------------
def import_exported(path: Path):
    """A fresh import of an exported model.py under a name no other case uses."""
    name = f"layerloom_random_export_{os.getpid()}_{next(_case_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def seeded(factory, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return factory()


def check_equivalent(project: Project, in_dims: list, seed: int) -> None:
    """Build and export ``project``; assert both copies of ``net`` agree."""
    analysis = analyze(project)
    assume(analysis.ok)
    source = generate(analysis)
    built = build(source)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_model(source, tmp)
        assert path.read_text() == source.text
        exported = import_exported(path)
    ours = seeded(lambda: built.instantiate(NETWORK), seed)
    theirs = seeded(lambda: exported.NETWORKS[NETWORK](), seed)
    assert type(ours).__name__ == type(theirs).__name__
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert a[key].shape == b[key].shape, key
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    theirs.load_state_dict(a)
    batch = 3
    x = torch.randn([batch if d == "N" else d for d in in_dims])
    ours.eval(), theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
        ours.train(), theirs.train()
        torch.manual_seed(seed + 1)
        y_ours = ours(x)
        torch.manual_seed(seed + 1)
        y_theirs = theirs(x)
    torch.testing.assert_close(y_ours, y_theirs, rtol=0, atol=0)


@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=random_graphs(), seed=st.integers(0, 2**31 - 1))
def test_built_and_exported_modules_agree(case, seed):
    project, in_dims = case
    check_equivalent(project, in_dims, seed)


def test_strategy_draws_mostly_valid_graphs():
    """The strategy is only useful if analysis accepts nearly all it draws (assume() drops the
    rest silently); this counts them, and that merges and blocks really occur."""
    seen = {"ok": 0, "total": 0, "block": 0, "merge": 0}

    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=random_graphs())
    def count(case):
        project, _ = case
        seen["total"] += 1
        seen["ok"] += analyze(project).ok
        types = {n.type for n in project.networks[0].nodes}
        seen["block"] += "block.block" in types
        seen["merge"] += any(t.startswith("merge.") for t in types)

    count()
    assert seen["ok"] >= 0.9 * seen["total"], seen
    assert seen["block"] > 0 and seen["merge"] > 0, seen
