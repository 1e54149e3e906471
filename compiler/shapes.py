"""Shape inference in topological order, and the Analysis that codegen, summary and the GUI read.

One traversal serves everything: it checks structure (validate.py), infers every port's spec, and
records per node what codegen needs (validated params, input specs, block instances). A block
node is inferred by analysing the block's own graph once per repeat with the incoming specs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nodes import registry
from nodes.base import NodeType, Params, ShapeError, Spec
from nodes.io import Role, role_of
from nodes.meta import meta_infer, meta_param_count

from .diagnostics import Diagnostic
from .ports import block_args, is_ref
from .project import PARAM_REF_KEY, BlockModel, NetworkModel, NodeModel, Project
from .validate import Wiring, check_structure

MAX_BLOCK_DEPTH = 8
#: Most node instances one network may expand to (repeats multiplied through nested blocks).
#: Codegen, build and the summary all pay per instance; beyond this a file is a resource bomb.
MAX_INSTANCES = 50_000
#: Parameters of one node: an error above (2**31 = 8 GiB in fp32), a warning above the second.
MAX_NODE_PARAMS = 2**31
WARN_NODE_PARAMS = 2**28
#: Parameters of one network (counted once per node instance): an error above (32 GiB in fp32).
MAX_NETWORK_PARAMS = 2**33
#: FLOPs are counted by running the model under FlopCounterMode, about a millisecond per op on
#: the meta device; above this many node instances the summary skips them (and analysis warns)
#: so a giant graph is checked in seconds, not minutes.
MAX_FLOP_INSTANCES = 2_000


def infer_outputs(cls: type[NodeType], params: Params, ins: dict[str, Any]) -> dict[str, Spec]:
    """A type's hand-written shape rule, or the meta-device fallback when it wrote none."""
    if cls.has_shape_rule():
        return cls.infer(params, ins)
    return meta_infer(cls, params, ins)


@dataclass
class NodeResult:
    node: NodeModel
    cls: type[NodeType]
    params: Params | None
    ins: dict[str, Any] = field(default_factory=dict)  # port -> Spec, or list[Spec] if variadic
    #: Parameters of this node (one instance; a block node: all its repeats), from shapes alone.
    param_count: int = 0
    in_vars: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    outs: dict[str, Spec] = field(default_factory=dict)
    #: For block nodes: the analysis of each repeat, in order.
    instances: list["NetworkResult"] = field(default_factory=list)
    ok: bool = False

    @property
    def role(self) -> Role:
        return role_of(self.cls)


@dataclass
class NetworkResult:
    net: NetworkModel
    order: list[str]
    nodes: dict[str, NodeResult]
    diagnostics: list[Diagnostic]
    block_values: dict[str, Any] | None = None
    #: Node instances this graph expands to (each repeat of each nested block counted).
    instance_count: int = 0
    #: Parameters of the whole graph, every instance counted (from shapes, nothing allocated).
    param_count: int = 0

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
        return [self.nodes[n] for n in self.order if self.nodes[n].role.is_source]

    def outputs(self) -> list[NodeResult]:
        return [self.nodes[n] for n in self.order
                if self.nodes[n].role.is_sink]


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
        self.sizes: dict[tuple, int] = {}
        self.param_counts: dict[tuple, int] = {}


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
        if res.ok and res.instance_count > MAX_FLOP_INSTANCES:
            diagnostics.append(Diagnostic(
                None, None, "warning", f"FLOPs are not counted: {res.instance_count:,} node "
                f"instances, over the limit of {MAX_FLOP_INSTANCES:,} for counting",
                "shapes and parameter counts are still shown", net.name))
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
            if res.role == Role.BLOCK_INPUT:
                res.outs = _block_input_spec(net, res, given)
            elif res.role == Role.BLOCK:
                res.outs = _infer_block(ctx, net, res, diagnostics)
            else:
                res.outs = infer_outputs(res.cls, res.params, ins)
                res.param_count = _param_count(ctx, res)
                _check_params(net, res, diagnostics)
            res.ok = True
        except ShapeError as err:
            diagnostics.append(Diagnostic(node_id, err.port, "error", err.message, err.hint,
                                          net.name, res.node.name))
        except Exception as err:  # a bug in a shape rule must not take the editor down
            diagnostics.append(Diagnostic(
                node_id, None, "error", f"shape rule failed: {type(err).__name__}: {err}",
                "this is a Layerloom bug; please report it with the project file",
                net.name, res.node.name))
    result = NetworkResult(net, w.order, nodes, diagnostics, block_values)
    _count(result)
    if (block_values is None and result.param_count > MAX_NETWORK_PARAMS
            and all(r.param_count <= MAX_NODE_PARAMS for r in nodes.values())):
        biggest = max(nodes.values(), key=lambda r: r.param_count)
        diagnostics.append(Diagnostic(
            biggest.node.id, None, "error",
            f"the network has {result.param_count:,} parameters (~{_gib(result.param_count)} in "
            f"fp32), over the limit of {MAX_NETWORK_PARAMS:,}; the largest node has "
            f"{biggest.param_count:,}", "lower the sizes of the largest layers, or repeat fewer "
            "blocks", net.name, biggest.node.name))
    return result


