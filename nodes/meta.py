"""Shape inference by running a node's own emission on torch's meta device.

A node type that has no hand-written ``infer`` still gets exact shapes: its ``Emission`` is
turned into a module (on "meta", so no memory is allocated and nothing is computed) and its
``call`` expression is run on meta tensors. Symbolic dims are given distinct prime sizes, then
nudged to other primes, so an output dim that moves with some symbols is read back as a product
of them ("T*64"), or a primed symbol ("T'") when it moves in a way a product cannot express.
Dims that never move are plain numbers.

Because the expression is the same text codegen emits, the fallback also proves that the
emission runs at all.
"""

from __future__ import annotations

import math
import re
from itertools import combinations
from typing import Any, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import syntax
from .base import HELPERS, GraphSpec, NodeType, ShapeError, Spec, TensorSpec
from .dims import format_product, primed

#: Base sizes for symbols, then the sizes each symbol is nudged to: distinct primes. Which dims
#: depend on a symbol is found by nudging, not by matching values, so a collision with a layer
#: width does no harm. They are kept small on purpose: torch's meta RNNs unroll one Python
#: step per time step (T=9973 took seconds per node), and learned position tables cap T.
_BASE = (41, 43, 47, 53, 59, 61, 67, 71, 73, 79)
_NUDGE = (37, 31, 29, 83, 89, 97, 101, 103, 107, 109)

_DTYPES = {"float": torch.float32, "long": torch.long, "bool": torch.bool}
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*'*")

_namespace_cache: dict[tuple[str, ...], dict[str, Any]] = {}


def _namespace() -> dict[str, Any]:
    """torch, nn, F and every registered helper, exec'd once per set of helpers."""
    key = tuple(HELPERS)
    ns = _namespace_cache.get(key)
    if ns is None:
        ns = {"torch": torch, "nn": nn, "F": F, "Tensor": Tensor, "math": math,
              "NamedTuple": NamedTuple, "__name__": "layerloom_meta"}
        source = "from __future__ import annotations\n\n" + "\n\n\n".join(HELPERS.values())
        exec(syntax.compile_module(source, "<layerloom helpers>"), ns)  # noqa: S102 - our own source
        _namespace_cache.clear()
        _namespace_cache[key] = ns
    return ns


def _symbols(ins: Mapping[str, Any]) -> list[str]:
    """Every symbol token in the input specs, in first-seen order."""
    seen: list[str] = []

    def add(d: Any) -> None:
        if isinstance(d, str):
            for tok in _SYMBOL.findall(d):
                if tok not in seen:
                    seen.append(tok)

    for spec in ins.values():
        for s in spec if isinstance(spec, list) else [spec]:
            if isinstance(s, TensorSpec):
                for d in s.dims:
                    add(d)
            elif isinstance(s, GraphSpec):
                add(s.nodes)
                add(s.edges)
    if any(isinstance(s, GraphSpec) for v in ins.values() for s in (v if isinstance(v, list)
                                                                       else [v])):
        add("B")  # graphs in a batch, used by readouts
    return seen


def _size(d: Any, sizes: Mapping[str, int]) -> int:
    if isinstance(d, int):
        return d
    expr = _SYMBOL.sub(lambda m: str(sizes[m.group(0)]), d)
    if not re.fullmatch(r"[\d+*() ]+", expr):
        raise ShapeError(f"cannot read the size '{d}'", "give the Input fixed sizes", None)
    return int(eval(expr, {"__builtins__": {}}))  # noqa: S307 - digits and + * ( ) only


def _materialise(spec: Any, sizes: Mapping[str, int], ns: Mapping[str, Any]) -> Any:
    if isinstance(spec, list):
        return [_materialise(s, sizes, ns) for s in spec]
    if isinstance(spec, GraphSpec):
        v, e = _size(spec.nodes, sizes), _size(spec.edges, sizes)
        edge_index = torch.zeros((2, e), dtype=torch.long, device="meta")
        batch = torch.zeros((v,), dtype=torch.long, device="meta")
        return ns["Graph"](edge_index=edge_index, batch=batch, num_graphs=sizes["B"])
    if isinstance(spec, TensorSpec):
        shape = tuple(_size(d, sizes) for d in spec.dims)
        return torch.empty(shape, dtype=_DTYPES.get(spec.dtype, torch.float32), device="meta")
    raise ShapeError("an input has no shape yet", "connect every input", None)


def _build(cls: type[NodeType], em: Any, ns: Mapping[str, Any]) -> nn.Module | None:
    if em.init is None:
        return None
    ctor = eval(em.init.func, dict(ns))  # noqa: S307 - a dotted name from our own emission
    with torch.device("meta"):
        return ctor(*em.init.args, **dict(em.init.kwargs))


