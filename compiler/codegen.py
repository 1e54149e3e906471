"""Analysis -> one Python module of plain PyTorch: helpers, one class per block, one per network.

The text produced here is the only form in which a model runs: ``build`` execs it and ``export``
writes it. Names come from the users' node names through a :class:`Namespace` (the idea of
torch.fx's ``_Namespace``): snake_case, never a keyword, builtin or clash.

Blocks: every inner constructor argument that differs between the block's instances (a stage's
width, an inferred in_channels) is lifted into the block class's ``__init__``; it takes the name of
the block param whose values it matches in every instance, else the torch argument's own name.
So ResNet's stages share one ``BasicBlock(in_channels, planes, stride)`` class, as by hand.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import keyword
import math
import pprint
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from nodes import Call, Emission
from nodes.base import HELPER_DEPS, HELPERS, GraphSpec, Spec, TensorSpec

from .shapes import Analysis, NetworkResult, NodeResult, analyze

VERSION = "0.1.0"
_RESERVED = {"self", "torch", "nn", "F", "Tensor", "math", "super", "forward", "layer", "Graph",
             "NamedTuple", "annotations", "NETWORKS", "_"}


class CodegenError(Exception):
    """The project has errors; codegen refuses rather than emit code that cannot run."""


# -- the one escaping path for project text ------------------------------------------------------


def escape_text(text: str) -> str:
    """One line of project text made inert inside a docstring or a comment.

    Backslashes and double quotes are escaped, and every character that is not printable (control
    characters incl. NUL, every line-break kind Python or ``str.splitlines`` knows — ``\\r``,
    ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028``, ``\\u2029`` —, bidi
    overrides, lone surrogates) is written as its escape sequence, so no content can end the
    string or comment it is put in, nor hide text from a reader's tools.
    """
    out: list[str] = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1] if ch != "'" else ch)
    return "".join(out)


def docstring(text: str, indent: str) -> str:
    """A triple-quoted docstring of project text that no content can end (see escape_text).

    Real newlines stay line breaks (inside a triple-quoted string they cannot end it); each line
    is escaped on its own.
    """
    lines = [escape_text(line).rstrip() for line in str(text).split("\n")]
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    body = "\n".join([lines[0]] + [indent + line if line else "" for line in lines[1:]])
    return f'{indent}"""{body}"""'


def comment(text: str) -> str:
    """Project-derived text (shape labels, port names) for a ``# ...`` comment: one line, inert."""
    return escape_text(text)


_BUILTINS = frozenset(dir(builtins))


@functools.cache
def _module_attrs() -> frozenset[str]:
    """Every attribute of nn.Module: a submodule or variable of that name would shadow it."""
    from torch import nn

    return frozenset(dir(nn.Module)) | {"training", "forward", "_modules", "_parameters"}


