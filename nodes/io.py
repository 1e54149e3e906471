"""Inputs and outputs of networks and blocks. Codegen treats these by ``role``, not by emission."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Mapping

from pydantic import Field, field_validator

from .base import (
    Emission,
    Example,
    GraphSpec,
    NodeType,
    Params,
    Port,
    Role,
    ShapeError,
    TensorSpec,
)
from .registry import register

SYMBOLS = ("N", "T", "S", "V", "E")


class InputParams(Params):
    shape: list[Annotated[int, Field(ge=1, le=1_000_000)] | str] = Field(
        default_factory=lambda: ["N", 3, 32, 32],
        description="Tensor shape. 'N' is the batch, 'T' a sequence length of any size; "
        "other entries are fixed sizes.",
    )
    dtype: Literal["float", "long"] = Field(
        "float", description="'float' for real-valued data, 'long' for token or class ids")

    @field_validator("shape", mode="before")
    @classmethod
    def _check_shape(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v  # pydantic's own type error names the problem
        if not v:
            raise ValueError("shape needs at least one dimension")
        if len(v) > 6:
            raise ValueError("shape has more than 6 dimensions")
        for d in v:
            if isinstance(d, str) and d not in SYMBOLS:
                raise ValueError(f"'{d}' is not a size; use a number or one of "
                                 f"{', '.join(SYMBOLS)}")
            if isinstance(d, int) and not 1 <= d <= 1_000_000:
                raise ValueError(f"size {d} is out of range (1..1000000)")
        return v


@register
class Input(NodeType):
    id = "io.input"
    name = "Input"
    category = "Input / Output"
    description = "A tensor fed to the network's forward(); its name is the argument name."
    role: ClassVar[Role] = Role.INPUT
    Params = InputParams
    inputs = ()
    outputs = (Port("y"),)
    key_params = ("shape",)

    @classmethod
    def infer(cls, p: InputParams, ins: Mapping[str, Any]) -> dict:
        return {"y": TensorSpec(tuple(p.shape), p.dtype)}

    @classmethod
    def summary(cls, p: InputParams) -> str:
        return TensorSpec(tuple(p.shape), p.dtype).label()


class GraphInputParams(Params):
    features: int = Field(34, ge=1, le=1_000_000, description="Feature size of every graph node")


@register
class GraphInput(NodeType):
    id = "io.graph_input"
    name = "Graph Input"
    category = "Input / Output"
    description = ("A batch of graphs: node features x [V, F] and the structure (edge index, and "
                   "which graph each node belongs to) on the graph port.")
    role: ClassVar[Role] = Role.INPUT
    Params = GraphInputParams
    inputs = ()
    outputs = (Port("x"), Port("graph", kind="graph"))
    key_params = ("features",)

    @classmethod
    def infer(cls, p: GraphInputParams, ins: Mapping[str, Any]) -> dict:
        return {"x": TensorSpec(("V", p.features)), "graph": GraphSpec()}


class OutputParams(Params):
    pass


@register
class Output(NodeType):
    id = "io.output"
    name = "Output"
    category = "Input / Output"
    description = "A value returned by forward(); several Outputs return a tuple in their order."
    role: ClassVar[Role] = Role.OUTPUT
    Params = OutputParams
    inputs = (Port("x"),)
    outputs = ()

    @classmethod
    def infer(cls, p: OutputParams, ins: Mapping[str, Any]) -> dict:
        if "x" not in ins:
            raise ShapeError("Output has nothing connected", "wire a tensor into it", "x")
        return {}


class BlockInputParams(Params):
    kind: Literal["tensor", "graph"] = Field("tensor", description="What the block receives here")


@register
class BlockInput(NodeType):
    id = "io.block_input"
    name = "Block Input"
    category = "Input / Output"
    description = "An input of a reusable block; its shape comes from the wire into the block node."
    role: ClassVar[Role] = Role.BLOCK_INPUT
    Params = BlockInputParams
    inputs = ()
    outputs = (Port("y", kind="any"),)  # a graph-kind block input feeds graph ports inside

    @classmethod
    def infer(cls, p: BlockInputParams, ins: Mapping[str, Any]) -> dict:
        raise ShapeError("a block input takes its shape from the block node", "", None)

    @classmethod
    def examples(cls) -> list[Example]:
        return []


@register
class BlockOutput(NodeType):
    id = "io.block_output"
    name = "Block Output"
    category = "Input / Output"
    description = "An output of a reusable block."
    role: ClassVar[Role] = Role.BLOCK_OUTPUT
    Params = OutputParams
    inputs = (Port("x"),)
    outputs = ()

    @classmethod
    def infer(cls, p: OutputParams, ins: Mapping[str, Any]) -> dict:
        return {}


def role_of(cls: type[NodeType]) -> Role:
    return cls.role


def is_io(cls: type[NodeType]) -> bool:
    return cls.role.is_io


__all__ = ["Input", "GraphInput", "Output", "BlockInput", "BlockOutput", "Role", "role_of", "is_io",
           "Emission"]
