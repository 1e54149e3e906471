"""The vocabulary every node type is written in: specs, ports, emissions and the NodeType base.

A node type is a class, not an instance: it holds no per-node state. Per-node state (params, name,
wires) lives in the document (``compiler.project``). Keeping types stateless lets the registry be a
plain dict and lets the compiler, the GUI and the tests share one catalogue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import (
    Annotated,
    Any,
    ClassVar,
    Iterable,
    Literal,
    Mapping,
    Sequence,
    Union,
    get_args,
    get_origin,
)

from pydantic import BaseModel, ConfigDict, model_validator

from .dims import Dim

"""A tensor dimension: a concrete size, or a symbol ("N" batch, "T" sequence, "V" graph nodes)."""

#: Concrete stand-ins for symbolic dims when a shape must be materialised (tests, meta runs).
SYMBOL_SIZES: dict[str, int] = {"N": 2, "T": 5, "S": 6, "V": 7, "E": 12, "B": 3}


@dataclass(frozen=True)
class TensorSpec:
    """The static description of a tensor flowing on a wire."""

    dims: tuple[Dim, ...]
    dtype: str = "float"  # "float" | "long" | "bool"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", tuple(self.dims))

    @property
    def rank(self) -> int:
        return len(self.dims)

    def label(self) -> str:
        text = "[" + ", ".join(str(d) for d in self.dims) + "]"
        return text if self.dtype == "float" else f"{text} {self.dtype}"

    def concrete(self, sizes: Mapping[str, int] = SYMBOL_SIZES) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else _symbol_size(d, sizes) for d in self.dims)

    def numel_static(self) -> int | None:
        if all(isinstance(d, int) for d in self.dims):
            return math.prod(self.dims)  # type: ignore[arg-type]
        return None


def _symbol_size(symbol: str, sizes: Mapping[str, int]) -> int:
    if symbol in sizes:
        return sizes[symbol]
    raise ValueError(f"dimension '{symbol}' has no concrete size")


@dataclass(frozen=True)
class GraphSpec:
    """The structure of a (batch of) graph(s): edge index, node-to-graph map.

    Features travel apart.
    """

    nodes: Dim = "V"
    edges: Dim = "E"

    def label(self) -> str:
        return f"graph(V={self.nodes}, E={self.edges})"


Spec = Union[TensorSpec, GraphSpec]


class ShapeError(Exception):
    """Raised by a node's ``infer`` when its inputs cannot work.

    It becomes a Diagnostic, never a crash.
    """

    def __init__(self, message: str, hint: str = "", port: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.port = port


@dataclass(frozen=True)
class Port:
    """A named connection point. ``kind`` is "tensor" or "graph"."""

    name: str
    kind: str = "tensor"
    optional: bool = False
    variadic: bool = False  # accepts several wires, kept in order (Add, Concat)
    doc: str = ""


@dataclass(frozen=True)
class Call:
    """A constructor call kept structured so codegen can lift per-instance values into block args.

    ``arg_names`` are the keyword names of the positional ``args`` (torch's own: ``in_channels``,
    ``out_features``), so codegen can name a lifted argument and match it to a block param
    without importing or inspecting the constructor.
    """

    func: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    arg_names: tuple[str, ...] = ()

    @staticmethod
    def of(func: str, *args: Any, **kwargs: Any) -> "Call":
        return Call(func, tuple(args), tuple(kwargs.items()))

    @staticmethod
    def named(func: str, positional: Sequence[tuple[str, Any]], **kwargs: Any) -> "Call":
        """``func(v1, v2, k=v)`` from ``[("name1", v1), ("name2", v2)]`` and keywords."""
        return Call(func, tuple(v for _, v in positional), tuple(kwargs.items()),
                    tuple(n for n, _ in positional))

    def arg_name(self, i: int) -> str:
        return self.arg_names[i] if i < len(self.arg_names) else f"arg{i}"


@dataclass(frozen=True)
class Emission:
    """How one node becomes source.

    ``init`` is the submodule constructor (None for purely functional nodes); ``call`` is a forward
    expression with ``{self}`` for the submodule attribute and ``{port}`` for each input variable
    (a variadic port's variables are joined with ", " as ``{port}``); ``unpack`` is the assignment
    target with ``{port}`` for each output variable (default: the single output). ``helpers`` names
    classes from :data:`HELPERS` that the generated module must define. ``imports`` names what the
    code needs beyond the root of ``init.func`` and the ``torch.``/``F.``/``math.`` prefixes of
    ``call`` (``"math"``, ``"torch"``, ``"F"``, ``"Tensor"``, ``"nn"``).

    ``call == "{x}"`` (no ``init``) is the identity: the node writes no code (a Dropout with
    ``p=0``), its output is its input.
    """

    call: str
    init: Call | None = None
    unpack: str | None = None
    helpers: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()

    @property
    def is_identity(self) -> bool:
        return self.init is None and self.call == "{x}"


class Params(BaseModel):
    """Base of every node's parameter model: strict about unknown fields, so typos are caught.

    Also strict about numbers: pydantic's lax mode would turn ``true`` into the size 1 and the
    string ``"128"`` into 128, hiding a broken file. A bool or a string is refused wherever the
    field's type offers no bool, no str and no matching Literal (JSON lists for tuples stay fine);
    NaN and infinities are refused everywhere.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_lax_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, value in data.items():
            info = cls.model_fields.get(name) if isinstance(name, str) else None
            if info is None:
                continue  # unknown keys: extra="forbid" names them
            leaves = _annotation_leaves(info.annotation)
            bad = _lax_value(value, leaves)
            if bad is not None:
                raise ValueError(f"'{name}' must be a number, not {bad}")
        return data


_ANY_LEAF = object()


@lru_cache(maxsize=None)
def _annotation_leaves(annotation: Any) -> frozenset[Any]:
    """The scalar types (and Literal values) an annotation accepts, through Union, Optional,
    Annotated, list and tuple; ``_ANY_LEAF`` when anything goes."""
    origin = get_origin(annotation)
    if annotation is Any or annotation is object:
        return frozenset({_ANY_LEAF})
    if origin is Literal:
        return frozenset(("literal", v) for v in get_args(annotation))
    if origin is Annotated:
        return _annotation_leaves(get_args(annotation)[0])
    if origin is dict:
        return frozenset({_ANY_LEAF})
    if origin is not None:
        out: frozenset[Any] = frozenset()
        for arg in get_args(annotation):
            if arg is not Ellipsis:
                out |= _annotation_leaves(arg)
        return out
    return frozenset({annotation})


def _lax_value(value: Any, leaves: frozenset[Any]) -> str | None:
    """A description of ``value`` if only lax coercion would make it fit ``leaves``, else None."""
    if _ANY_LEAF in leaves or not ({int, float} & leaves):
        return None
    if isinstance(value, (list, tuple)):
        return next((b for b in (_lax_value(v, leaves) for v in value) if b is not None), None)
    if isinstance(value, bool):
        if bool not in leaves and ("literal", value) not in leaves:
            return f"the boolean {'true' if value else 'false'}"
    elif isinstance(value, str):
        if str not in leaves and ("literal", value) not in leaves:
            return f"the string {value[:40]!r}"
    return None


@dataclass
class Example:
    """A (params, inputs) pair used by the registry-wide shape test and the docs."""

    params: dict[str, Any]
    inputs: dict[str, Spec | list[Spec]]
    note: str = ""


class Role(str, Enum):
    """What a node is to the compiler: an op it emits, a network's or block's boundary, or a use of
    a block. A ``str`` enum so that it is saved and shown as text."""

    OP = "op"
    INPUT = "input"
    OUTPUT = "output"
    BLOCK_INPUT = "block_input"
    BLOCK_OUTPUT = "block_output"
    BLOCK = "block"

    @property
    def is_source(self) -> bool:
        """Where values enter a graph (a network's Input or a block's Block Input)."""
        return self in (Role.INPUT, Role.BLOCK_INPUT)

    @property
    def is_sink(self) -> bool:
        """Where values leave a graph (Output or Block Output)."""
        return self in (Role.OUTPUT, Role.BLOCK_OUTPUT)

    @property
    def is_io(self) -> bool:
        return self.is_source or self.is_sink


class NodeType:
    """Base class of node types. Subclasses set the class attributes and override infer/emit."""

    id: ClassVar[str]
    name: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    inputs: ClassVar[tuple[Port, ...]] = (Port("x"),)
    outputs: ClassVar[tuple[Port, ...]] = (Port("y"),)
    legacy_ids: ClassVar[tuple[str, ...]] = ()
    role: ClassVar[Role] = Role.OP
    #: Params worth showing on the node face, in order (the rest live in the inspector).
    key_params: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def infer(cls, p: Any, ins: Mapping[str, Any]) -> dict[str, Spec]:
        """Output specs from params and input specs; raise ShapeError when they cannot work.

        A type may leave this out: the compiler then runs the emission on torch's meta device
        (``nodes.meta``, chosen in ``compiler.shapes.infer_outputs``); a hand-written rule gives
        earlier, friendlier messages. Keeping the fallback out of this base keeps it a leaf.
        """
        raise NotImplementedError(f"{cls.id} has no hand-written shape rule")

    @classmethod
    def has_shape_rule(cls) -> bool:
        """Whether this type wrote its own ``infer`` (else the meta-device fallback applies)."""
        return cls.infer.__func__ is not NodeType.infer.__func__

    @classmethod
    def emit(cls, p: Any, ins: Mapping[str, Any]) -> Emission:
        """Source for this node given validated params and the inferred input specs."""
        raise NotImplementedError

    @classmethod
    def examples(cls) -> list[Example]:
        """Param/input spreads that the registry-wide test checks against real torch outputs."""
        return []

    # Helpers shared by subclasses -------------------------------------------------------------
    @classmethod
    def input_port(cls, name: str) -> Port | None:
        return next((p for p in cls.inputs if p.name == name), None)

    @classmethod
    def output_port(cls, name: str) -> Port | None:
        return next((p for p in cls.outputs if p.name == name), None)

    @classmethod
    def summary(cls, p: Any) -> str:
        """One line of key params for the node face."""
        parts = []
        for key in cls.key_params:
            value = getattr(p, key, None)
            if isinstance(value, (list, tuple)):
                value = "×".join(str(v) for v in value)
            parts.append(f"{key}={value}")
        return ", ".join(parts)


# ----------------------------------------------------------------------------------------------
# Shape helpers used by many node families
# ----------------------------------------------------------------------------------------------


def tensor_in(ins: Mapping[str, Any], port: str = "x", rank: Iterable[int] | None = None,
              what: str = "") -> TensorSpec:
    """The tensor on ``port``, checked for rank; raises a ShapeError that says what was expected."""
    spec = ins.get(port)
    if not isinstance(spec, TensorSpec):
        raise ShapeError(f"input '{port}' needs a tensor", "connect a tensor output to it", port)
    if rank is not None:
        ranks = tuple(rank)
        if spec.rank not in ranks:
            want = " or ".join(str(r) for r in ranks)
            raise ShapeError(
                f"input '{port}' has shape {spec.label()} (rank {spec.rank}); expected rank {want}"
                + (f" {what}" if what else ""),
                "insert a Reshape, Flatten or Unsqueeze before this node",
                port,
            )
    return spec


def concrete_dim(spec: TensorSpec, axis: int, what: str, port: str = "x") -> int:
    """A dim that a constructor needs as a number (in_channels...); symbolic ones are refused."""
    d = spec.dims[axis]
    if not isinstance(d, int):
        raise ShapeError(
            f"{what} comes from dim {axis} of {spec.label()}, which is symbolic ('{d}')",
            "give the Input a fixed size in that dimension",
            port,
        )
    return d


def norm_axis(axis: int, rank: int, port: str = "x") -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"dim {axis} is out of range for a rank-{rank} tensor",
                         f"choose a dim between {-rank} and {rank - 1}", port)
    return axis % rank


