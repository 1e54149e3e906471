"""Element-wise activations. Shape-preserving, so one base class carries infer and emit."""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import Field

from .base import Call, Emission, Example, NodeType, Params, TensorSpec, norm_axis, tensor_in
from .registry import register


class _Activation(NodeType):
    category = "Activation"
    torch_name: str = ""

    @classmethod
    def infer(cls, p: Params, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins)
        return {"y": TensorSpec(x.dims, "float")}

    @classmethod
    def ctor_kwargs(cls, p: Params) -> dict[str, Any]:
        defaults = cls.Params()
        return {k: v for k, v in p.model_dump().items() if getattr(defaults, k) != v}

    @classmethod
    def emit(cls, p: Params, ins: Mapping[str, Any]) -> Emission:
        return Emission("{self}({x})", Call.of(f"nn.{cls.torch_name}", **cls.ctor_kwargs(p)))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"x": TensorSpec(("N", 3, 4))})]


def _simple(type_id: str, torch_name: str, description: str, params: type[Params] = Params,
            key: tuple[str, ...] = ()) -> type[NodeType]:
    cls = type(torch_name, (_Activation,), {
        "id": type_id, "name": torch_name, "description": description, "torch_name": torch_name,
        "Params": params, "key_params": key, "__module__": __name__,
    })
    return register(cls)


class LeakyReLUParams(Params):
    negative_slope: float = Field(0.01, ge=0.0, le=1.0, description="Slope for negative inputs")


class ELUParams(Params):
    alpha: float = Field(1.0, gt=0.0, le=100.0, description="Saturation value for negative inputs")


class GELUParams(Params):
    approximate: str = Field("none", pattern="^(none|tanh)$",
                             description="'tanh' uses the faster approximation (as GPT-2 did)")


class DimParams(Params):
    dim: int = Field(-1, ge=-6, le=5, description="The dimension that sums to one")


ReLU = _simple("activation.relu", "ReLU", "max(0, x): the default non-linearity.")
LeakyReLU = _simple("activation.leaky_relu", "LeakyReLU", "ReLU with a small slope below zero.",
                    LeakyReLUParams, ("negative_slope",))
ELU = _simple("activation.elu", "ELU", "Smooth exponential below zero.", ELUParams)
GELU = _simple("activation.gelu", "GELU", "Gaussian error linear unit, used in Transformers.",
               GELUParams)
SiLU = _simple("activation.silu", "SiLU", "x·sigmoid(x) (Swish), used in EfficientNet.")
Tanh = _simple("activation.tanh", "Tanh", "Squashes to (-1, 1).")
Sigmoid = _simple("activation.sigmoid", "Sigmoid", "Squashes to (0, 1).")


class _SoftmaxLike(_Activation):
    Params = DimParams
    key_params = ("dim",)

    @classmethod
    def infer(cls, p: DimParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins)
        norm_axis(p.dim, x.rank)
        return {"y": TensorSpec(x.dims)}

    @classmethod
    def emit(cls, p: DimParams, ins: Mapping[str, Any]) -> Emission:
        return Emission("{self}({x})", Call.of(f"nn.{cls.torch_name}", dim=p.dim))


@register
class Softmax(_SoftmaxLike):
    id = "activation.softmax"
    name = "Softmax"
    torch_name = "Softmax"
    description = "Exponentiates and normalises along a dimension into probabilities."


@register
class LogSoftmax(_SoftmaxLike):
    id = "activation.log_softmax"
    name = "LogSoftmax"
    torch_name = "LogSoftmax"
    description = "log(softmax(x)), numerically stable; pair with NLL loss."