def _count(result: NetworkResult) -> None:
    """Instance and parameter totals of a graph; block nodes count every repeat's instance."""
    instances = params = 0
    for res in result.nodes.values():
        if res.role == Role.BLOCK and res.instances:
            res.param_count = sum(inst.param_count for inst in res.instances)
            instances += sum(inst.instance_count for inst in res.instances)
        else:
            instances += 1
        params += res.param_count
    result.instance_count, result.param_count = instances, params


def _gib(params: int) -> str:
    return f"{params * 4 / 2**30:,.1f} GiB"


def _param_count(ctx: _Context, res: NodeResult) -> int:
    """Parameters of one op node from its params and input specs (meta device: no memory),
    memoised so a chain of equal layers builds one module, not thousands."""
    key = (res.cls, repr(res.params), repr(sorted(res.ins.items())))
    count = ctx.param_counts.get(key)
    if count is None:
        try:
            count = meta_param_count(res.cls, res.params, res.ins)
        except Exception:  # noqa: BLE001 - a module that cannot be built is reported by build
            count = 0
        ctx.param_counts[key] = count
    return count


def _check_params(net: NetworkModel, res: NodeResult, diagnostics: list[Diagnostic]) -> None:
    """An error for a node whose weights would not fit in memory, a warning for a huge one."""
    n = res.param_count
    if n <= WARN_NODE_PARAMS:
        return
    sizes = sorted(((v, k) for k, v in res.params if type(v) is int and v > 1), reverse=True)
    which = (f"lower '{sizes[0][1]}' ({sizes[0][0]:,})" if sizes else "lower its sizes")
    which += " or the size of its input" if res.ins else ""
    if n > MAX_NODE_PARAMS:
        raise ShapeError(f"has {n:,} parameters (~{_gib(n)} in fp32), over the limit of "
                         f"{MAX_NODE_PARAMS:,} for one node", which, None)
    diagnostics.append(Diagnostic(res.node.id, None, "warning",
                                  f"has {n:,} parameters (~{_gib(n)} in fp32)", which, net.name,
                                  res.node.name))


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
    size = params.repeat * _expanded_size(ctx, block, values, set())  # type: ignore[union-attr]
    if size > MAX_INSTANCES:
        raise ShapeError(
            f"block '{block.name}' repeated {params.repeat} times would expand to {size:,} node "  # type: ignore[union-attr]
            f"instances (the limit is {MAX_INSTANCES:,})",
            "lower the repeat of this block node or of the block nodes inside it", None)
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
        current = {**current, **dict(zip(in_names, outs.values(), strict=False))}
    return outs


def _expanded_size(ctx: _Context, block: BlockModel, values: dict[str, Any],
                   visiting: set[str]) -> int:
    """Node instances one repeat of ``block`` expands to, read from the raw file before any
    analysis (a product of repeats through nesting; memoised), so a bomb costs nothing."""
    key = (block.name, _freeze(values))
    if key in ctx.sizes:
        return ctx.sizes[key]
    if block.name in visiting:
        return 0  # recursion is reported by inference; it must not loop here
    visiting.add(block.name)
    total = 0
    for node in block.nodes:
        if not _is_block_node(node):
            total += 1
            continue
        inner_name = _raw(node.params.get("block"), values)
        if not isinstance(inner_name, str) or not ctx.project.has_block(inner_name):
            total += 1
            continue
        inner = ctx.project.block(inner_name)
        repeat = _raw(node.params.get("repeat", 1), values)
        repeat = repeat if type(repeat) is int and repeat > 0 else 1
        args = node.params.get("args")
        inner_values = inner.param_defaults()
        if isinstance(args, dict):
            inner_values.update({k: _raw(v, values) for k, v in args.items()})
        total += repeat * _expanded_size(ctx, inner, inner_values, visiting)
    visiting.discard(block.name)
    ctx.sizes[key] = total
    return total


def _is_block_node(node: NodeModel) -> bool:
    return registry.has(node.type) and role_of(registry.get(node.type)) == Role.BLOCK


def _raw(value: Any, values: dict[str, Any]) -> Any:
    """A raw param value with a ``$param`` reference looked up in the enclosing block's values."""
    if is_ref(value):
        return values.get(value[PARAM_REF_KEY])
    return value