class Namespace:
    """Makes identifiers safe and unique (one namespace per scope).

    Reserved in every scope: nn.Module's attributes (``to``, ``training``, ``parameters`` ...),
    keywords and soft keywords, builtins, the generated module's own imports and helpers; callers
    add the generated class names.
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.used: set[str] = set(reserved) | _RESERVED | set(HELPERS) | _module_attrs()

    def create(self, candidate: str, *, camel: bool = False) -> str:
        name = camel_case(candidate) if camel else snake_case(candidate)
        if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _BUILTINS:
            name += "_"
        base, i = name, 1
        while name in self.used:
            name = f"{base}_{i}"
            i += 1
        self.used.add(name)
        return name

    def reserve(self, name: str) -> None:
        self.used.add(name)


def snake_case(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text.strip())
    text = re.sub(r"[^0-9a-zA-Z_]+", "_", text).strip("_").lower()
    text = re.sub(r"_+", "_", text)
    if not text:
        text = "v"
    if text[0].isdigit():
        text = "n" + text
    return text


def camel_case(text: str) -> str:
    parts = re.split(r"[^0-9a-zA-Z]+", text.strip())
    name = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not name:
        name = "Net"
    if name[0].isdigit():
        name = "Net" + name
    return name


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


def _merge_specs(specs: list[Spec]) -> str:
    """One shape comment for a line that runs in several block instances: '*' where they differ."""
    first = specs[0]
    if all(s == first for s in specs) or not all(isinstance(s, TensorSpec) for s in specs):
        return spec_label(first)
    if len({s.rank for s in specs}) > 1:  # type: ignore[union-attr]
        return "varies"
    dims = []
    for i in range(first.rank):  # type: ignore[union-attr]
        vals = {s.dims[i] for s in specs}  # type: ignore[union-attr]
        dims.append(str(vals.pop()) if len(vals) == 1 else "*")
    return "[" + ", ".join(dims) + "]"


def literal(value: Any) -> str:
    """Python source for a parameter value: only plain data, each piece via ``repr``.

    Anything that is not None/bool/int/float/str or a tuple/list/dict of them is refused, so no
    object's own ``__repr__`` can put code into the module; non-finite floats become
    ``float('inf')`` (``repr`` would give the undefined name ``inf``).
    """
    if value is None or type(value) in (bool, int, str):
        return repr(value)
    if isinstance(value, bool):
        return repr(bool(value))
    if isinstance(value, int):
        return repr(int.__int__(value))
    if isinstance(value, str):
        return repr(str.__str__(value))
    if isinstance(value, float):
        value = float(value)
        return repr(value) if math.isfinite(value) else f"float({repr(value)!r})"
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise CodegenError(f"bug in Layerloom: cannot write a {type(value).__name__} value into "
                       "generated code; please report it")


def _plain(value: Any) -> bool:
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) in (list, tuple):
        return all(_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def data_literal(value: Any, width: int = 100) -> str:
    """A readable (pprint) Python literal of JSON-like data; the strict :func:`literal` when the
    data holds anything pprint's repr could not round-trip (non-finite floats, subclasses)."""
    return pprint.pformat(value, width=width, sort_dicts=False) if _plain(value) else literal(value)


class _VarList(list):
    def __format__(self, spec: str) -> str:
        return ", ".join(self)


_SIGNATURES: dict[str, dict[str, Any]] = {}


def _signature(func: str) -> dict[str, Any]:
    """Argument names -> defaults (``_DEFAULT`` when none) of a constructor, in order.

    Used to name lifted block arguments and to fill in a keyword that one use of a block omits
    (because it equals torch's default) while another sets it. Helper classes are looked up in the
    HELPERS sources.
    """
    if func in _SIGNATURES:
        return _SIGNATURES[func]
    import torch
    from torch import nn

    out: dict[str, Any] = {}
    try:
        ns: dict[str, Any] = {"nn": nn, "torch": torch, "Tensor": torch.Tensor}
        if func in HELPERS:
            exec("from __future__ import annotations\nimport math\n"  # noqa: S102 - our source
                 "from typing import NamedTuple\nimport torch.nn.functional as F\n"
                 + "\n\n".join(HELPERS[h] for h in HELPERS), ns)
        obj = eval(func, ns)  # noqa: S307 - our own dotted name
        for name, param in inspect.signature(obj).parameters.items():
            if name in ("self", "args", "kwargs"):
                continue
            out[name] = _DEFAULT if param.default is inspect.Parameter.empty else param.default
    except Exception:
        out = {}
    _SIGNATURES[func] = out
    return out


def _field_defaults(cls: Any) -> dict[str, Any]:
    """A node type's Params defaults: field names equal torch's keywords (constructors taking
    ``*args``, like nn.LSTM, have no inspectable defaults)."""
    out = {}
    for name, f in cls.Params.model_fields.items():
        if not f.is_required() and f.default_factory is None:
            out[name] = f.default
    return out


def _signature_names(func: str) -> list[str]:
    return list(_signature(func))


