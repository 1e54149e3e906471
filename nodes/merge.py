"""Merging several tensors: Add (the residual connection), Concat, Multiply, Mean."""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import Field

from .base import (
    Emission,
    Example,
    NodeType,
    Params,
    Port,
    ShapeError,
    TensorSpec,
    broadcast,
    norm_axis,
)
from .registry import register


def _tensors(ins: Mapping[str, Any], port: str = "x", minimum: int = 2) -> list[TensorSpec]:
    specs = ins.get(port) or []
    if len(specs) < minimum:
        raise ShapeError(f"needs at least {minimum} inputs, has {len(specs)}",
                         "wire more tensors into it", port)
    for s in specs:
        if not isinstance(s, TensorSpec):
            raise ShapeError("every input must be a tensor", "", port)
    return specs


def residual_hint(a: TensorSpec, b: TensorSpec) -> str:
    """How to make two feature maps addable: the classic projection shortcut."""
    if a.rank == b.rank == 4 and all(isinstance(d, int) for d in a.dims[1:] + b.dims[1:]):
        big, small = (a, b) if a.dims[2] >= b.dims[2] else (b, a)
        stride = big.dims[2] // small.dims[2] if small.dims[2] else 1
        if stride >= 1 and big.dims[2] == small.dims[2] * stride:
            return (f"put a 1×1 Conv2d with out_channels={small.dims[1]} and stride={stride} "
                    f"on the {big.label()} path (the projection shortcut), or change the layers "
                    "so both paths agree")
    if a.rank == b.rank:
        return "insert a Linear or Conv layer on one path so the differing dims agree"
    return "insert a Reshape or Unsqueeze so both tensors have the same rank"


class _Elementwise(NodeType):
    category = "Merge"
    inputs = (Port("x", variadic=True, doc="Tensors of the same shape (broadcasting allowed)"),)
    op = "+"

    @classmethod
    def infer(cls, p: Params, ins: Mapping[str, Any]) -> dict:
        specs = _tensors(ins)
        try:
            dims = broadcast(specs)
        except ShapeError as err:
            a, b = specs[0], next(s for s in specs[1:] if s.dims != specs[0].dims)
            differ = [i for i in range(min(a.rank, b.rank)) if a.dims[i] != b.dims[i]]
            what = ", ".join(f"dim {i}: {a.dims[i]} vs {b.dims[i]}" for i in differ) or "rank"
            raise ShapeError(f"{cls.name} needs equal shapes; got {a.label()} and {b.label()} "
                             f"({what})", residual_hint(a, b), "x") from err
        return {"y": TensorSpec(dims)}

    @classmethod
    def emit(cls, p: Params, ins: Mapping[str, Any]) -> Emission:
        n = len(ins["x"])
        return Emission(f" {cls.op} ".join("{x[%d]}" % i for i in range(n)))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": [TensorSpec(("N", 4, 3)), TensorSpec(("N", 4, 3))]}),
                Example({}, {"x": [TensorSpec(("N", 2)), TensorSpec((1, 2)),
                                   TensorSpec(("N", 2))]})]


@register
class Add(_Elementwise):
    id = "merge.add"
    name = "Add"
    description = "Sums its inputs: the residual (skip) connection."


@register
class Multiply(_Elementwise):
    id = "merge.multiply"
    name = "Multiply"
    description = "Element-wise product (gates, squeeze-and-excitation scaling)."
    op = "*"


@register
class Mean(_Elementwise):
    id = "merge.mean"
    name = "Mean"
    description = "Element-wise average of its inputs."

    @classmethod
    def emit(cls, p: Params, ins: Mapping[str, Any]) -> Emission:
        n = len(ins["x"])
        return Emission("(" + " + ".join("{x[%d]}" % i for i in range(n)) + f") / {n}")


class ConcatParams(Params):
    dim: int = Field(1, ge=-6, le=5, description="The dimension to join along (1 = channels)")


@register
class Concat(NodeType):
    id = "merge.concat"
    name = "Concat"
    category = "Merge"
    description = "Joins tensors along one dimension; the others must agree."
    Params = ConcatParams
    inputs = (Port("x", variadic=True),)
    key_params = ("dim",)

    @classmethod
    def infer(cls, p: ConcatParams, ins: Mapping[str, Any]) -> dict:
        specs = _tensors(ins)
        rank = specs[0].rank
        if any(s.rank != rank for s in specs):
            raise ShapeError("Concat needs inputs of one rank; got "
                             + ", ".join(s.label() for s in specs),
                             "Reshape or Unsqueeze the odd one out", "x")
        axis = norm_axis(p.dim, rank)
        total: int | str = 0
        for i in range(rank):
            if i == axis:
                continue
            dims = {s.dims[i] for s in specs}
            if len(dims) > 1:
                raise ShapeError(f"Concat along dim {axis} needs the other dims equal; dim {i} "
                                 "differs: " + ", ".join(s.label() for s in specs),
                                 f"concatenate along dim {i} or resize the inputs", "x")
        if all(isinstance(s.dims[axis], int) for s in specs):
            total = sum(s.dims[axis] for s in specs)  # type: ignore[misc]
        else:
            total = "+".join(str(s.dims[axis]) for s in specs)
        dims = list(specs[0].dims)
        dims[axis] = total
        return {"y": TensorSpec(tuple(dims), specs[0].dtype)}

    @classmethod
    def emit(cls, p: ConcatParams, ins: Mapping[str, Any]) -> Emission:
        return Emission("torch.cat([{x}], dim=%d)" % p.dim)

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({"dim": 1}, {"x": [TensorSpec(("N", 4, 3)), TensorSpec(("N", 2, 3))]}),
                Example({"dim": -1}, {"x": [TensorSpec(("N", 2)), TensorSpec(("N", 5))]})]
