"""Every example of every registered node type, through the real compiler and torch.

For each (type, example): Input(s) -> node -> Output(s) is built with the graph API, analysed,
generated, exec'd and run on random inputs of the symbolic sizes in ``SYMBOL_SIZES``. The real
output shapes must equal the inferred specs. Where a type writes its own ``infer``, it must also
agree with the meta-device fallback, so the two can never drift apart silently.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch

from compiler import Project, add_network, analyze, build
from compiler.usercode import code_sources
from nodes.base import SYMBOL_SIZES, GraphSpec, NodeType, TensorSpec
from nodes.io import Role, role_of
from nodes.meta import meta_infer
from nodes.registry import all_types

TYPES = all_types()
CASES = [pytest.param(cls, ex, id=f"{cls.id}-{i}")
         for cls in TYPES for i, ex in enumerate(cls.examples())]
_DTYPES = {torch.float32: "float", torch.int64: "long", torch.bool: "bool"}


def concrete(d: Any) -> int | None:
    """A spec dim at SYMBOL_SIZES; None for a dim whose size the spec leaves open ("T'")."""
    if isinstance(d, int):
        return d
    tokens = re.findall(r"[A-Za-z_]\w*'*", d)
    if any(t not in SYMBOL_SIZES for t in tokens):
        return None
    return int(eval(re.sub(r"[A-Za-z_]\w*", lambda m: str(SYMBOL_SIZES[m.group(0)]), d),
                    {"__builtins__": {}}))


def _project(cls: type[NodeType], example: Any) -> tuple[Project, dict[str, Any]]:
    p = Project(name="shape test")
    g = add_network(p, "net")
    node = g.add(cls.id, "node", **example.params)
    graph_src = None
    for port in cls.inputs:
        if port.name not in example.inputs:
            continue
        value = example.inputs[port.name]
        for j, spec in enumerate(value if port.variadic else [value]):
            if port.kind == "graph" or isinstance(spec, GraphSpec):
                if graph_src is None:
                    graph_src = g.add("io.graph_input", "g", features=1)
                g.connect(graph_src, node, "graph", port.name)
            else:
                src = g.add("io.input", f"in_{port.name}_{j}", shape=list(spec.dims),
                            dtype=spec.dtype)
                g.connect(src, node, "y", port.name)
    expected = cls.infer(cls.Params.model_validate(example.params), example.inputs)
    for port in cls.outputs:
        if port.name in expected:
            out = g.add("io.output", f"out_{port.name}")
            g.connect(node, out, port.name, "x")
    return p, expected


def _inputs(net: Any, module: Any) -> list[Any]:
    args: list[Any] = []
    for inp in net.inputs():
        for spec in inp.outs.values():
            if isinstance(spec, GraphSpec):
                v, e, b = SYMBOL_SIZES["V"], SYMBOL_SIZES["E"], SYMBOL_SIZES["B"]
                args.append(module.Graph(edge_index=torch.randint(0, v, (2, e)),
                                         batch=torch.arange(v) * b // v, num_graphs=b))
            elif spec.dtype == "long":
                args.append(torch.randint(0, 5, spec.concrete()))
            else:
                args.append(torch.randn(spec.concrete()))
    return args


@pytest.mark.parametrize("cls, example", CASES)
def test_example_runs_with_inferred_shapes(cls: type[NodeType], example: Any) -> None:
    torch.manual_seed(0)
    project, expected = _project(cls, example)
    analysis = analyze(project)
    assert not analysis.errors, [str(d) for d in analysis.errors]
    net = analysis.networks["net"]
    assert net.by_name("node").outs == expected
    built = build(project, trust=code_sources(project))  # opaque examples name torch's classes
    model = built.instantiate("net")
    result = model(*_inputs(net, built.module))
    outputs = net.outputs()
    values = [result] if len(outputs) == 1 else list(result)
    assert len(values) == len(outputs)
    for out, value in zip(outputs, values, strict=True):
        spec = out.ins["x"]
        if isinstance(spec, GraphSpec):
            assert hasattr(value, "edge_index"), f"{out.node.name} should carry a graph"
            continue
        assert isinstance(spec, TensorSpec)
        assert isinstance(value, torch.Tensor), f"{out.node.name} is a {type(value).__name__}"
        assert value.dim() == spec.rank, f"{out.node.name}: {tuple(value.shape)} vs {spec.label()}"
        for axis, (real, want) in enumerate(zip(value.shape, spec.dims, strict=True)):
            size = concrete(want)
            if size is None:
                assert real >= 1
            else:
                assert real == size, (f"{out.node.name} dim {axis}: real {tuple(value.shape)}, "
                                      f"inferred {spec.label()}")
        assert _DTYPES.get(value.dtype) == spec.dtype, f"{value.dtype} vs {spec.dtype}"


@pytest.mark.parametrize("cls, example", [c for c in CASES if c.values[0].has_shape_rule()])
def test_hand_written_infer_agrees_with_meta(cls: type[NodeType], example: Any) -> None:
    params = cls.Params.model_validate(example.params)
    assert cls.infer(params, example.inputs) == meta_infer(cls, params, example.inputs)


OPS = [t for t in TYPES if role_of(t) == Role.OP]
#: Types that are not layers, and where their shapes are tested instead of by examples().
NOT_OPS = {
    "io.input": "tests/test_codegen.py, tests/test_diagnostics.py (network inputs)",
    "io.output": "tests/test_codegen.py (network outputs)",
    "io.graph_input": "tests/test_nodes_sequence_graph.py (GCN on graph batches)",
    "io.block_input": "tests/test_graph_api.py, tests/test_codegen.py (block ports)",
    "io.block_output": "tests/test_graph_api.py, tests/test_codegen.py (block ports)",
    "block.block": "tests/test_templates.py (every template uses blocks with repeats)",
}


@pytest.mark.parametrize("cls", OPS, ids=[t.id for t in OPS])
def test_every_op_type_has_examples(cls: type[NodeType]) -> None:
    assert cls.examples(), f"{cls.id} has no examples(), so nothing checks its shapes"


def test_only_the_named_types_are_exempt_from_examples() -> None:
    """A new non-layer type must be added to NOT_OPS with where it is tested."""
    assert {t.id for t in TYPES if role_of(t) != Role.OP} == set(NOT_OPS)


def test_meta_fallback_reads_symbols_back() -> None:
    """The fallback on its own: products, primed sizes and fixed dims."""
    from nodes.registry import get

    flatten, conv = get("shape.flatten"), get("conv.conv1d")
    spec = meta_infer(flatten, flatten.Params(), {"x": TensorSpec(("N", "T", 4))})
    assert spec == {"y": TensorSpec(("N", "T*4"))}
    spec = meta_infer(conv, conv.Params(out_channels=2, kernel_size=3, stride=2),
                      {"x": TensorSpec(("N", 3, "T"))})
    assert spec == {"y": TensorSpec(("N", 2, "T'"))}
    spec = meta_infer(flatten, flatten.Params(start_dim=0), {"x": TensorSpec(("N*T", 2, 3))})
    assert spec == {"y": TensorSpec(("N*T*6",))}


def test_a_type_without_infer_gets_shapes_from_its_emission() -> None:
    """NodeType.infer's default is the meta fallback: a type may leave infer out entirely."""
    from nodes import registry
    from nodes.base import Call, Emission

    class Unfold(NodeType):
        id = "zz_test.unfold"
        name = "Unfold"
        category = "Test"

        @classmethod
        def emit(cls, p: Any, ins: Any) -> Emission:
            return Emission("{self}({x})", Call.of("nn.Unfold", kernel_size=2))

    registry.register(Unfold)
    try:
        p = Project(name="fallback")
        g = add_network(p, "net")
        g.chain(("io.input", {"shape": ["N", 3, 4, 5]}, "image"), ("zz_test.unfold", {}, "patches"),
                ("io.output", {}, "out"))
        analysis = analyze(p)
        assert not analysis.errors
        spec = analysis.networks["net"].by_name("patches").outs["y"]
        assert spec == TensorSpec(("N", 12, 12))
        out = build(p).instantiate("net")(torch.randn(2, 3, 4, 5))
        assert tuple(out.shape) == (2, 12, 12)
        g2 = add_network(p, "bad")
        g2.chain(("io.input", {"shape": ["N", 3, 1, 5]}, "image"),
                 ("zz_test.unfold", {}, "patches"), ("io.output", {}, "out"))
        errors = [d for d in analyze(p).errors if d.network == "bad"]
        assert len(errors) == 1 and errors[0].node_name == "patches"
        assert "Unfold cannot run" in errors[0].message and errors[0].hint
    finally:
        registry.NODE_TYPES.remove("zz_test.unfold")