# ----------------------------------------------------------------------------------------------


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
        self.block_classes: dict[str, str] = {}
        self.block_arg_names: dict[str, list[str]] = {}  # block -> lifted arg names in order
        #: block name -> {instance id -> {arg name -> value}}
        self.block_inst_args: dict[str, dict[int, dict[str, Any]]] = {}
        self.node_lines: dict[tuple[str, str], list[int]] = {}
        self.attrs: dict[tuple[str, str], str] = {}
        #: location tags: index -> (network or block name, node id); see :meth:`_tag`
        self.tags: list[tuple[str, str]] = []

    # -- driver -------------------------------------------------------------------------------
    def run(self) -> PythonSource:
        block_order = self._block_order()
        for name in block_order:
            self.block_classes[name] = self.module_ns.create(name, camel=True)
        network_classes = {n: self.module_ns.create(n, camel=True) for n in self.analysis.networks}
        body: list[str] = []
        for name in block_order:
            body.append(self._block_class(name))
        for name, res in self.analysis.networks.items():
            body.append(self._network_class(network_classes[name], res))
        body.append(self._registry(network_classes))
        head = self._header(network_classes)
        helpers = self._helpers()
        parts = [head] + helpers + body
        text = "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"
        text = self._imports_fixup(text)
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
        doc = [f'"""{title} — PyTorch code generated by Layerloom {VERSION}.', "",
               f"Networks: {nets}. Shape comments use N for the batch size and T for a "
               "sequence length;", "'*' marks a size that differs between a block's uses. "
               "Needs only PyTorch.", '"""']
        return "\n".join(doc) + "\n\n" + "@@IMPORTS@@"

    def _imports_fixup(self, text: str) -> str:
        lines = ["from __future__ import annotations", ""]
        if re.search(r"\bmath\.", text):
            lines.append("import math")
        if "NamedTuple" in text:
            lines.append("from typing import NamedTuple")
        if lines[-1] != "":
            lines.append("")
        if re.search(r"\btorch\.", text):
            lines.append("import torch")
        if re.search(r"\bF\.", text):
            lines.append("import torch.nn.functional as F")
        lines.append("from torch import Tensor, nn")
        return text.replace("@@IMPORTS@@", "\n".join(lines))

    def _helpers(self) -> list[str]:
        wanted: set[str] = set()
        stack = list(self.helpers)
        while stack:
            h = stack.pop()
            if h in wanted:
                continue
            wanted.add(h)
            stack.extend(HELPER_DEPS.get(h, ()))
        return [HELPERS[h] for h in HELPERS if h in wanted]

    def _registry(self, classes: dict[str, str]) -> str:
        items = ", ".join(f"{literal(name)}: {cls}" for name, cls in classes.items())
        return ("# Network name (as in the Layerloom project) -> class.\n"
                f"NETWORKS: dict[str, type[nn.Module]] = {{{items}}}")

    def _locate_lines(self, text: str) -> dict[tuple[str, str], list[int]]:
        out: dict[tuple[str, str], list[int]] = {}
        for i, line in enumerate(text.split("\n"), start=1):
            for m in _TAG.finditer(line):
                out.setdefault(self.tags[int(m.group(1))], []).append(i)
        return out

    # -- block ordering and instances ---------------------------------------------------------
    def _instances(self) -> dict[str, list[NetworkResult]]:
        """Every distinct analysed instance of each block, found by walking all networks."""
        found: dict[str, list[NetworkResult]] = {}
        seen: set[int] = set()

        def walk(res: NetworkResult) -> None:
            for node_id in res.order:
                nr = res.nodes[node_id]
                if nr.role == "block":
                    for inst in nr.instances:
                        if id(inst) not in seen:
                            seen.add(id(inst))
                            found.setdefault(nr.params.block, []).append(inst)  # type: ignore
                            walk(inst)

        for res in self.analysis.networks.values():
            walk(res)
        return found

    def _block_order(self) -> list[str]:
        self.instances = self._instances()
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            for inst in self.instances.get(name, []):
                for nr in inst.nodes.values():
                    if nr.role == "block" and nr.params is not None:
                        visit(nr.params.block)  # type: ignore[union-attr]
            order.append(name)

        for name in self.instances:
            visit(name)
        return order

    # -- classes ------------------------------------------------------------------------------
    def _block_class(self, name: str) -> str:
        block = self.project.block(name)
        instances = self.instances[name]
        cls_name = self.block_classes[name]
        ns = Namespace(self.module_ns.used)
        attr_ns = Namespace()
        first = instances[0]
        # Per op node: the init Call of every instance, to find what differs.
        emissions: dict[str, list[Emission]] = {}
        calls_by_node: dict[str, list[Call | None]] = {}
        for node_id in first.order:
            nr = first.nodes[node_id]
            if nr.role == "op":
                ems = [inst.nodes[node_id].cls.emit(inst.nodes[node_id].params,
                                                    inst.nodes[node_id].ins) for inst in instances]
                emissions[node_id] = ems
                calls_by_node[node_id] = [e.init for e in ems]
        lifted: list[tuple[str, tuple]] = []  # (arg name, values per instance)
        claimed: set[str] = set()  # block params already used for a lifted argument
        param_vectors = {p.name: tuple(inst.block_values[p.name] for inst in instances)  # type: ignore
                         for p in block.params}

        def arg_for(values: tuple, default_name: str, node_name: str) -> str:
            for existing, vec in lifted:
                if vec == values:
                    return existing
            for pname, vec in param_vectors.items():
                same_types = all(type(a) is type(b) for a, b in zip(vec, values, strict=False))
                if vec == values and same_types:
                    if pname in claimed:
                        continue
                    claimed.add(pname)
                    # Through the namespace: a param named `lambda`, `range` or after a class
                    # gets a safe spelling (`lambda_`) rather than breaking the module.
                    name = ns.create(pname)
                    lifted.append((name, values))
                    return name
            candidate = (default_name if default_name not in ns.used
                         else f"{node_name}_{default_name}")
            name = ns.create(candidate)
            lifted.append((name, values))
            return name

        init_lines: list[str] = []
        attr_names: dict[str, str] = {}
        for node_id in first.order:
            nr = first.nodes[node_id]
            if nr.role == "op" and emissions[node_id][0].init is not None:
                calls = [c for c in calls_by_node[node_id]]
                attr = attr_ns.create(nr.node.name)
                attr_names[node_id] = attr
                init_lines.append(f"        self.{attr} = "
                                  + self._render_call(calls, arg_for, nr.node.name,
                                                      _field_defaults(nr.cls))
                                  + self._tag(name, node_id))
                self.helpers.update(emissions[node_id][0].helpers)
            elif nr.role == "block":
                attr = attr_ns.create(nr.node.name)
                attr_names[node_id] = attr
                init_lines.append(f"        self.{attr} = "
                                  + self._block_ctor([inst.nodes[node_id] for inst in instances],
                                                     arg_for) + self._tag(name, node_id))
        self.block_arg_names[name] = [a for a, _ in lifted]
        self.block_inst_args[name] = {id(inst): {a: vec[i] for a, vec in lifted}
                                      for i, inst in enumerate(instances)}
        fwd = self._forward(name, [inst for inst in instances], attr_names, ns)
        sig = ", ".join(f"{a}: {type(vec[0]).__name__}" for a, vec in lifted)
        doc = block.description.strip() or f"The '{name}' block."
        lines = [f"class {cls_name}(nn.Module):", docstring(doc, "    "), "",
                 f"    def __init__(self{', ' + sig if sig else ''}) -> None:",
                 "        super().__init__()"]
        lines += init_lines
        lines.append("")
        lines += fwd
        return "\n".join(lines)

    def _render_call(self, calls: list[Call | None], arg_for, node_name: str,
                     defaults: dict[str, Any] | None = None) -> str:
        first = calls[0]
        assert first is not None
        names = _signature_names(first.func)
        parts: list[str] = []
        for i, value in enumerate(first.args):
            values = tuple(c.args[i] if c and i < len(c.args) else None for c in calls)
            if len(set(map(repr, values))) > 1:
                default = names[i] if i < len(names) else f"arg{i}"
                parts.append(arg_for(values, default, snake_case(node_name)))
            else:
                parts.append(literal(value))
        kw_keys = list(dict(first.kwargs))
        for c in calls[1:]:
            for k in dict(c.kwargs) if c else {}:  # type: ignore[union-attr]
                if k not in kw_keys:
                    kw_keys.append(k)
        for k in kw_keys:
            default = _signature(first.func).get(k, (defaults or {}).get(k, _DEFAULT))
            values = tuple(dict(c.kwargs).get(k, default) if c else default for c in calls)
            if len(set(map(repr, values))) > 1:
                if _DEFAULT in values:
                    raise CodegenError(f"node '{node_name}': argument '{k}' is set in some uses of "
                                       "its block and not in others")
                parts.append(f"{k}={arg_for(values, k, snake_case(node_name))}")
            else:
                parts.append(f"{k}={literal(values[0])}")
        return f"{first.func}({', '.join(parts)})"

    def _block_ctor(self, uses: list[NodeResult], arg_for=None) -> str:
        """Constructor of a block node: one class instance, a Sequential or a ModuleList."""
        first = uses[0]
        name = first.params.block  # type: ignore[union-attr]
        if len({len(u.instances) for u in uses}) > 1:
            raise CodegenError(f"block node '{first.node.name}' repeats a different number of "
                               "times in different uses of its enclosing block; give it a fixed "
                               "repeat")
        cls = self.block_classes[name]
        arg_names = self.block_arg_names[name]

        def one(inst: NetworkResult, use_index: int) -> str:
            values = self.block_inst_args[name][id(inst)]
            parts = []
            for a in arg_names:
                vec = tuple(self.block_inst_args[name][id(u.instances[use_index])][a]
                            for u in uses)
                if arg_for is not None and len(set(map(repr, vec))) > 1:
                    parts.append(f"{a}={arg_for(vec, a, snake_case(first.node.name))}")
                else:
                    parts.append(f"{a}={literal(values[a])}")
            return f"{cls}({', '.join(parts)})"

        insts = first.instances
        n = len(insts)
        if n == 1:
            return one(insts[0], 0)
        ctor_parts = [one(inst, i) for i, inst in enumerate(insts)]
        single_io = len(first.in_vars) == 1 and len(insts[0].outputs()) == 1
        container = "nn.Sequential" if single_io else "nn.ModuleList"
        if n > 2 and len(set(ctor_parts[1:])) == 1 and ctor_parts[0] != ctor_parts[1]:
            rest = f"*[{ctor_parts[1]} for _ in range({n - 1})]"
            return (f"{container}({ctor_parts[0]}, {rest})" if single_io
                    else f"{container}([{ctor_parts[0]}, {rest}])")
        if len(set(ctor_parts)) == 1:
            inner = f"{ctor_parts[0]} for _ in range({n})"
            return f"{container}([{inner}])" if not single_io else f"{container}(*[{inner}])"
        joined = ", ".join(ctor_parts)
        return f"{container}({joined})" if single_io else f"{container}([{joined}])"

    def _network_class(self, cls_name: str, res: NetworkResult) -> str:
        attr_ns = Namespace()
        attr_names: dict[str, str] = {}
        init_lines: list[str] = []
        scope = res.net.name
        for node_id in res.order:
            nr = res.nodes[node_id]
            if nr.role == "op":
                em = nr.cls.emit(nr.params, nr.ins)
                self.helpers.update(em.helpers)
                if em.init is not None:
                    attr = attr_ns.create(nr.node.name)
                    attr_names[node_id] = attr
                    init_lines.append(f"        self.{attr} = "
                                      + self._render_call([em.init], None, nr.node.name)
                                      + self._tag(scope, node_id))
            elif nr.role == "block":
                attr = attr_ns.create(nr.node.name)
                attr_names[node_id] = attr
                init_lines.append(f"        self.{attr} = {self._block_ctor([nr])}"
                                  + self._tag(scope, node_id))
        self.attrs.update({(scope, k): v for k, v in attr_names.items()})
        doc = res.net.description.strip() or f"The '{res.net.name}' network."
        lines = [f"class {cls_name}(nn.Module):", docstring(doc, "    "), "",
                 "    def __init__(self) -> None:", "        super().__init__()"]
        lines += init_lines
        lines.append("")
        lines += self._forward(scope, [res], attr_names, Namespace())
        return "\n".join(lines)

    # -- forward ------------------------------------------------------------------------------
    def _forward(self, scope: str, insts: list[NetworkResult], attrs: dict[str, str],
                 arg_ns: Namespace) -> list[str]:
        res = insts[0]
        ns = Namespace((arg_ns.used - _RESERVED) | self.module_ns.used)
        var: dict[tuple[str, str], str] = {}
        args: list[str] = []
        body: list[str] = []
        returns: list[str] = []
        for node_id in res.order:
            nr = res.nodes[node_id]
            tag = self._tag(scope, node_id)
            if nr.role in ("input", "block_input"):
                ports = list(nr.outs) or [p.name for p in nr.cls.outputs]
                if len(ports) == 1:
                    v = ns.create(nr.node.name)
                    var[(node_id, ports[0])] = v
                    args.append(f"{v}: {self._annotation(nr.outs.get(ports[0]))}")
                else:
                    for port in ports:
                        v = ns.create(port)
                        var[(node_id, port)] = v
                        args.append(f"{v}: {self._annotation(nr.outs.get(port))}")
                continue
            in_vars = {p: [var[s] for s in srcs] for p, srcs in nr.in_vars.items()}
            if nr.role in ("output", "block_output"):
                returns.append(in_vars["x"][0])
                continue
            outs = list(nr.outs)
            shape_note = self._comment(insts, node_id)
            if nr.role == "block":
                body += self._block_call(nr, attrs[node_id], in_vars, ns, var, shape_note, tag)
                continue
            em = nr.cls.emit(nr.params, nr.ins)
            fmt: dict[str, Any] = {"self": f"self.{attrs[node_id]}" if node_id in attrs else ""}
            for port in nr.cls.inputs:
                vs = in_vars.get(port.name, [])
                fmt[port.name] = _VarList(vs) if port.variadic else (vs[0] if vs else "None")
            call = _bulk_call(nr.cls.id, in_vars) or em.call.format(**fmt)
            out_names = {}
            if len(outs) == 1:
                out_names[outs[0]] = ns.create(nr.node.name)
            else:
                for port in outs:
                    out_names[port] = ns.create(f"{nr.node.name}_{port}")
            for port, v in out_names.items():
                var[(node_id, port)] = v
            if em.unpack:
                target = em.unpack.format(**{p: out_names.get(p, "_") for p in
                                             [q.name for q in nr.cls.outputs]})
            else:
                target = out_names[outs[0]] if outs else "_"
            body.append(f"        {target} = {call}  # {shape_note}{tag}")
        ret_type = ("Tensor" if len(returns) == 1
                    else f"tuple[{', '.join(['Tensor'] * len(returns))}]")
        if any(isinstance(o.ins.get("x"), GraphSpec) for o in res.outputs()):
            ret_type = "Graph" if len(returns) == 1 else "tuple"
        lines = [f"    def forward(self, {', '.join(args)}) -> {ret_type}:"]
        lines += body
        lines.append(f"        return {', '.join(returns) if returns else 'None'}")
        return lines

    def _annotation(self, spec: Spec | None) -> str:
        if isinstance(spec, GraphSpec):
            self.helpers.add("Graph")
            return "Graph"
        return "Tensor"

    def _comment(self, insts: list[NetworkResult], node_id: str) -> str:
        outs = list(insts[0].nodes[node_id].outs)
        texts = []
        for port in outs:
            label = _merge_specs([inst.nodes[node_id].outs[port] for inst in insts])
            texts.append(label if len(outs) == 1 else f"{port}: {label}")
        return comment(", ".join(texts))

    def _block_call(self, nr: NodeResult, attr: str, in_vars: dict[str, list[str]], ns: Namespace,
                    var: dict[tuple[str, str], str], shape_note: str, tag: str) -> list[str]:
        inst = nr.instances[0]
        in_names = [p for p in nr.in_vars]
        out_names = [o.node.name for o in inst.outputs()]
        args = ", ".join(in_vars[p][0] for p in in_names)
        if len(out_names) == 1:
            targets = {out_names[0]: ns.create(nr.node.name)}
        else:
            targets = {o: ns.create(f"{nr.node.name}_{o}") for o in out_names}
        for port, v in targets.items():
            var[(nr.node.id, port)] = v
        target = ", ".join(targets.values())
        repeat = len(nr.instances)
        single_io = len(in_names) == 1 and len(out_names) == 1
        if repeat == 1 or single_io:
            note = f"×{repeat}, " if repeat > 1 else ""
            return [f"        {target} = self.{attr}({args})  # {note}{shape_note}{tag}"]
        # Repeated multi-input block: the i-th output carries into the i-th input, the rest
        # (a decoder's memory, a graph's structure) pass to every repeat unchanged.
        carried = dict(zip(in_names, targets.values(), strict=False))
        lines = [f"        {v} = {in_vars[p][0]}{tag}" for p, v in carried.items()]
        call_args = ", ".join(carried.get(p, in_vars[p][0]) for p in in_names)
        lines.append(f"        for layer in self.{attr}:  # ×{repeat}, {shape_note}{tag}")
        lines.append(f"            {target} = layer({call_args}){tag}")
        return lines


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



