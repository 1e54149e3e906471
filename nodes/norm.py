"""Normalization (BatchNorm, LayerNorm, GroupNorm, InstanceNorm) and regularization (Dropout).

All keep the shape. The feature count a layer normalises over is read from the input (dim 1 for
the batch/group/instance norms, the trailing dims for LayerNorm), never asked for.
"""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import Field

from .base import (
    Call,
    Emission,
    Example,
    NodeType,
    Params,
    ShapeError,
    TensorSpec,
    concrete_dim,
    tensor_in,
)
from .registry import register

NORM = "Normalization"
REGULARIZATION = "Regularization"


def _eps() -> Any:
    return Field(1e-5, gt=0.0, le=1.0, description="Added to the variance to avoid dividing by 0")


class _Shaped(NodeType):
    """Base of the shape-keeping layers: a rank check, then the constructor."""

    ranks: tuple[int, ...] = (2, 3, 4, 5)
    layout = ""

    @classmethod
    def check(cls, p: Any, ins: Mapping[str, Any]) -> TensorSpec:
        x = tensor_in(ins, rank=cls.ranks, what=cls.layout)
        if x.dtype != "float":
            raise ShapeError(f"{cls.name} needs float input, got {x.dtype} {x.label()}",
                             "put an Embedding before it to turn ids into vectors", "x")
        return x

    @classmethod
    def infer(cls, p: Any, ins: Mapping[str, Any]) -> dict:
        return {"y": TensorSpec(cls.check(p, ins).dims)}


def _changed(p: Params, names: tuple[str, ...]) -> dict[str, Any]:
    """The constructor keywords whose values differ from the Params defaults (= torch's)."""
    defaults = type(p)()
    return {k: getattr(p, k) for k in names if getattr(p, k) != getattr(defaults, k)}


class BatchNormParams(Params):
    eps: float = _eps()
    momentum: float = Field(0.1, ge=0.0, le=1.0, description="Weight of the newest batch in the "
                            "running mean and variance")
    affine: bool = Field(True, description="Learn a per-channel scale and shift")
    track_running_stats: bool = Field(True, description="Keep running statistics for eval mode")


class _BatchNorm(_Shaped):
    category = NORM
    torch_name = "BatchNorm2d"
    Params = BatchNormParams

    @classmethod
    def infer(cls, p: BatchNormParams, ins: Mapping[str, Any]) -> dict:
        x = cls.check(p, ins)
        concrete_dim(x, 1, "num_features (the channels)")
        return {"y": TensorSpec(x.dims)}

    @classmethod
    def emit(cls, p: BatchNormParams, ins: Mapping[str, Any]) -> Emission:
        kw = _changed(p, ("eps", "momentum", "affine", "track_running_stats"))
        init = Call.named(f"nn.{cls.torch_name}", [("num_features", ins["x"].dims[1])], **kw)
        return Emission("{self}({x})", init)


@register
class BatchNorm1d(_BatchNorm):
    id = "norm.batch_norm1d"
    name = "BatchNorm1d"
    torch_name = "BatchNorm1d"
    ranks = (2, 3)
    layout = "[N, C] or [N, C, L]"
    description = ("Normalises each feature over the batch (and length): for MLPs [N, C] and "
                   "1-D convs [N, C, L].")

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 6))}),
                Example({"momentum": 0.01, "affine": False}, {"x": TensorSpec(("N", 3, "T"))}),
                Example({"eps": 1e-3, "track_running_stats": False},
                        {"x": TensorSpec(("N", 4, 5))})]


@register
class BatchNorm2d(_BatchNorm):
    id = "norm.batch_norm2d"
    name = "BatchNorm2d"
    torch_name = "BatchNorm2d"
    ranks = (4,)
    layout = "[N, C, H, W]"
    description = "Normalises each channel over the batch and H×W; the usual partner of Conv2d."

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 4, 3, 3))}),
                Example({"eps": 1e-3, "momentum": 0.03}, {"x": TensorSpec(("N", 2, "S", 5))})]


