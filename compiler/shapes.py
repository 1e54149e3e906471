"""Shape inference in topological order, and the Analysis that codegen, summary and the GUI read.

One traversal serves everything: it checks structure (validate.py), infers every port's spec, and
records per node what codegen needs (validated params, input specs, block instances). A block
node is inferred by analysing the block's own graph once per repeat with the incoming specs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodes.base import NodeType, Params, ShapeError, Spec
from nodes.io import role_of

from .diagnostics import Diagnostic
from .ports import block_args
from .project import BlockModel, NetworkModel, NodeModel, Project
from .validate import Wiring, check_structure

MAX_BLOCK_DEPTH = 8


@dataclass
class NodeResult:
    node: NodeModel
    cls: type[NodeType]
    params: Params | None
    ins: dict[str, Any] = field(default_factory=dict)  # port -> Spec, or list[Spec] if variadic
    in_vars: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    outs: dict[str, Spec] = field(default_factory=dict)
    #: For block nodes: the analysis of each repeat, in order.
    instances: list["NetworkResult"] = field(default_factory=list)
    ok: bool = False

    @property
    def role(self) -> str:
        return role_of(self.cls)


@dataclass
class NetworkResult:
    net: NetworkModel
    order: list[str]
    nodes: dict[str, NodeResult]
    diagnostics: list[Diagnostic]
    block_values: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def spec(self, node_id: str, port: str) -> Spec | None:
        res = self.nodes.get(node_id)
        return res.outs.get(port) if res else None

    def by_name(self, name: str) -> NodeResult:
        for r in self.nodes.values():
            if r.node.name == name:
                return r
        raise KeyError(name)

    def inputs(self) -> list[NodeResult]:
        return [self.nodes[n] for n in self.order if self.nodes[n].role in ("input", "block_input")]

    def outputs(self) -> list[NodeResult]:
        return [self.nodes[n] for n in self.order
                if self.nodes[n].role in ("output", "block_output")]


@dataclass
class Analysis:
    project: Project
    networks: dict[str, NetworkResult]
    diagnostics: list[Diagnostic]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


class _Context:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.cache: dict[tuple, NetworkResult] = {}
        self.stack: list[str] = []


def analyze(project: Project) -> Analysis:
    """Check and infer every network of the project; blocks are checked where they are used, and
    an unused block is checked on its own (structure and params, without shapes)."""
    ctx = _Context(project)
    networks: dict[str, NetworkResult] = {}
    diagnostics: list[Diagnostic] = []
    if not project.networks:
        diagnostics.append(Diagnostic(None, None, "error", "the project has no network",
                                      "add a network or start from a template"))
    for net in project.networks:
        res = _analyze_network(ctx, net, None, None)
        networks[net.name] = res
        diagnostics.extend(res.diagnostics)
    used = {k[0] for k in ctx.cache}
    for block in project.blocks:
        if block.name not in used:
            w = check_structure(project, block, block.param_defaults())
            diagnostics.extend(d for d in w.diagnostics if d.is_error)
    return Analysis(project, networks, diagnostics)


def analyze_network(project: Project, name: str) -> NetworkResult:
    return _analyze_network(_Context(project), project.network(name), None, None)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _analyze_network(ctx: _Context, net: NetworkModel, block_values: dict[str, Any] | None,
                     given: dict[str, Spec] | None) -> NetworkResult:
    w = check_structure(ctx.project, net, block_values)
    diagnostics = list(w.diagnostics)
    nodes: dict[str, NodeResult] = {}
    for node in net.nodes:
        if node.id in w.types:
            nodes[node.id] = NodeResult(node, w.types[node.id], w.params.get(node.id))
    for node_id in w.order:
        res = nodes[node_id]
        res.in_vars = w.sources[node_id]
        if res.params is None:
            continue
        ins, complete = _gather_inputs(w, nodes, node_id)
        res.ins = ins
        if not complete:
            continue  # an upstream problem is already reported; do not cascade
        try:
            if res.role == "block_input":
                res.outs = _block_input_spec(net, res, given)
            elif res.role == "block":
                res.outs = _infer_block(ctx, net, res, diagnostics)
            else:
                res.outs = res.cls.infer(res.params, ins)
            res.ok = True
        except ShapeError as err:
            diagnostics.append(Diagnostic(node_id, err.port, "error", err.message, err.hint,
                                          net.name, res.node.name))
        except Exception as err:  # a bug in a shape rule must not take the editor down
            diagnostics.append(Diagnostic(
                node_id, None, "error", f"shape rule failed: {type(err).__name__}: {err}",
                "this is a Layerloom bug; please report it with the project file",
                net.name, res.node.name))
    return NetworkResult(net, w.order, nodes, diagnostics, block_values)


def _gather_inputs(w: Wiring, nodes: dict[str, NodeResult], node_id: str) -> tuple[dict, bool]:
    ins: dict[str, Any] = {}
    complete = True
    for port in w.in_ports[node_id]:
        specs = []
        for src, sport in w.sources[node_id].get(port.name, []):
            src_res = nodes.get(src)
            spec = src_res.outs.get(sport) if src_res else None
            if spec is None:
                complete = False
            specs.append(spec)
        if port.variadic:
            ins[port.name] = specs
        elif specs:
            ins[port.name] = specs[0]
        elif not port.optional:
            complete = False
    return ins, complete


def _block_input_spec(net: NetworkModel, res: NodeResult, given: dict[str, Spec] | None) -> dict:
    if given is None:
        raise _Unknown()
    spec = given.get(res.node.name)
    if spec is None:
        raise ShapeError(f"block input '{res.node.name}' receives nothing", "", None)
    return {"y": spec}


class _Unknown(ShapeError):
    """A block seen on its own: inputs have no shape until it is placed."""

    def __init__(self) -> None:
        super().__init__("block input has no shape outside a block node", "", None)


def _infer_block(ctx: _Context, net: NetworkModel, res: NodeResult,
                 diagnostics: list[Diagnostic]) -> dict[str, Spec]:
    params = res.params
    block: BlockModel = ctx.project.block(params.block)  # type: ignore[union-attr]
    if block.name in ctx.stack or len(ctx.stack) >= MAX_BLOCK_DEPTH:
        raise ShapeError(f"block '{block.name}' contains itself", "remove the recursive block node")
    values = block_args(ctx.project, params)
    current: dict[str, Spec] = dict(res.ins)
    outs: dict[str, Spec] = {}
    res.instances = []
    for r in range(params.repeat):  # type: ignore[union-attr]
        key = (block.name, _freeze(values), tuple(sorted(current.items())))
        inst = ctx.cache.get(key)
        if inst is None:
            ctx.stack.append(block.name)
            try:
                inst = _analyze_network(ctx, block, values, current)
            finally:
                ctx.stack.pop()
            ctx.cache[key] = inst
        res.instances.append(inst)
        errors = [d for d in inst.diagnostics if d.is_error]
        if errors:
            first = errors[0]
            where = f"in block '{block.name}'" + (f" (repeat {r + 1})" if params.repeat > 1 else "")
            raise ShapeError(f"{where}, node '{first.node_name}': {first.message}", first.hint,
                             None)
        outs = {o.node.name: o.ins["x"] for o in inst.outputs() if "x" in o.ins}
        in_names = [i.node.name for i in inst.inputs()]
        if params.repeat > 1 and len(outs) > len(in_names):
            raise ShapeError(
                f"block '{block.name}' is repeated but has more outputs than inputs, so a repeat "
                "cannot feed the next", "set repeat to 1, or remove the extra outputs")
        # The i-th output feeds the i-th input of the next repeat; later inputs pass unchanged.
        current = {**current, **dict(zip(in_names, outs.values()))}
    return outs