# -- the last gate ------------------------------------------------------------------------------

_IMPORTS = {("__future__", "annotations"), ("typing", "NamedTuple"), ("torch", "Tensor"),
            ("torch", "nn")}
_PLAIN_IMPORTS = {"math", "torch", "torch.nn.functional"}
#: Names generated code never uses; seeing one means text got in that the generator did not write.
_FORBIDDEN_NAMES = {"__import__", "exec", "eval", "compile", "open", "globals", "locals", "vars",
                    "getattr", "setattr", "delattr", "breakpoint", "input", "__builtins__",
                    "memoryview"}


def verify_source(text: str, node_lines: dict[tuple[str, str], list[int]] | None = None) -> None:
    """Refuse generated text that is not the shape the generator writes, before it runs or lands.

    A last gate that does not depend on how the text was made: every character printable (or a
    newline), the module parses, its top level holds only the known imports, class and helper
    definitions, plain assignments and the ``NETWORKS`` table, class bodies only a docstring,
    annotations and methods, and no name that generated code never uses. A failure is a bug in
    Layerloom, reported with the node whose line it is when known.
    """
    where = _line_owners(node_lines or {})
    for i, line in enumerate(text.split("\n"), start=1):
        bad = next((ch for ch in line if not ch.isprintable()), None)
        if bad is not None:
            _refuse(f"line {i} holds the raw control character {bad!r}", i, where)
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        lineno = getattr(err, "lineno", None)
        _refuse(f"it does not parse ({type(err).__name__}: {getattr(err, 'msg', err)})", lineno,
                where)
    for k, stmt in enumerate(tree.body):
        if k == 0 and _is_docstring(stmt):
            continue
        if isinstance(stmt, ast.ImportFrom):
            ok = stmt.level == 0 and all((stmt.module, a.name) in _IMPORTS and a.asname is None
                                         for a in stmt.names)
        elif isinstance(stmt, ast.Import):
            ok = all(a.name in _PLAIN_IMPORTS for a in stmt.names)
        elif isinstance(stmt, ast.ClassDef):
            ok = _class_ok(stmt)
        elif isinstance(stmt, ast.FunctionDef):
            ok = _function_ok(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            ok = all(isinstance(t, ast.Name) for t in targets)
        else:
            ok = False
        if not ok:
            _refuse(f"unexpected top-level {type(stmt).__name__} statement", stmt.lineno, where)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _FORBIDDEN_NAMES:
            _refuse(f"it uses the name {node.id!r}", node.lineno, where)
        if (isinstance(node, ast.Attribute) and node.attr.startswith("__")
                and node.attr != "__init__"):
            _refuse(f"it reads the attribute {node.attr!r}", node.lineno, where)


def _is_docstring(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _function_ok(fn: ast.FunctionDef) -> bool:
    """No decorators, and defaults that are constants: nothing of a def runs when it is made."""
    defaults = [*fn.args.defaults, *(d for d in fn.args.kw_defaults if d is not None)]
    return not fn.decorator_list and all(_constant(d) for d in defaults)


def _constant(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand)
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_constant(e) for e in node.elts)
    return isinstance(node, ast.Constant)


def _class_ok(cls: ast.ClassDef) -> bool:
    """Bases are plain (dotted) names; the body only a docstring, field annotations and methods."""
    if cls.decorator_list or cls.keywords:
        return False
    if not all(isinstance(b, (ast.Name, ast.Attribute)) for b in cls.bases):
        return False
    for k, stmt in enumerate(cls.body):
        if k == 0 and _is_docstring(stmt):
            continue
        if isinstance(stmt, ast.FunctionDef) and _function_ok(stmt):
            continue
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and (stmt.value is None or _constant(stmt.value))):
            continue
        return False
    return True


def _line_owners(node_lines: dict[tuple[str, str], list[int]]) -> dict[int, tuple[str, str]]:
    return {line: key for key, lines in node_lines.items() for line in lines}


def _refuse(what: str, lineno: int | None, where: dict[int, tuple[str, str]]) -> None:
    owner = where.get(lineno) if lineno is not None else None
    node = f" (from node '{escape_text(owner[1])}' in '{escape_text(owner[0])}')" if owner else ""
    raise CodegenError(f"bug in Layerloom's code generator: the generated module was refused "
                       f"because {what}{node}, at line {lineno}. Nothing was run or written; "
                       "please report this with the project file.")
