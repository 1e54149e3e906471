"""Analysis -> one Python module of plain PyTorch: helpers, one class per block, one per network.

The text produced here is the only form in which a model runs: ``build`` execs it and ``export``
writes it. Names come from the users' node names through a :class:`Namespace` (the idea of
torch.fx's ``_Namespace``): snake_case, never a keyword, builtin or clash.

Blocks come out in two forms, as one would write them by hand:

* A block whose graph is a plain chain of layers (each one input, one output, used once) is an
  ``nn.Sequential`` of its layers, with no class of its own; a chain block inside another one is
  flattened into it. So VGG's stages make one ``features`` Sequential and ResNet's stages one
  Sequential of residual blocks each, and the state_dict keys equal torchvision's
  (``features.0.weight``, ``layer2.0.downsample.0.weight``).
* Any other block is a class whose ``__init__`` takes every declared block param by name, plus
  every inferred constructor argument that differs between the block's instances (a stage's
  in_channels), named after the torch argument. A layer param bound to a block param (``$param``)
  is written as that name, so ResNet's ``BasicBlockDown(in_channels, planes, stride)`` reads as
  by hand.

Forward code reuses a variable's name once its value is not needed again (``x = self.bn1(x)``)
and keeps a new one where a value is used again (a residual's input). Shape comments appear
where a shape changes; inside a block they name sizes after the block's arguments and its
input (``[N, planes, H/2, W/2]``).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nodes import Call, Emission
from nodes.base import HELPER_DEPS, HELPER_IMPORTS, HELPERS, GraphSpec, Role, Spec, TensorSpec

from .ports import is_ref
from .project import PARAM_REF_KEY
from .pysource import (
    RESERVED,
    CallExpr,
    CodegenError,
    Expr,
    Namespace,
    Repeat,
    camel_case,
    comment,
    data_literal,
    docstring,
    escape_text,
    flat,
    layout,
    layout_def,
    literal,
    snake_case,
    width,
)
from .shapes import Analysis, NetworkResult, NodeResult, analyze
from .verify import verify_source

VERSION = "0.1.0"
LINE_LENGTH = 100

__all__ = ["CodegenError", "Namespace", "PythonSource", "VERSION", "camel_case", "comment",
           "data_literal", "docstring", "escape_text", "generate", "literal", "snake_case",
           "spec_label", "strip_tags", "verify_source"]


@dataclass
class PythonSource:
    """Generated text plus where things landed in it."""

    text: str
    network_classes: dict[str, str]  # network name -> class name
    block_classes: dict[str, str]
    #: (network or block name, node id) -> 1-based line numbers of that node's code
    node_lines: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    analysis: Analysis | None = None
    #: (network name, node id) -> attribute name of that node's submodule in the network class
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)


def spec_label(spec: Spec | None) -> str:
    if spec is None:
        return "?"
    return spec.label()


class _VarList(list):
    def __format__(self, spec: str) -> str:
        return ", ".join(self)


#: Argument function of a class scope: (values per instance, default name, node name, whether
#: the values are one constant) -> the expression to write, or None (constant: write the literal).
ArgFor = Callable[[tuple, str, str, bool], "str | None"]


@dataclass
class _Scope:
    """Where a constructor is written: a network (one instance, literals only) or a block class
    (one call per instance: values that differ become ``__init__`` arguments)."""

    #: None in a network; a block class's argument lifter otherwise
    arg_for: ArgFor | None = None
    #: block param -> the expression that holds it here (a class's argument name)
    env: dict[str, str] = field(default_factory=dict)


_IMPORT_PREFIX = re.compile(r"\b(torch|F|math)\.")
_IMPORT_LINES = {"math": "import math", "NamedTuple": "from typing import NamedTuple",
                 "torch": "import torch", "F": "import torch.nn.functional as F"}
_DIM_LETTERS = {2: ("N", "C"), 3: ("N", "L", "C"), 4: ("N", "C", "H", "W"),
                5: ("N", "C", "D", "H", "W")}


def generate(project_or_analysis: Any) -> PythonSource:
    analysis = (project_or_analysis if isinstance(project_or_analysis, Analysis)
                else analyze(project_or_analysis))
    if analysis.errors:
        lines = "\n".join(f"  {d}" for d in analysis.errors[:10])
        raise CodegenError(f"the project has {len(analysis.errors)} error(s):\n{lines}")
    return _Generator(analysis).run()


class _Generator:
    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.project = analysis.project
        self.module_ns = Namespace()
        self.helpers: set[str] = set()
        self.imports: set[str] = {"nn"}
        self.block_classes: dict[str, str] = {}
        self.block_arg_names: dict[str, list[str]] = {}  # block -> __init__ arg names in order
        self.block_param_args: dict[str, dict[str, str]] = {}  # block -> {param: arg name}
        #: block name -> {instance id -> {arg name -> value}}
        self.block_inst_args: dict[str, dict[int, dict[str, Any]]] = {}
        self.node_lines: dict[tuple[str, str], list[int]] = {}
        self.attrs: dict[tuple[str, str], str] = {}
        #: location tags: index -> (network or block name, node id); see :meth:`_tag`
        self.tags: list[tuple[str, str]] = []
        self._chains: dict[int, list[str] | None] = {}
        self.sequential: set[str] = set()

    # -- driver -------------------------------------------------------------------------------
    def run(self) -> PythonSource:
        self.instances = self._instances()
        self.sequential = {name for name, insts in self.instances.items()
                           if self._chain(insts[0]) is not None}
        block_order = [b for b in self._block_order() if b not in self.sequential]
        for name in block_order:
            self.block_classes[name] = self.module_ns.create(name, camel=True)
        network_classes = {n: self.module_ns.create(n, camel=True) for n in self.analysis.networks}
        body: list[str] = []
        for name in block_order:
            body.append(self._block_class(name))
        for name, res in self.analysis.networks.items():
            body.append(self._network_class(network_classes[name], res))
        body.append(self._registry(network_classes))
        helpers = self._helpers()
        head = self._header(network_classes)
        parts = [head] + helpers + body
        text = "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"
        node_lines = self._locate_lines(text)
        return PythonSource(strip_tags(text), network_classes, dict(self.block_classes), node_lines,
                            self.analysis, self.attrs)

    def _tag(self, scope: str, node_id: str) -> str:
        """A location mark for the end of a line: NUL, an index, NUL.

        The node's scope and id stay beside the source (in ``self.tags``), never inside it; NUL
        cannot come from project text (escape_text writes it as ``\\x00``), and the marks are
        stripped before anyone sees or runs the text.
        """
        self.tags.append((scope, node_id))
        return f"\x00{len(self.tags) - 1}\x00"

    def _header(self, classes: dict[str, str]) -> str:
        title = escape_text(self.project.name or "Untitled")
        nets = ", ".join(classes.values())
        from nodes.opaque import user_code_refs

        refs = user_code_refs(self.project)  # opaque nodes: the export needs the user's files
        needs = "Needs PyTorch and your code (below)." if refs else "Needs only PyTorch."
        sizes = "N is the batch size, T a sequence length" + (
            "; inside a block, sizes are named after the block's arguments and its input's "
            "(C, H, W)." if self.block_classes else ".")
        about = f"Networks: {nets}. {needs} A comment gives a value's shape where it changes:"
        doc = [f'"""{title} — PyTorch code generated by Layerloom {VERSION}.', "",
               *(line for part in ((about, sizes) if len(about) <= 100 else (f"{about} {sizes}",))
                 for line in textwrap.wrap(part, 100, break_long_words=False,
                                           break_on_hyphens=False))]  # at 100 columns
        if refs:
            doc += ["", "It imports these classes of yours (opaque nodes); keep the files there:"]
            doc += [f"  {escape_text(r)}" for r in refs]
        doc.append('"""')
        return "\n".join(doc) + "\n\n" + self._import_lines()

    def _import_lines(self) -> str:
        """Exactly the imports the emitted code declared it uses (see :meth:`_need`)."""
        lines = ["from __future__ import annotations", ""]
        std = [_IMPORT_LINES[k] for k in ("math", "NamedTuple") if k in self.imports]
        if std:
            lines += std + [""]
        lines += [_IMPORT_LINES[k] for k in ("torch", "F") if k in self.imports]
        names = [k for k in ("Tensor", "nn") if k in self.imports]
        if names:
            lines.append(f"from torch import {', '.join(names)}")
        return "\n".join(lines)

    def _need_emission(self, em: Emission) -> None:
        """Record the imports and helpers one emission uses."""
        self.helpers.update(em.helpers)
        self.imports.update(em.imports)
        self.imports.update(_IMPORT_PREFIX.findall(em.call))
        if em.init is not None:
            self._need_func(em.init.func)

    def _need_func(self, func: str) -> None:
        root = func.split(".")[0]
        if root in ("nn", "torch", "F", "math"):
            self.imports.add(root)
        elif root in HELPERS:
            self.helpers.add(root)

    def _helpers(self) -> list[str]:
        wanted: set[str] = set()
        stack = list(self.helpers)
        while stack:
            h = stack.pop()
            if h in wanted:
                continue
            wanted.add(h)
            stack.extend(HELPER_DEPS.get(h, ()))
        for h in wanted:
            self.imports.update(HELPER_IMPORTS.get(h, ()))
        return [HELPERS[h] for h in HELPERS if h in wanted]

    def _registry(self, classes: dict[str, str]) -> str:
        items = [f"{literal(name)}: {cls}" for name, cls in classes.items()]
        head = "NETWORKS: dict[str, type[nn.Module]] = {"
        one = head + ", ".join(items) + "}"
        if width(one) > LINE_LENGTH:
            one = "\n".join([head] + [f"    {item}," for item in items] + ["}"])
        return "# Network name (as in the Layerloom project) -> class.\n" + one

    def _locate_lines(self, text: str) -> dict[tuple[str, str], list[int]]:
        out: dict[tuple[str, str], list[int]] = {}
        for i, line in enumerate(text.split("\n"), start=1):
            for m in _TAG.finditer(line):
                out.setdefault(self.tags[int(m.group(1))], []).append(i)
        return out

    # -- block ordering, instances and chains -------------------------------------------------
    def _instances(self) -> dict[str, list[NetworkResult]]:
        """Every distinct analysed instance of each block, found by walking all networks."""
        found: dict[str, list[NetworkResult]] = {}
        seen: set[int] = set()

        def walk(res: NetworkResult) -> None:
            for node_id in res.order:
                nr = res.nodes[node_id]
                if nr.role == Role.BLOCK:
                    for inst in nr.instances:
                        if id(inst) not in seen:
                            seen.add(id(inst))
                            found.setdefault(nr.params.block, []).append(inst)  # type: ignore
                            walk(inst)

        for res in self.analysis.networks.values():
            walk(res)
        return found

    def _block_order(self) -> list[str]:
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            for inst in self.instances.get(name, []):
                for nr in inst.nodes.values():
                    if nr.role == Role.BLOCK and nr.params is not None:
                        visit(nr.params.block)  # type: ignore[union-attr]
            order.append(name)

        for name in self.instances:
            visit(name)
        return order

    def _chain(self, res: NetworkResult) -> list[str] | None:
        """The node ids of a block that is a plain chain of layers, in order; else None.

        A chain: one Block Input, one Block Output, and between them nodes of one input and one
        output each, every value used once by the next; each node a module called on its input
        (``{self}({x})``), a no-op, or a block node with one input and one output.
        """
        key = id(res)
        if key not in self._chains:
            self._chains[key] = self._find_chain(res)
        return self._chains[key]

    def _find_chain(self, res: NetworkResult) -> list[str] | None:
        ins, outs = res.inputs(), res.outputs()
        if len(ins) != 1 or len(outs) != 1 or len(ins[0].outs) != 1:
            return None
        consumers: dict[tuple[str, str], list[str]] = {}
        for nid in res.order:
            for srcs in res.nodes[nid].in_vars.values():
                for src in srcs:
                    consumers.setdefault(tuple(src), []).append(nid)  # type: ignore[arg-type]
        chain: list[str] = []
        value = (ins[0].node.id, next(iter(ins[0].outs)))
        layers = 0
        while True:
            users = consumers.get(value, [])
            if len(users) != 1:
                return None
            nr = res.nodes[users[0]]
            if sum(len(v) for v in nr.in_vars.values()) != 1:
                return None
            if nr.role == Role.BLOCK_OUTPUT:
                break
            if nr.role == Role.OP:
                em = nr.cls.emit(nr.params, nr.ins)
                plain = em.init is not None and em.call == "{self}({x})" and em.unpack is None
                if not (plain or em.is_identity):
                    return None
                layers += plain
            elif nr.role == Role.BLOCK:
                if len(nr.instances[0].outputs()) != 1 or len(nr.in_vars) != 1:
                    return None
                layers += 1
            else:
                return None
            if len(nr.outs) != 1:
                return None
            chain.append(nr.node.id)
            value = (nr.node.id, next(iter(nr.outs)))
        if layers == 0 or len(chain) != len(res.order) - 2:
            return None
        return chain

    # -- constructors -------------------------------------------------------------------------
    def _value(self, name: str, values: tuple, nr: NodeResult, insts: list[NetworkResult],
               scope: _Scope, inferred: bool) -> str:
        """One constructor argument: a bound block param's name, a lifted argument or a literal.

        ``values`` holds the argument in each of ``insts`` (the instances of the graph that holds
        ``nr``); a param written ``$param`` takes the scope's name for it when the value passed
        through unchanged."""
        raw = nr.node.params.get(name)
        if is_ref(raw):
            pname = raw[PARAM_REF_KEY]
            expr = scope.env.get(pname)
            if expr is not None and all(
                    repr(v) == repr((inst.block_values or {}).get(pname))
                    for v, inst in zip(values, insts, strict=False)):
                return expr
        if scope.arg_for is None:
            return literal(values[0])
        node_name = snake_case(nr.node.name)
        if len(set(map(repr, values))) > 1:
            return scope.arg_for(values, name, node_name, False) or literal(values[0])
        if inferred:
            named = scope.arg_for(values, name, node_name, True)
            if named is not None:
                return named
        return literal(values[0])

    def _ctor(self, calls: list[Call], nr: NodeResult, insts: list[NetworkResult],
              scope: _Scope, tag: str) -> CallExpr:
        """A layer's constructor from its Call in each instance of the graph that holds it."""
        first = calls[0]
        self._need_func(first.func)
        fields = nr.cls.Params.model_fields
        defaults = _field_defaults(nr.cls)
        parts: list[str] = []
        for i in range(len(first.args)):
            values = tuple(c.args[i] if i < len(c.args) else None for c in calls)
            name = first.arg_name(i)
            parts.append(self._value(name, values, nr, insts, scope, name not in fields))
        kw_keys = list(dict(first.kwargs))
        for c in calls[1:]:
            for k in dict(c.kwargs):
                if k not in kw_keys:
                    kw_keys.append(k)
        for k in kw_keys:
            default = defaults.get(k, _DEFAULT)
            values = tuple(dict(c.kwargs).get(k, default) for c in calls)
            if _DEFAULT in values:
                raise CodegenError(f"node '{nr.node.name}': argument '{k}' is set in some uses of "
                                   "its block and not in others; set it in the node's params")
            parts.append(f"{k}={self._value(k, values, nr, insts, scope, k not in fields)}")
        return CallExpr(first.func, tuple(parts), tag)

    def _layer_calls(self, nrs: list[NodeResult]) -> list[Call] | None:
        """The constructor of one op node in each instance; None when it writes no layer."""
        ems = [nr.cls.emit(nr.params, nr.ins) for nr in nrs]
        for em in ems:
            self._need_emission(em)
        if all(em.init is None for em in ems):
            return None
        if any(em.init is None for em in ems):
            raise CodegenError(f"node '{nrs[0].node.name}' is a no-op in some uses of its block "
                               "and a layer in others; give it the same setting everywhere")
        return [em.init for em in ems]  # type: ignore[misc]

    def _class_ctor(self, uses: list[NodeResult], insts: list[NetworkResult], r: int,
                    scope: _Scope, tag: str) -> CallExpr:
        """``Block(arg=..., ...)`` for the r-th repeat of a class block node, in every use."""
        name = uses[0].params.block  # type: ignore[union-attr]
        param_of = {a: p for p, a in self.block_param_args[name].items()}
        raw_args = uses[0].node.params.get("args") or {}
        parts = []
        for a in self.block_arg_names[name]:
            vec = tuple(self.block_inst_args[name][id(u.instances[r])][a] for u in uses)
            raw = raw_args.get(param_of.get(a, ""))
            expr = None
            if is_ref(raw):
                pname = raw[PARAM_REF_KEY]
                if scope.env.get(pname) is not None and all(
                        repr(v) == repr((inst.block_values or {}).get(pname))
                        for v, inst in zip(vec, insts, strict=False)):
                    expr = scope.env[pname]
            if expr is None and scope.arg_for is not None and len(set(map(repr, vec))) > 1:
                expr = scope.arg_for(vec, a, snake_case(uses[0].node.name), False)
            parts.append(f"{a}={expr or literal(vec[0])}")
        return CallExpr(self.block_classes[name], tuple(parts), tag)

    def _inner_env(self, uses: list[NodeResult], scope: _Scope) -> dict[str, str]:
        """Expressions for a chain block's params inside the enclosing scope: a param passed as
        ``$param`` of the enclosing block keeps that block's name; others are literals."""
        raw_args = uses[0].node.params.get("args") or {}
        env = {}
        for pname, raw in raw_args.items():
            if is_ref(raw) and scope.env.get(raw[PARAM_REF_KEY]) is not None:
                env[pname] = scope.env[raw[PARAM_REF_KEY]]
        return env

    def _seq_items(self, uses: list[NodeResult], insts: list[NetworkResult],
                   scope: _Scope) -> list[Expr]:
        """The layers of a chain block node, every repeat, nested chain blocks flattened."""
        first = uses[0]
        name = first.params.block  # type: ignore[union-attr]
        self._same_repeat(uses)
        inner = _Scope(scope.arg_for, self._inner_env(uses, scope))
        items: list[Expr] = []
        for r in range(len(first.instances)):
            reps = [u.instances[r] for u in uses]
            for nid in self._chain(reps[0]) or []:
                nrs = [rep.nodes[nid] for rep in reps]
                items += self._items(nrs, reps, inner, self._tag(name, nid))
        return _compress(items)

    def _items(self, nrs: list[NodeResult], insts: list[NetworkResult], scope: _Scope,
               tag: str) -> list[Expr]:
        """What one node of a chain contributes to a Sequential."""
        nr = nrs[0]
        if nr.role == Role.OP:
            calls = self._layer_calls(nrs)
            return [] if calls is None else [self._ctor(calls, nr, insts, scope, tag)]
        block = nr.params.block  # type: ignore[union-attr]
        if block in self.sequential:
            return self._seq_items(nrs, insts, scope)
        self._same_repeat(nrs)
        return [self._class_ctor(nrs, insts, r, scope, tag) for r in range(len(nr.instances))]

    def _same_repeat(self, uses: list[NodeResult]) -> None:
        if len({len(u.instances) for u in uses}) > 1:
            raise CodegenError(f"block node '{uses[0].node.name}' repeats a different number of "
                               "times in different uses of its enclosing block; give it a fixed "
                               "repeat")

    def _block_expr(self, uses: list[NodeResult], insts: list[NetworkResult], scope: _Scope,
                    tag: str) -> Expr:
        """The submodule of a block node: a layer, a Sequential, a class instance or a
        ModuleList (a repeated block of several inputs)."""
        first = uses[0]
        name = first.params.block  # type: ignore[union-attr]
        if name in self.sequential:
            items = self._seq_items(uses, insts, scope)
            if len(items) == 1 and not isinstance(items[0], Repeat):
                one = items[0]
                return CallExpr(one.func, one.args, one.tag + tag) if isinstance(
                    one, CallExpr) else one
            return CallExpr("nn.Sequential", tuple(items), tag)
        self._same_repeat(uses)
        n = len(first.instances)
        ctors = [self._class_ctor(uses, insts, r, scope, "") for r in range(n)]
        if n == 1:
            return CallExpr(ctors[0].func, ctors[0].args, tag)
        single_io = len(first.in_vars) == 1 and len(first.instances[0].outputs()) == 1
        if single_io:
            return CallExpr("nn.Sequential", tuple(_compress(list(ctors))), tag)
        texts = [flat(c) for c in ctors]
        if len(set(texts)) == 1:
            return CallExpr("nn.ModuleList", (Repeat(ctors[0], n, star=False),), tag)
        return CallExpr("nn.ModuleList", (f"[{', '.join(texts)}]",), tag)

    # -- classes ------------------------------------------------------------------------------
    def _block_class(self, name: str) -> str:
        block = self.project.block(name)
        instances = self.instances[name]
        cls_name = self.block_classes[name]
        ns = Namespace(self.module_ns.used)
        attr_ns = Namespace()
        first = instances[0]
        param_args = {p.name: ns.create(p.name) for p in block.params}
        param_vectors = {param_args[p.name]: tuple((inst.block_values or {})[p.name]
                                                  for inst in instances) for p in block.params}
        lifted: list[tuple[str, tuple]] = []  # (arg name, values per instance)

        def arg_for(values: tuple, default_name: str, node_name: str,
                    constant: bool) -> str | None:
            if constant:
                v = values[0]
                if type(v) is not int or v < 2:
                    return None
                hits = [a for a, vec in param_vectors.items()
                        if all(type(x) is int for x in vec) and vec == values]
                return hits[0] if len(hits) == 1 else None
            for existing, vec in lifted:
                if vec == values and _same_types(vec, values):
                    return existing
            for arg, vec in param_vectors.items():
                if vec == values and _same_types(vec, values):
                    return arg
            candidate = (default_name if default_name not in ns.used
                         else f"{node_name}_{default_name}")
            arg = ns.create(candidate)
            lifted.append((arg, values))
            return arg

        scope = _Scope(arg_for, dict(param_args))
        init_lines: list[str] = []
        attr_names: dict[str, str] = {}
        for node_id in first.order:
            nr = first.nodes[node_id]
            nrs = [inst.nodes[node_id] for inst in instances]
            expr: Expr | None = None
            if nr.role == Role.OP:
                calls = self._layer_calls(nrs)
                if calls is not None:
                    expr = self._ctor(calls, nr, instances, scope, self._tag(name, node_id))
            elif nr.role == Role.BLOCK:
                expr = self._block_expr(nrs, instances, scope, self._tag(name, node_id))
            if expr is not None:
                attr = attr_ns.create(nr.node.name)
                attr_names[node_id] = attr
                init_lines += layout(expr, 8, f"self.{attr} = ")
        self.block_arg_names[name] = [a for a, _ in lifted] + list(param_vectors)
        self.block_param_args[name] = param_args
        self.block_inst_args[name] = {
            id(inst): {**{a: vec[i] for a, vec in lifted},
                       **{a: vec[i] for a, vec in param_vectors.items()}}
            for i, inst in enumerate(instances)}
        sizes = [(a, vec) for a, vec in [*param_vectors.items(), *lifted]
                 if all(type(v) is int for v in vec)]
        fwd = self._forward(name, instances, attr_names, ns, sizes)
        sig = [f"{a}: {type(vec[0]).__name__}" for a, vec in [*lifted, *param_vectors.items()]]
        doc = block.description.strip() or f"The '{name}' block."
        lines = [f"class {cls_name}(nn.Module):", docstring(doc, "    "), ""]
        lines += layout_def(4, "__init__", ["self", *sig], "None")
        lines.append("        super().__init__()")
        lines += init_lines
        lines.append("")
        lines += fwd
        return "\n".join(lines)

    def _network_class(self, cls_name: str, res: NetworkResult) -> str:
        attr_ns = Namespace()
        attr_names: dict[str, str] = {}
        init_lines: list[str] = []
        scope = res.net.name
        here = _Scope()
        for node_id in res.order:
            nr = res.nodes[node_id]
            expr: Expr | None = None
            if nr.role == Role.OP:
                calls = self._layer_calls([nr])
                if calls is not None:
                    expr = self._ctor(calls, nr, [res], here, self._tag(scope, node_id))
            elif nr.role == Role.BLOCK:
                expr = self._block_expr([nr], [res], here, self._tag(scope, node_id))
            if expr is not None:
                attr = attr_ns.create(nr.node.name)
                attr_names[node_id] = attr
                init_lines += layout(expr, 8, f"self.{attr} = ")
        self.attrs.update({(scope, k): v for k, v in attr_names.items()})
        doc = res.net.description.strip() or f"The '{res.net.name}' network."
        lines = [f"class {cls_name}(nn.Module):", docstring(doc, "    "), "",
                 "    def __init__(self) -> None:", "        super().__init__()"]
        lines += init_lines
        lines.append("")
        lines += self._forward(scope, [res], attr_names, Namespace(), [])
        return "\n".join(lines)

    # -- forward ------------------------------------------------------------------------------
    def _forward(self, scope: str, insts: list[NetworkResult], attrs: dict[str, str],
                 arg_ns: Namespace, sizes: list[tuple[str, tuple]]) -> list[str]:
        res = insts[0]
        ns = Namespace((arg_ns.used - RESERVED) | self.module_ns.used)
        namer = _Shapes(insts, sizes)
        var: dict[tuple[str, str], str] = {}
        alias: dict[tuple[str, str], tuple[str, str]] = {}
        ems: dict[str, Emission] = {}
        for node_id in res.order:
            nr = res.nodes[node_id]
            if nr.role == Role.OP:
                em = nr.cls.emit(nr.params, nr.ins)
                ems[node_id] = em
                if em.is_identity:
                    src = tuple(nr.in_vars["x"][0])
                    alias[(node_id, next(iter(nr.outs)))] = alias.get(src, src)  # type: ignore
        last_use: dict[tuple[str, str], int] = {}
        for pos, node_id in enumerate(res.order):
            if node_id in ems and ems[node_id].is_identity:
                continue
            if res.nodes[node_id].role.is_sink:
                pos = len(res.order)  # returned at the end: its name must hold till then
            for srcs in res.nodes[node_id].in_vars.values():
                for src in srcs:
                    src = tuple(src)
                    key = alias.get(src, src)  # type: ignore[arg-type]
                    last_use[key] = max(pos, last_use.get(key, -1))  # type: ignore[index]
        consumers: dict[tuple[str, str], int] = {}
        for node_id in res.order:
            for srcs in res.nodes[node_id].in_vars.values():
                for src in srcs:
                    key = alias.get(tuple(src), tuple(src))  # type: ignore[arg-type]
                    consumers[key] = consumers.get(key, 0) + 1  # type: ignore[index]
        live: set[str] = set()
        chain_names: set[str] = set()

        chain_name = "out" if scope in self.instances else "x"
        #: names of one port of a several-output node (``wte_weight``): never reused for another
        port_names: set[str] = set()

        def fresh(node_name: str, values: list[tuple[str, str]], multi: bool) -> str:
            """A new name: ``x`` (in a network) or ``out`` (in a block) for a value used once
            along a chain, else the node's own."""
            used_once = not multi and all(consumers.get(v, 0) <= 1 for v in values)
            for name in dict.fromkeys([chain_name, "out"]):
                if used_once and name not in live and (name in chain_names
                                                       or name not in ns.used):
                    ns.reserve(name)
                    chain_names.add(name)
                    return name
            return ns.create(node_name)

        def spec_of(src: Any) -> Spec | None:
            src = tuple(alias.get(tuple(src), tuple(src)))  # type: ignore[arg-type]
            return res.nodes[src[0]].outs.get(src[1])

        args: list[str] = []
        body: list[str] = []
        returns: list[str] = []
        for pos, node_id in enumerate(res.order):
            nr = res.nodes[node_id]
            tag = self._tag(scope, node_id)
            if nr.role.is_source:
                ports = list(nr.outs) or [p.name for p in nr.cls.outputs]
                for port in ports:
                    v = ns.create(nr.node.name if len(ports) == 1 else port)
                    var[(node_id, port)] = v
                    live.add(v)
                    args.append(f"{v}: {self._annotation(nr.outs.get(port))}")
                continue
            if node_id in ems and ems[node_id].is_identity:
                continue

            def name_of(src: Any) -> str:
                src = tuple(src)
                return var[alias.get(src, src)]

            in_vars = {p: [name_of(s) for s in srcs] for p, srcs in nr.in_vars.items()}
            if nr.role.is_sink:
                returns.append(in_vars["x"][0])
                continue
            sources = [s for srcs in nr.in_vars.values() for s in srcs]
            dying_srcs = [s for s in sources if last_use.get(alias.get(tuple(s), tuple(s))) == pos]
            for s in dying_srcs:
                live.discard(name_of(s))
            # A name is reused for a value of the same kind (not ids -> embeddings, not one port
            # of several); a wide merge's own name reads better than one of its inputs'.
            out_spec = next(iter(nr.outs.values()), None) if len(nr.outs) == 1 else None
            dying = [name_of(s) for s in dying_srcs
                     if name_of(s) not in port_names and _same_kind(spec_of(s), out_spec)]
            if len(sources) > 2:
                dying = []
            note = namer.note(node_id)
            if nr.role == Role.BLOCK:
                body += self._block_call(nr, attrs[node_id], in_vars, ns, var, note, tag, dying,
                                         fresh, live)
                continue
            em = ems[node_id]
            self._need_emission(em)
            fmt: dict[str, Any] = {"self": f"self.{attrs[node_id]}" if node_id in attrs else ""}
            for port in nr.cls.inputs:
                vs = in_vars.get(port.name, [])
                fmt[port.name] = _VarList(vs) if port.variadic else (vs[0] if vs else "None")
            bulk = _bulk_call(nr.cls.id, in_vars)
            if bulk is not None and bulk.startswith("math."):
                self.imports.add("math")
            call = bulk or em.call.format(**fmt)
            outs = list(nr.outs)
            out_names: dict[str, str] = {}
            if len(outs) == 1:
                value = (node_id, outs[0])
                out_names[outs[0]] = (dying[0] if dying
                                      else fresh(nr.node.name, [value], len(sources) > 2))
            else:  # an output nothing reads is unpacked into `_`
                for port in outs:
                    if consumers.get((node_id, port), 0):
                        out_names[port] = ns.create(f"{nr.node.name}_{port}")
                        port_names.add(out_names[port])
            for port, v in out_names.items():
                var[(node_id, port)] = v
                live.add(v)
            if em.unpack:
                target = em.unpack.format(**{p: out_names.get(p, "_") for p in
                                             [q.name for q in nr.cls.outputs]})
            else:
                target = out_names.get(outs[0], "_") if outs else "_"
            body += _statement(f"{target} = {call}", note, tag)
        ret_type = ("Tensor" if len(returns) == 1
                    else f"tuple[{', '.join(['Tensor'] * len(returns))}]")
        if any(isinstance(o.ins.get("x"), GraphSpec) for o in res.outputs()):
            ret_type = "Graph" if len(returns) == 1 else "tuple"
        if "Tensor" in ret_type or any(a.endswith(": Tensor") for a in args):
            self.imports.add("Tensor")
        lines = layout_def(4, "forward", ["self", *args], ret_type)
        if scope in self.instances and len(insts) > 1:
            for inp in res.inputs():
                for port, spec in inp.outs.items():
                    label = namer.label(inp.node.id, port)
                    if label != spec_label(spec):
                        v = var[(inp.node.id, port)]
                        lines.append(f"        # {comment(f'{v}: {label}')}")
        lines += body
        lines.append(f"        return {', '.join(returns) if returns else 'None'}")
        return lines

    def _annotation(self, spec: Spec | None) -> str:
        if isinstance(spec, GraphSpec):
            self.helpers.add("Graph")
            return "Graph"
        return "Tensor"

    def _block_call(self, nr: NodeResult, attr: str, in_vars: dict[str, list[str]], ns: Namespace,
                    var: dict[tuple[str, str], str], note: str, tag: str, dying: list[str],
                    fresh: Callable[[str, list, bool], str], live: set[str]) -> list[str]:
        inst = nr.instances[0]
        in_names = [p for p in nr.in_vars]
        out_names = [o.node.name for o in inst.outputs()]
        args = ", ".join(in_vars[p][0] for p in in_names)
        repeat = len(nr.instances)
        single_io = len(in_names) == 1 and len(out_names) == 1
        if len(out_names) == 1 and (repeat == 1 or single_io):
            value = (nr.node.id, out_names[0])
            targets = {out_names[0]: dying[0] if dying else fresh(nr.node.name, [value], False)}
        else:
            targets = {o: ns.create(f"{nr.node.name}_{o}" if len(out_names) > 1 else nr.node.name)
                       for o in out_names}
        for port, v in targets.items():
            var[(nr.node.id, port)] = v
            live.add(v)
        target = ", ".join(targets.values())
        if repeat == 1 or single_io:
            return _statement(f"{target} = self.{attr}({args})", note, tag)
        # Repeated multi-input block: the i-th output carries into the i-th input, the rest
        # (a decoder's memory, a graph's structure) pass to every repeat unchanged.
        carried = dict(zip(in_names, targets.values(), strict=False))
        lines = [f"        {v} = {in_vars[p][0]}{tag}" for p, v in carried.items()]
        call_args = ", ".join(carried.get(p, in_vars[p][0]) for p in in_names)
        loop = f"        for layer in self.{attr}:"
        if note and width(f"{loop}  # {note}") <= LINE_LENGTH:
            loop += f"  # {note}"
        lines.append(loop + tag)
        lines.append(f"            {target} = layer({call_args}){tag}")
        return lines