def broadcast(specs: Sequence[TensorSpec], port: str = "x") -> tuple[Dim, ...]:
    """Torch broadcasting of static shapes; a mismatch names the dims that differ."""
    rank = max(s.rank for s in specs)
    out: list[Dim] = []
    for i in range(rank):
        dims = {s.dims[i - rank + s.rank] for s in specs if i - rank + s.rank >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(
                "shapes differ: " + " vs ".join(s.label() for s in specs) + f" at dim {i}",
                "", port)
        out.append(dims.pop() if dims else 1)
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Helper classes emitted into generated code (module-level source snippets, torch only)
# ----------------------------------------------------------------------------------------------

HELPERS: dict[str, str] = {}
"""name -> source of a class or function that generated code may need. Order of insertion is the
order of emission, so a helper that uses another must be registered after it."""

HELPER_DEPS: dict[str, tuple[str, ...]] = {}
#: name -> the module-level names its source uses from the generated module's imports
HELPER_IMPORTS: dict[str, frozenset[str]] = {}
_IMPORTABLE = frozenset({"math", "torch", "F", "nn", "Tensor", "NamedTuple"})


def register_helper(name: str, source: Any, deps: tuple[str, ...] = ()) -> None:
    """Register a helper by its source text, or by the object itself (a class or function of a
    real module, e.g. ``nodes.helpers``), whose source ``inspect.getsource`` copies."""
    import ast
    import inspect

    from . import syntax

    text = source if isinstance(source, str) else inspect.getsource(source)
    text = text.strip("\n")
    if name in HELPERS and HELPERS[name] != text:
        raise ValueError(f"helper '{name}' registered twice with different source")
    HELPERS[name] = text
    HELPER_DEPS[name] = deps
    used = {n.id for n in ast.walk(syntax.parse(text)) if isinstance(n, ast.Name)}
    HELPER_IMPORTS[name] = frozenset(used & _IMPORTABLE)