class LayerNormParams(Params):
    dims: int = Field(1, ge=1, le=5, description="How many trailing dims to normalise over "
                      "(1 = the feature dim, as in Transformers)")
    eps: float = _eps()
    elementwise_affine: bool = Field(True, description="Learn a scale per normalised element")
    bias: bool = Field(True, description="Learn a shift as well (needs elementwise_affine)")


@register
class LayerNorm(_Shaped):
    id = "norm.layer_norm"
    name = "LayerNorm"
    category = NORM
    description = ("Normalises each sample over its last dim(s); the Transformer's norm. "
                   "normalized_shape is taken from the input.")
    Params = LayerNormParams
    ranks = (1, 2, 3, 4, 5, 6)
    key_params = ("dims",)

    @classmethod
    def infer(cls, p: LayerNormParams, ins: Mapping[str, Any]) -> dict:
        x = cls.check(p, ins)
        if p.dims >= x.rank:
            raise ShapeError(f"LayerNorm over the last {p.dims} dims of {x.label()} would include "
                             "the batch dim", f"set dims to at most {x.rank - 1}", None)
        for axis in range(x.rank - p.dims, x.rank):
            concrete_dim(x, axis, "normalized_shape")
        return {"y": TensorSpec(x.dims)}

    @classmethod
    def emit(cls, p: LayerNormParams, ins: Mapping[str, Any]) -> Emission:
        dims = list(ins["x"].dims[-p.dims:])
        shape: Any = dims[0] if len(dims) == 1 else dims
        kw = _changed(p, ("eps", "elementwise_affine"))
        if not p.bias and p.elementwise_affine:
            kw["bias"] = False
        init = Call.named("nn.LayerNorm", [("normalized_shape", shape)], **kw)
        return Emission("{self}({x})", init)

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", "T", 8))}),
                Example({"dims": 2, "eps": 1e-6}, {"x": TensorSpec(("N", 3, 4))}),
                Example({"elementwise_affine": False}, {"x": TensorSpec(("N", 5))}),
                Example({"bias": False, "dims": 3}, {"x": TensorSpec(("N", 2, 3, 4))})]


class GroupNormParams(Params):
    num_groups: int = Field(32, ge=1, le=100_000, description="Channel groups normalised "
                            "separately; must divide the channels")
    eps: float = _eps()
    affine: bool = Field(True, description="Learn a per-channel scale and shift")


@register
class GroupNorm(_Shaped):
    id = "norm.group_norm"
    name = "GroupNorm"
    category = NORM
    description = ("Normalises groups of channels per sample; unlike BatchNorm it works with "
                   "batches of 1. 1 group = LayerNorm over C×H×W; C groups = InstanceNorm.")
    Params = GroupNormParams
    key_params = ("num_groups",)

    @classmethod
    def infer(cls, p: GroupNormParams, ins: Mapping[str, Any]) -> dict:
        x = cls.check(p, ins)
        c = concrete_dim(x, 1, "num_channels")
        if c % p.num_groups:
            divisors = [d for d in range(1, c + 1) if c % d == 0]
            raise ShapeError(f"GroupNorm with num_groups={p.num_groups} needs the channels to "
                             f"divide evenly, but {x.label()} has {c}",
                             f"set num_groups to a divisor of {c}: "
                             + ", ".join(map(str, divisors[-6:])), None)
        return {"y": TensorSpec(x.dims)}

    @classmethod
    def emit(cls, p: GroupNormParams, ins: Mapping[str, Any]) -> Emission:
        kw = _changed(p, ("eps", "affine"))
        return Emission("{self}({x})", Call.named("nn.GroupNorm", [("num_groups", p.num_groups),
                                               ("num_channels", ins["x"].dims[1])], **kw))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({"num_groups": 2}, {"x": TensorSpec(("N", 4, 3, 3))}),
                Example({"num_groups": 1, "affine": False}, {"x": TensorSpec(("N", 6, "T"))}),
                Example({"num_groups": 3, "eps": 1e-6}, {"x": TensorSpec(("N", 3))})]