def _statement(code: str, note: str, tag: str) -> list[str]:
    """One forward line with its shape comment: beside it when that fits, else above it."""
    line = f"        {code}"
    if not note:
        return [line + tag]
    if width(f"{line}  # {note}") <= LINE_LENGTH:
        return [f"{line}  # {note}{tag}"]
    return [f"        # {note}", line + tag]


class _Shapes:
    """Shape comments for one forward: a label where the shape changes; inside a block, sizes
    named after the block's integer arguments and its first input's dims (C, H, W)."""

    def __init__(self, insts: list[NetworkResult], sizes: list[tuple[str, tuple]]) -> None:
        self.insts = insts
        self.names: list[tuple[str, tuple]] = list(sizes)
        #: the first input's dims by position: (letter, values per instance), for those that vary
        self.letters: list[tuple[str, tuple] | None] = []
        ins = insts[0].inputs()
        if len(insts) > 1 and ins:
            inp = ins[0]
            port = next(iter(inp.outs), None)
            specs = [inst.nodes[inp.node.id].outs.get(port) for inst in insts]
            if port is not None and all(isinstance(s, TensorSpec) for s in specs):
                rank = specs[0].rank  # type: ignore[union-attr]
                if all(s.rank == rank for s in specs):  # type: ignore[union-attr]
                    letters = _DIM_LETTERS.get(rank, tuple(f"d{i}" for i in range(rank)))
                    for i, letter in enumerate(letters):
                        vec = tuple(s.dims[i] for s in specs)  # type: ignore[union-attr]
                        varies = len(set(vec)) > 1 and not any(v == vec for _, v in self.names)
                        self.letters.append((letter, vec) if varies else None)

    def _dim(self, vec: tuple, i: int, rank: int) -> str:
        if len(set(map(repr, vec))) == 1:
            feature_axis = 1 if rank >= 4 else rank - 1
            if i == feature_axis and type(vec[0]) is int and vec[0] > 1:
                # a block's width that one argument holds in every instance: say its name
                hits = [name for name, v in self.names if v == vec]
                if len(hits) == 1:
                    return hits[0]
            return str(vec[0])
        for name, v in self.names:
            if v == vec:
                return name
        here = self.letters[i] if i < len(self.letters) else None
        others = [x for x in self.letters if x is not None and x is not here]
        for name, v in ([here] if here else []) + others:
            if v == vec:
                return name
        if not all(type(d) is int for d in vec):
            return "*"
        for name, v in ([here] if here else []) + others + self.names:
            if all(type(d) is int and d > 1 for d in v):
                if all(b in (a // 2, (a + 1) // 2) for a, b in zip(v, vec, strict=True)):
                    return f"{name}/2"
                if all(b == 2 * a for a, b in zip(v, vec, strict=True)):
                    return f"{name}*2"
                for step, sv in self.names:  # a size divided by an argument (a stride)
                    if all(type(k) is int and k >= 1 for k in sv) and len(set(sv)) > 1 and all(
                            b in (a // k, -(-a // k)) for a, b, k in zip(v, vec, sv, strict=True)):
                        return f"{name}/{step}"
        return "*"

    def _spec(self, specs: list[Spec | None]) -> str:
        first = specs[0]
        if not all(isinstance(s, TensorSpec) for s in specs):
            return spec_label(first)
        if len({s.rank for s in specs}) > 1:  # type: ignore[union-attr]
            return "varies"
        dims = [self._dim(tuple(s.dims[i] for s in specs), i,  # type: ignore[union-attr]
                          first.rank) for i in range(first.rank)]  # type: ignore[union-attr]
        text = "[" + ", ".join(dims) + "]"
        return text if first.dtype == "float" else f"{text} {first.dtype}"  # type: ignore

    def label(self, node_id: str, port: str) -> str:
        return self._spec([inst.nodes[node_id].outs.get(port) for inst in self.insts])

    def note(self, node_id: str) -> str:
        """The comment for a node's line, or "" where the shape does not change."""
        nr = self.insts[0].nodes[node_id]
        outs = list(nr.outs)
        if len(outs) == 1:
            first_in = next(iter(nr.ins.values()), None) if nr.ins else None
            if isinstance(first_in, list):
                first_in = first_in[0] if first_in else None
            same = all(
                inst.nodes[node_id].outs.get(outs[0]) == _first_spec(inst.nodes[node_id])
                for inst in self.insts)
            if same and first_in is not None:
                return ""
        texts = []
        for port in outs:
            label = self.label(node_id, port)
            texts.append(label if len(outs) == 1 else f"{port}: {label}")
        return comment(", ".join(texts))


def _first_spec(nr: NodeResult) -> Spec | None:
    first = next(iter(nr.ins.values()), None) if nr.ins else None
    if isinstance(first, list):
        return first[0] if first else None
    return first


def _same_kind(a: Spec | None, b: Spec | None) -> bool:
    """Whether a variable holding ``a`` may be rebound to ``b``: both tensors of one dtype."""
    return isinstance(a, TensorSpec) and isinstance(b, TensorSpec) and a.dtype == b.dtype


def _same_types(a: tuple, b: tuple) -> bool:
    return all(type(x) is type(y) for x, y in zip(a, b, strict=False))


def _compress(items: list[Expr]) -> list[Expr]:
    """Runs of three or more equal submodules become ``*[item for _ in range(n)]``."""
    out: list[Expr] = []
    i = 0
    while i < len(items):
        key = strip_tags(flat(items[i]))
        j = i
        while j + 1 < len(items) and strip_tags(flat(items[j + 1])) == key:
            j += 1
        n = j - i + 1
        if n >= 3 and isinstance(items[i], CallExpr):
            tags = "".join(m.group(0) for m in _TAG.finditer("".join(map(flat, items[i:j + 1]))))
            item = items[i]
            assert isinstance(item, CallExpr)
            out.append(Repeat(CallExpr(item.func, item.args), n, tags))
        else:
            out.extend(items[i:j + 1])
        i = j + 1
    return out


def _field_defaults(cls: Any) -> dict[str, Any]:
    """A node type's Params defaults: field names equal torch's keywords, so a keyword one use
    of a block omits (it equals the default) while another sets it is filled in from here."""
    out = {}
    for name, f in cls.Params.model_fields.items():
        if not f.is_required() and f.default_factory is None:
            out[name] = f.default
    return out


_DEFAULT = object()


_TAG = re.compile("\x00([0-9]+)\x00")

#: Fan-in above which a variadic merge is written as one flat call (``sum([...])``) instead of a
#: chain ``a + b + c``: a chain of thousands of operators is nested so deeply that Python's
#: compiler overflows its stack (RecursionError). ``sum`` adds left to right from 0, so the result
#: equals the chain bit for bit.
BULK_FAN_IN = 32
_BULK = {"merge.add": "sum([{x}])", "merge.multiply": "math.prod([{x}])",
         "merge.mean": "sum([{x}]) / {n}"}


def _bulk_call(type_id: str, in_vars: dict[str, list[str]]) -> str | None:
    """The flat form of a large Add/Multiply/Mean, or None to use the node's own emission."""
    xs = in_vars.get("x", [])
    if type_id not in _BULK or len(xs) <= BULK_FAN_IN:
        return None
    return _BULK[type_id].format(x=", ".join(xs), n=len(xs))


def strip_tags(text: str) -> str:
    """Remove the location marks (see ``_Generator._tag``); the mapping travels in node_lines."""
    return _TAG.sub("", text)