def _run(cls: type[NodeType], em: Any, module: nn.Module | None, ins: Mapping[str, Any],
         sizes: Mapping[str, int], ns: Mapping[str, Any]) -> dict[str, Any]:
    local: dict[str, Any] = dict(ns)
    local["__self"] = module
    fmt: dict[str, Any] = {"self": "__self"}
    for port in cls.inputs:
        if port.name not in ins:
            fmt[port.name] = "None"
            continue
        value = _materialise(ins[port.name], sizes, ns)
        if port.variadic:
            names = []
            for i, v in enumerate(value):
                local[f"__in_{port.name}_{i}"] = v
                names.append(f"__in_{port.name}_{i}")
            fmt[port.name] = _Vars(names)
        else:
            local[f"__in_{port.name}"] = value
            fmt[port.name] = f"__in_{port.name}"
    outs = [p.name for p in cls.outputs]
    call = em.call.format(**fmt)
    if em.unpack:
        target = em.unpack.format(**{p: f"__out_{p}" for p in outs})
    else:
        target = f"__out_{outs[0]}"
    exec(f"{target} = {call}", local)  # noqa: S102 - our own emission
    return {p: local[f"__out_{p}"] for p in outs if f"__out_{p}" in local}


class _Vars(list):
    def __format__(self, spec: str) -> str:
        return ", ".join(self)


class _Runs:
    """Output values of the emission under several size assignments, run on demand.

    Two runs (all symbols at their base size, then all nudged) settle most dims: a fixed dim does
    not move, and a product of symbols is the unique subset whose primes divide the base value
    with the same cofactor after nudging. Only a dim that moves otherwise ("T'") needs a run per
    symbol to learn which symbols it follows.
    """

    def __init__(self, run: Any, symbols: list[str]) -> None:
        self.run = run
        self.symbols = symbols
        self.base = dict(zip(symbols, _BASE, strict=False))
        self.nudged = dict(zip(symbols, _NUDGE, strict=False))
        self.cache: dict[str | None, dict[str, Any]] = {}

    def sizes(self, key: str | None) -> dict[str, int]:
        if key is None:
            return self.base
        if key == "*":
            return self.nudged
        return {**self.base, key: self.nudged[key]}

    def get(self, key: str | None) -> dict[str, Any]:
        if key not in self.cache:
            self.cache[key] = self.run(self.sizes(key))
        return self.cache[key]

    def dim(self, read: Any) -> Any:
        """One output dim; ``read(outputs)`` picks its size from a run's outputs."""
        base = read(self.get(None))
        if not self.symbols:
            return base
        moved_all = read(self.get("*"))
        if moved_all == base:
            return base
        for r in range(1, len(self.symbols) + 1):
            for subset in combinations(sorted(self.symbols), r):
                b = math.prod(self.base[s] for s in subset)
                if base % b == 0 and moved_all == base // b * math.prod(self.nudged[s]
                                                                       for s in subset):
                    return format_product(base // b, subset)
        if len(self.symbols) == 1:
            return primed(self.symbols[0])
        moved = sorted(s for s in self.symbols if read(self.get(s)) != base)
        return primed(moved[0]) if len(moved) == 1 else "(" + "*".join(moved) + ")'"


def _spec_back(port: str, runs: _Runs) -> Spec:
    first = runs.get(None)[port]
    if isinstance(first, Tensor):
        dtype = {torch.long: "long", torch.int32: "long", torch.bool: "bool"}.get(first.dtype,
                                                                                 "float")
        dims = tuple(runs.dim(lambda o, i=i: o[port].shape[i]) for i in range(first.dim()))
        return TensorSpec(dims, dtype)
    if hasattr(first, "edge_index") and hasattr(first, "batch"):
        return GraphSpec(runs.dim(lambda o: o[port].batch.shape[0]),
                         runs.dim(lambda o: o[port].edge_index.shape[1]))
    raise ShapeError(f"output '{port}' is a {type(first).__name__}, not a tensor",
                     "this node's emission returns the wrong kind of value", port)


def meta_infer(cls: type[NodeType], params: Any, ins: Mapping[str, Any]) -> dict[str, Spec]:
    """Output specs of ``cls`` found by running its emission on the meta device."""
    em = cls.emit(params, ins)
    ns = _namespace()
    symbols = _symbols(ins)
    if len(symbols) > len(_BASE):
        raise ShapeError("too many symbolic sizes to infer shapes", "give inputs fixed sizes")
    try:
        module = _build(cls, em, ns)
        runs = _Runs(lambda sizes: _run(cls, em, module, ins, sizes, ns), symbols)
        return {port: _spec_back(port, runs) for port in runs.get(None)}
    except ShapeError:
        raise
    except Exception as err:  # torch's own complaint is the most precise message there is
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ShapeError(f"{cls.name} cannot run on these inputs: {text}",
                         "check the input shapes and this node's params against the message",
                         None) from err


def meta_param_count(cls: type[NodeType], params: Any, ins: Mapping[str, Any]) -> int:
    """Parameters of the module ``cls`` emits for these inputs, built on the meta device, so
    ``Linear(10**6, 10**6)`` is counted (10**12) without a byte of memory. A type that must not
    be built to be counted (an opaque node would import the user's code) gives ``count_params``."""
    counter = getattr(cls, "count_params", None)
    if counter is not None:
        return int(counter(params, ins))
    em = cls.emit(params, ins)
    module = _build(cls, em, _namespace())
    return sum(p.numel() for p in module.parameters()) if module is not None else 0
