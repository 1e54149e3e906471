"""Reshaping without weights: Flatten, Reshape, Permute, Transpose, Squeeze, Unsqueeze, Split,
Select, Slice.

Symbolic sizes stay honest. A product of dims is written as a product ("T*64" for a flattened
[N, T, 64]), so a later Reshape can divide it back exactly; a size that depends on a symbol in a
way a product cannot say (a strided slice of T) is primed ("T'"), as conv and pool do. Layers
that need a number (Linear's in_features) refuse such dims through ``concrete_dim``, whose
message names the symbolic dim and asks for a fixed size.

Convention for ``shape.reshape``: the batch dim is always kept and never written; ``shape`` is
the rest, with at most one -1.

Splitting: ports are class-level, so a variable number of outputs is not offered. ``shape.split``
has two outputs, ``a`` (the first ``split_size`` entries along ``dim``, or the first half) and
``b`` (the rest); chain Splits for more pieces.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Mapping

from pydantic import Field, field_validator

from .base import (
    Dim,
    Emission,
    Example,
    NodeType,
    Params,
    Port,
    ShapeError,
    TensorSpec,
    norm_axis,
    tensor_in,
)
from .dims import divide, primed, product
from .registry import register

# ----------------------------------------------------------------------------------------------

CATEGORY = "Shape"


def _axis_field(default: int, description: str) -> Any:
    return Field(default, ge=-6, le=5, description=description)


class FlattenParams(Params):
    start_dim: int = _axis_field(1, "First dim to merge (1 keeps the batch dim apart)")
    end_dim: int = _axis_field(-1, "Last dim to merge (-1 = the last)")


@register
class Flatten(NodeType):
    id = "shape.flatten"
    name = "Flatten"
    category = CATEGORY
    description = ("Merges a range of dims into one, e.g. [N, 64, 7, 7] -> [N, 3136] before a "
                   "Linear. A symbolic dim gives a symbolic product such as T*64.")
    Params = FlattenParams
    key_params = ("start_dim",)

    @classmethod
    def infer(cls, p: FlattenParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins)
        rank = max(x.rank, 1)
        start, end = norm_axis(p.start_dim, rank), norm_axis(p.end_dim, rank)
        if start > end:
            raise ShapeError(f"start_dim {p.start_dim} comes after end_dim {p.end_dim} for "
                             f"{x.label()}", "make start_dim the smaller dim", None)
        if x.rank == 0:
            return {"y": TensorSpec((1,), x.dtype)}
        dims = x.dims[:start] + (product(x.dims[start:end + 1]),) + x.dims[end + 1:]
        return {"y": TensorSpec(dims, x.dtype)}

    @classmethod
    def emit(cls, p: FlattenParams, ins: Mapping[str, Any]) -> Emission:
        if p.end_dim == -1:
            return Emission("{x}.flatten(%d)" % p.start_dim)
        return Emission("{x}.flatten(%d, %d)" % (p.start_dim, p.end_dim))

    @classmethod
    def examples(cls) -> list[Example]:
        return [
            Example({}, {"x": TensorSpec(("N", 4, 3, 3))}),
            Example({}, {"x": TensorSpec(("N", "T", 4))}, "symbolic product T*4"),
            Example({"start_dim": 2}, {"x": TensorSpec(("N", 2, 3, 5))}),
            Example({"start_dim": 0, "end_dim": 1}, {"x": TensorSpec(("N", "T", 3))}),
            Example({"start_dim": 1, "end_dim": 2}, {"x": TensorSpec(("N", 2, 3, 5), "long")}),
        ]


class ReshapeParams(Params):
    shape: list[Annotated[int, Field(ge=-1, le=1_000_000)]] = Field(
        default_factory=lambda: [-1], min_length=1, max_length=5,
        description="New shape after the batch dim (kept); one entry may be -1, meaning "
        "'whatever is left'")

    @field_validator("shape")
    @classmethod
    def _check(cls, v: list[int]) -> list[int]:
        for d in v:
            if d != -1 and not 1 <= d <= 1_000_000:
                raise ValueError(f"size {d} must be -1 or between 1 and 1000000")
        if v.count(-1) > 1:
            raise ValueError("only one entry may be -1")
        return v


@register
class Reshape(NodeType):
    id = "shape.reshape"
    name = "Reshape"
    category = CATEGORY
    description = ("Gives the tensor a new shape, keeping the batch dim: shape [-1, 4, 4] turns "
                   "[N, 64] into [N, 4, 4, 4]. The element count must stay the same.")
    Params = ReshapeParams
    key_params = ("shape",)

    @classmethod
    def infer(cls, p: ReshapeParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, rank=range(1, 7))
        rest = product(x.dims[1:])
        fixed = math.prod(d for d in p.shape if d != -1)
        want = "[" + ", ".join(["N"] + [str(d) for d in p.shape]) + "]"
        if -1 in p.shape:
            left = divide(rest, fixed)
            if left is None:
                raise ShapeError(
                    f"cannot reshape {x.label()} to {want}: {rest} elements per sample do not "
                    f"divide by {fixed}" + ("" if isinstance(rest, int) else " for every size"),
                    f"choose sizes whose product divides {rest}", "x")
            dims = tuple(left if d == -1 else d for d in p.shape)
        else:
            if rest != fixed:
                hint = (f"use -1 for the dim that should take the {rest} part"
                        if not isinstance(rest, int)
                        else f"make the sizes multiply to {rest}, or use -1 for one of them")
                raise ShapeError(f"cannot reshape {x.label()} to {want}: {rest} elements per "
                                 f"sample, the new shape holds {fixed}", hint, "x")
            dims = tuple(p.shape)
        return {"y": TensorSpec((x.dims[0],) + dims, x.dtype)}

    @classmethod
    def emit(cls, p: ReshapeParams, ins: Mapping[str, Any]) -> Emission:
        return Emission("{x}.reshape({x}.size(0), %s)" % ", ".join(str(d) for d in p.shape))

    @classmethod
    def examples(cls) -> list[Example]:
        return [
            Example({"shape": [-1, 4, 4]}, {"x": TensorSpec(("N", 64))}),
            Example({"shape": [2, 8]}, {"x": TensorSpec(("N", 4, 4))}),
            Example({"shape": [-1, 4]}, {"x": TensorSpec(("N", "T", 8))}, "T*8 / 4 = T*2"),
            Example({"shape": [-1]}, {"x": TensorSpec(("N", 3, 5), "long")}),
        ]


class PermuteParams(Params):
    dims: list[Annotated[int, Field(ge=-6, le=5)]] = Field(
        default_factory=lambda: [0, 2, 1], min_length=1, max_length=6,
        description="The new order of all dims, batch included ([0, 2, 1] swaps the last two "
        "of a rank-3 tensor)")


@register
class Permute(NodeType):
    id = "shape.permute"
    name = "Permute"
    category = CATEGORY
    description = "Reorders dims, e.g. [N, T, C] -> [N, C, T] with dims [0, 2, 1] for a Conv1d."
    Params = PermuteParams
    key_params = ("dims",)

    @classmethod
    def infer(cls, p: PermuteParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins)
        if len(p.dims) != x.rank:
            raise ShapeError(f"Permute dims {p.dims} name {len(p.dims)} dims but the input "
                             f"{x.label()} has {x.rank}",
                             f"list each of the {x.rank} dims once, e.g. "
                             f"{list(range(x.rank))[:1] + list(range(x.rank))[:0:-1]}", "x")
        axes = [norm_axis(d, x.rank) for d in p.dims]
        if sorted(axes) != list(range(x.rank)):
            raise ShapeError(f"Permute dims {p.dims} repeat a dim",
                             f"list each of 0..{x.rank - 1} exactly once", None)
        return {"y": TensorSpec(tuple(x.dims[a] for a in axes), x.dtype)}

    @classmethod
    def emit(cls, p: PermuteParams, ins: Mapping[str, Any]) -> Emission:
        return Emission("{x}.permute(%s)" % ", ".join(str(d) for d in p.dims))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({"dims": [0, 2, 1]}, {"x": TensorSpec(("N", "T", 4))}),
                Example({"dims": [0, 2, 3, 1]}, {"x": TensorSpec(("N", 3, 4, 5))}),
                Example({"dims": [1, 0, -1]}, {"x": TensorSpec(("N", "T", 2))})]


class TransposeParams(Params):
    dim0: int = _axis_field(1, "First dim to swap")
    dim1: int = _axis_field(2, "Second dim to swap")


@register
class Transpose(NodeType):
    id = "shape.transpose"
    name = "Transpose"
    category = CATEGORY
    description = "Swaps two dims, e.g. [N, T, C] <-> [N, C, T]."
    Params = TransposeParams
    key_params = ("dim0", "dim1")

    @classmethod
    def infer(cls, p: TransposeParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins)
        a, b = norm_axis(p.dim0, x.rank), norm_axis(p.dim1, x.rank)
        dims = list(x.dims)
        dims[a], dims[b] = dims[b], dims[a]
        return {"y": TensorSpec(tuple(dims), x.dtype)}

    @classmethod
    def emit(cls, p: TransposeParams, ins: Mapping[str, Any]) -> Emission:
        return Emission("{x}.transpose(%d, %d)" % (p.dim0, p.dim1))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", "T", 4))}),
                Example({"dim0": 0, "dim1": -1}, {"x": TensorSpec(("N", 3, 5))}),
                Example({"dim0": 2, "dim1": 2}, {"x": TensorSpec(("N", 3, 5))})]


class SqueezeParams(Params):
    dim: int = _axis_field(1, "The size-1 dim to remove")


@register
class Squeeze(NodeType):
    id = "shape.squeeze"
    name = "Squeeze"
    category = CATEGORY
    description = "Removes a dim of size 1, e.g. [N, 1, 64] -> [N, 64]."
    Params = SqueezeParams
    key_params = ("dim",)

    @classmethod
    def infer(cls, p: SqueezeParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, rank=range(1, 7))
        axis = norm_axis(p.dim, x.rank)
        if x.dims[axis] != 1:
            raise ShapeError(f"Squeeze dim {p.dim} of {x.label()} has size {x.dims[axis]}, "
                             "not 1, so nothing would be removed",
                             "pick the dim of size 1, or use Select to take one entry", "x")
        return {"y": TensorSpec(x.dims[:axis] + x.dims[axis + 1:], x.dtype)}

    @classmethod
    def emit(cls, p: SqueezeParams, ins: Mapping[str, Any]) -> Emission:
        return Emission("{x}.squeeze(%d)" % p.dim)

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 1, 4))}),
                Example({"dim": -1}, {"x": TensorSpec(("N", "T", 1))})]


class UnsqueezeParams(Params):
    dim: int = Field(1, ge=-7, le=6, description="Where the new size-1 dim goes")


@register
class Unsqueeze(NodeType):
    id = "shape.unsqueeze"
    name = "Unsqueeze"
    category = CATEGORY
    description = "Inserts a dim of size 1, e.g. [N, 64] -> [N, 1, 64] (a length-1 sequence)."
    Params = UnsqueezeParams
    key_params = ("dim",)

    @classmethod
    def infer(cls, p: UnsqueezeParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, rank=range(0, 6))
        axis = norm_axis(p.dim, x.rank + 1)
        return {"y": TensorSpec(x.dims[:axis] + (1,) + x.dims[axis:], x.dtype)}

    @classmethod
    def emit(cls, p: UnsqueezeParams, ins: Mapping[str, Any]) -> Emission:
        return Emission("{x}.unsqueeze(%d)" % p.dim)

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 4))}),
                Example({"dim": -1}, {"x": TensorSpec(("N", "T"), "long")}),
                Example({"dim": 2}, {"x": TensorSpec(("N", 3))})]


class SplitParams(Params):
    dim: int = _axis_field(-1, "The dim to split")
    split_size: int | None = Field(None, ge=1, le=1_000_000,
                                   description="Size of the first piece 'a'; empty = two halves")


@register
class Split(NodeType):
    id = "shape.split"
    name = "Split"
    category = CATEGORY
    description = ("Cuts a tensor in two along a dim: 'a' gets the first split_size entries (or "
                   "the first half), 'b' the rest. Chain Splits for more pieces.")
    Params = SplitParams
    outputs = (Port("a", doc="The first piece"), Port("b", doc="The rest"))
    key_params = ("dim", "split_size")

    @classmethod
    def infer(cls, p: SplitParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, rank=range(1, 7))
        axis = norm_axis(p.dim, x.rank)
        size = x.dims[axis]
        if p.split_size is None:
            if isinstance(size, int):
                if size < 2:
                    raise ShapeError(f"dim {p.dim} of {x.label()} has size {size}; nothing to "
                                     "split", "split a dim with at least 2 entries", "x")
                a: Dim = -(-size // 2)
                b: Dim = size - a
            else:
                half = divide(size, 2)
                a = b = half if half is not None else primed(size)
        else:
            if isinstance(size, int) and p.split_size >= size:
                raise ShapeError(f"split_size {p.split_size} leaves nothing for 'b': dim {p.dim} "
                                 f"of {x.label()} has size {size}",
                                 f"choose a split_size below {size}", "x")
            a, b = p.split_size, (size - p.split_size if isinstance(size, int) else primed(size))
        dims = list(x.dims)
        dims[axis] = a
        first = TensorSpec(tuple(dims), x.dtype)
        dims[axis] = b
        return {"a": first, "b": TensorSpec(tuple(dims), x.dtype)}

    @classmethod
    def emit(cls, p: SplitParams, ins: Mapping[str, Any]) -> Emission:
        if p.split_size is None:
            return Emission("{x}.chunk(2, dim=%d)" % p.dim, unpack="{a}, {b}")
        return Emission("{x}.tensor_split([%d], dim=%d)" % (p.split_size, p.dim),
                        unpack="{a}, {b}")

    @classmethod
    def examples(cls) -> list[Example]:
        return [
            Example({}, {"x": TensorSpec(("N", 8))}),
            Example({"dim": 1}, {"x": TensorSpec(("N", 5, 2))}, "odd size: a gets the extra"),
            Example({"dim": 1, "split_size": 1}, {"x": TensorSpec(("N", 4, 3))}),
            Example({"dim": 1, "split_size": 2}, {"x": TensorSpec(("N", "T", 3))}),
            Example({"dim": 1}, {"x": TensorSpec(("N", "T", 3))}, "halves of T are unknown"),
        ]


class SelectParams(Params):
    dim: int = _axis_field(1, "The dim to index (it disappears)")
    index: int = Field(0, ge=-1_000_000, le=1_000_000,
                       description="Which entry: 0 the first (a CLS token), -1 the last step")


def _index_expr(dim: int, key: str) -> str:
    """``x[:, key]`` style indexing, which reads like hand-written code."""
    if dim >= 0:
        return "{x}[" + ", ".join([":"] * dim + [key]) + "]"
    return "{x}[..., " + ", ".join([key] + [":"] * (-dim - 1)) + "]"


@register
class Select(NodeType):
    id = "shape.select"
    name = "Select"
    category = CATEGORY
    description = ("Takes one entry along a dim and drops that dim: the CLS token x[:, 0] or "
                   "the last step x[:, -1] of a sequence.")
    Params = SelectParams
    key_params = ("dim", "index")

    @classmethod
    def infer(cls, p: SelectParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, rank=range(1, 7))
        axis = norm_axis(p.dim, x.rank)
        size = x.dims[axis]
        if isinstance(size, int):
            if not -size <= p.index < size:
                raise ShapeError(f"index {p.index} is out of range for dim {p.dim} of "
                                 f"{x.label()}", f"use an index from {-size} to {size - 1}", "x")
        elif p.index not in (0, -1):
            raise ShapeError(f"dim {p.dim} of {x.label()} has a variable size ({size}), so only "
                             "index 0 or -1 is sure to exist",
                             "use 0 (first) or -1 (last), or Slice a fixed range", "x")
        return {"y": TensorSpec(x.dims[:axis] + x.dims[axis + 1:], x.dtype)}

    @classmethod
    def emit(cls, p: SelectParams, ins: Mapping[str, Any]) -> Emission:
        return Emission(_index_expr(p.dim, str(p.index)))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", "T", 4))}),
                Example({"index": -1}, {"x": TensorSpec(("N", "T", 4))}),
                Example({"dim": -1, "index": 2}, {"x": TensorSpec(("N", 3, 5))}),
                Example({"dim": -2, "index": -3}, {"x": TensorSpec(("N", 3, 5), "long")})]


class SliceParams(Params):
    dim: int = _axis_field(1, "The dim to slice")
    start: int = Field(0, ge=-1_000_000, le=1_000_000, description="First entry kept")
    end: int | None = Field(None, ge=-1_000_000, le=1_000_000,
                            description="Entry to stop before; empty = to the end")
    step: int = Field(1, ge=1, le=1_000_000, description="Keep every step-th entry")


def _slice_len(size: int, p: SliceParams) -> int:
    return len(range(*slice(p.start, p.end, p.step).indices(size)))


@register
class Slice(NodeType):
    id = "shape.slice"
    name = "Slice"
    category = CATEGORY
    description = ("Keeps a range of entries along a dim, like x[:, start:end:step]. On a "
                   "variable-size dim, fixed bounds assume the input is long enough.")
    Params = SliceParams
    key_params = ("dim", "start", "end")

    @classmethod
    def infer(cls, p: SliceParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, rank=range(1, 7))
        axis = norm_axis(p.dim, x.rank)
        size = x.dims[axis]
        if isinstance(size, int):
            out: Dim = _slice_len(size, p)
            if out == 0:
                raise ShapeError(f"slice {p.start}:{'' if p.end is None else p.end} of dim "
                                 f"{p.dim} of {x.label()} is empty",
                                 f"keep entries between 0 and {size - 1}", "x")
        else:
            # Two large stand-ins: a length that does not move is fixed by the bounds alone.
            lengths = {_slice_len(n, p) for n in (1_000_003, 1_000_033)}
            if len(lengths) == 1:
                out = lengths.pop()
            elif p.start == 0 and p.end is None and p.step == 1:
                out = size
            else:
                out = primed(size)
            if out == 0:
                raise ShapeError(f"slice {p.start}:{p.end} is empty", "check start and end", "x")
        dims = list(x.dims)
        dims[axis] = out
        return {"y": TensorSpec(tuple(dims), x.dtype)}

    @classmethod
    def emit(cls, p: SliceParams, ins: Mapping[str, Any]) -> Emission:
        key = (str(p.start) if p.start else "") + ":" + ("" if p.end is None else str(p.end))
        if p.step != 1:
            key += f":{p.step}"
        return Emission(_index_expr(p.dim, key))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({"start": 1, "end": 3}, {"x": TensorSpec(("N", 5, 2))}),
                Example({"dim": -1, "step": 2}, {"x": TensorSpec(("N", 3, 7))}),
                Example({"start": -2}, {"x": TensorSpec(("N", "T", 2))}, "the last 2 steps"),
                Example({"start": 1}, {"x": TensorSpec(("N", "T", 2))}, "T minus one: T'"),
                Example({"start": 0, "end": 3}, {"x": TensorSpec(("N", "T"), "long")})]
