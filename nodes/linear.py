"""Dense layers: Linear, Embedding, Identity."""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import Field

from .base import (
    Call,
    Emission,
    Example,
    NodeType,
    Params,
    Port,
    ShapeError,
    TensorSpec,
    concrete_dim,
    tensor_in,
)
from .registry import register


class LinearParams(Params):
    out_features: int = Field(64, ge=1, le=1_000_000, description="Size of each output sample")
    bias: bool = Field(True, description="Learn an additive bias")


@register
class Linear(NodeType):
    id = "linear.linear"
    name = "Linear"
    category = "Linear"
    description = "y = x Wᵀ + b on the last dimension; in_features is taken from the input."
    Params = LinearParams
    key_params = ("out_features",)

    @classmethod
    def infer(cls, p: LinearParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, rank=range(1, 7))
        if x.dtype != "float":
            raise ShapeError(f"Linear needs float input, got {x.dtype} ids",
                             "put an Embedding before it to turn ids into vectors", "x")
        concrete_dim(x, -1, "in_features")
        return {"y": TensorSpec(x.dims[:-1] + (p.out_features,))}

    @classmethod
    def emit(cls, p: LinearParams, ins: Mapping[str, Any]) -> Emission:
        x = ins["x"]
        kw = {} if p.bias else {"bias": False}
        init = Call.named("nn.Linear", [("in_features", x.dims[-1]),
                                        ("out_features", p.out_features)], **kw)
        return Emission("{self}({x})", init)

    @classmethod
    def examples(cls) -> list[Example]:
        return [
            Example({"out_features": 7}, {"x": TensorSpec(("N", 5))}),
            Example({"out_features": 3, "bias": False}, {"x": TensorSpec(("N", "T", 4))}),
        ]


class EmbeddingParams(Params):
    num_embeddings: int = Field(1000, ge=1, le=10_000_000, description="Vocabulary size")
    embedding_dim: int = Field(64, ge=1, le=100_000, description="Size of each embedding vector")
    padding_idx: int | None = Field(None, ge=0, le=10_000_000,
                                    description="An id whose vector stays zero")


@register
class Embedding(NodeType):
    id = "linear.embedding"
    name = "Embedding"
    category = "Linear"
    description = "Looks up a learned vector for each integer id."
    Params = EmbeddingParams
    key_params = ("num_embeddings", "embedding_dim")

    @classmethod
    def infer(cls, p: EmbeddingParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, rank=range(1, 6))
        if x.dtype != "long":
            raise ShapeError(f"Embedding needs integer ids, got {x.dtype} {x.label()}",
                             "set the Input's dtype to 'long'", "x")
        if p.padding_idx is not None and p.padding_idx >= p.num_embeddings:
            raise ShapeError("padding_idx must be smaller than num_embeddings", "", None)
        return {"y": TensorSpec(x.dims + (p.embedding_dim,))}

    @classmethod
    def emit(cls, p: EmbeddingParams, ins: Mapping[str, Any]) -> Emission:
        kw = {} if p.padding_idx is None else {"padding_idx": p.padding_idx}
        return Emission("{self}({x})",
                        Call.named("nn.Embedding", [("num_embeddings", p.num_embeddings),
                                                   ("embedding_dim", p.embedding_dim)], **kw))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({"num_embeddings": 11, "embedding_dim": 4},
                        {"x": TensorSpec(("N", "T"), "long")})]


@register
class Identity(NodeType):
    id = "linear.identity"
    name = "Identity"
    category = "Linear"
    description = "Passes its input through unchanged (a placeholder or a named tap)."
    inputs = (Port("x"),)

    @classmethod
    def infer(cls, p: Params, ins: Mapping[str, Any]) -> dict:
        return {"y": tensor_in(ins)}

    @classmethod
    def emit(cls, p: Params, ins: Mapping[str, Any]) -> Emission:
        return Emission("{x}")

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 3))})]


@register
class TiedEmbedding(NodeType):
    id = "linear.tied_embedding"
    name = "Embedding (shared weight)"
    category = "Linear"
    description = ("An Embedding that also hands out its weight matrix [num_embeddings, "
                   "embedding_dim], so a Tied Linear can reuse it as the output layer (GPT-2's "
                   "LM head): one matrix, counted and trained once.")
    Params = EmbeddingParams
    outputs = (Port("y", doc="Vectors [..., embedding_dim]"),
               Port("weight", doc="The shared matrix [num_embeddings, embedding_dim]"))
    key_params = ("num_embeddings", "embedding_dim")

    @classmethod
    def infer(cls, p: EmbeddingParams, ins: Mapping[str, Any]) -> dict:
        out = Embedding.infer(p, ins)
        return {"y": out["y"], "weight": TensorSpec((p.num_embeddings, p.embedding_dim))}

    @classmethod
    def emit(cls, p: EmbeddingParams, ins: Mapping[str, Any]) -> Emission:
        em = Embedding.emit(p, ins)
        return Emission("{self}({x}), {self}.weight", em.init, unpack="{y}, {weight}")

    @classmethod
    def examples(cls) -> list[Example]:
        return Embedding.examples()


@register
class TiedLinear(NodeType):
    id = "linear.tied_linear"
    name = "Tied Linear"
    category = "Linear"
    description = ("y = x Wᵀ with W wired in from an Embedding (shared weight): scores every "
                   "vocabulary entry by its similarity to x. Has no weights of its own.")
    inputs = (Port("x", doc="[..., embedding_dim]"),
              Port("weight", doc="[num_embeddings, embedding_dim] from an Embedding (shared)"))

    @classmethod
    def infer(cls, p: Params, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins, "x", rank=range(1, 7))
        w = tensor_in(ins, "weight", rank=(2,))
        if x.dtype != "float":
            raise ShapeError(f"Tied Linear needs float input, got {x.dtype} ids", "", "x")
        if x.dims[-1] != w.dims[1]:
            raise ShapeError(f"x {x.label()} ends in {x.dims[-1]} but the weight {w.label()} has "
                             f"{w.dims[1]} columns",
                             "wire the weight of the Embedding whose embedding_dim is the size "
                             "of x", "weight")
        return {"y": TensorSpec(x.dims[:-1] + (w.dims[0],))}

    @classmethod
    def emit(cls, p: Params, ins: Mapping[str, Any]) -> Emission:
        return Emission("F.linear({x}, {weight})")

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", "T", 4)), "weight": TensorSpec((11, 4))})]