class InstanceNormParams(Params):
    eps: float = _eps()
    momentum: float = Field(0.1, ge=0.0, le=1.0, description="Running statistics momentum")
    affine: bool = Field(False, description="Learn a per-channel scale and shift")
    track_running_stats: bool = Field(False, description="Keep running statistics for eval")


@register
class InstanceNorm2d(_Shaped):
    id = "norm.instance_norm2d"
    name = "InstanceNorm2d"
    category = NORM
    description = "Normalises each channel of each image on its own (style transfer, GANs)."
    Params = InstanceNormParams
    ranks = (4,)
    layout = "[N, C, H, W]"

    @classmethod
    def infer(cls, p: InstanceNormParams, ins: Mapping[str, Any]) -> dict:
        x = cls.check(p, ins)
        concrete_dim(x, 1, "num_features (the channels)")
        h, w = x.dims[2], x.dims[3]
        if isinstance(h, int) and isinstance(w, int) and h * w == 1:
            raise ShapeError(f"InstanceNorm2d normalises over H×W, and the input {x.label()} has "
                             "one spatial element", "use it before the spatial size reaches 1×1 "
                             "(or use LayerNorm / BatchNorm2d there)")
        return {"y": TensorSpec(x.dims)}

    @classmethod
    def emit(cls, p: InstanceNormParams, ins: Mapping[str, Any]) -> Emission:
        kw = _changed(p, ("eps", "momentum", "affine", "track_running_stats"))
        init = Call.named("nn.InstanceNorm2d", [("num_features", ins["x"].dims[1])], **kw)
        return Emission("{self}({x})", init)

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 3, 4, 4))}),
                Example({"affine": True, "track_running_stats": True},
                        {"x": TensorSpec(("N", 2, 5, "S"))})]


class DropoutParams(Params):
    p: float = Field(0.5, ge=0.0, le=1.0, description="Probability that an element is zeroed "
                     "during training (none in eval)")


@register
class Dropout(_Shaped):
    id = "norm.dropout"
    name = "Dropout"
    category = REGULARIZATION
    description = "Zeroes random elements while training and rescales the rest; off in eval."
    Params = DropoutParams
    ranks = (1, 2, 3, 4, 5, 6)
    key_params = ("p",)

    @classmethod
    def infer(cls, p: DropoutParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins)
        if x.dtype != "float":
            raise ShapeError(f"Dropout needs float input, got {x.dtype} {x.label()}",
                             "apply it after the Embedding, not to the ids", "x")
        return {"y": TensorSpec(x.dims)}

    @classmethod
    def emit(cls, p: DropoutParams, ins: Mapping[str, Any]) -> Emission:
        if p.p == 0:  # a no-op: no layer is written, the output is the input
            return Emission("{x}")
        return Emission("{self}({x})", Call.named(f"nn.{cls.__name__}", [("p", p.p)]))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 8))}),
                Example({"p": 0.1}, {"x": TensorSpec(("N", "T", 4))}),
                Example({"p": 0.0}, {"x": TensorSpec(("N", 2, 3, 3))})]


@register
class Dropout2d(Dropout):
    id = "norm.dropout2d"
    name = "Dropout2d"
    description = "Zeroes whole channels of [N, C, H, W] feature maps while training."
    ranks = (4,)
    layout = "[N, C, H, W]"

    @classmethod
    def infer(cls, p: DropoutParams, ins: Mapping[str, Any]) -> dict:
        return {"y": TensorSpec(cls.check(p, ins).dims)}

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 4, 3, 3))}),
                Example({"p": 0.2}, {"x": TensorSpec(("N", 2, "S", 5))})]
