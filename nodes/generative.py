"""Generative building blocks: the VAE's reparameterisation trick.

Sampling z ~ N(mu, sigma²) is not differentiable in mu and sigma; writing it as
z = mu + eps · sigma with eps ~ N(0, 1) drawn apart is, which is what lets a VAE train.
"""

from __future__ import annotations

from typing import Any, Mapping

from . import helpers
from .base import (
    Call,
    Emission,
    Example,
    NodeType,
    Params,
    Port,
    ShapeError,
    TensorSpec,
    register_helper,
    tensor_in,
)
from .registry import register

register_helper("Reparameterize", helpers.Reparameterize)


@register
class Reparameterize(NodeType):
    id = "generative.reparameterize"
    name = "Reparameterize"
    category = "Generative"
    description = ("Samples the VAE latent z = mu + eps·exp(½·logvar), eps ~ N(0, 1), in training "
                   "mode; returns mu itself in eval mode (deterministic).")
    Params = Params
    inputs = (Port("mu", doc="Mean of the latent distribution"),
              Port("logvar", doc="Log-variance, same shape as mu"))
    outputs = (Port("z", doc="The sampled latent, shape of mu"),)

    @classmethod
    def infer(cls, p: Params, ins: Mapping[str, Any]) -> dict:
        mu = tensor_in(ins, "mu")
        logvar = tensor_in(ins, "logvar")
        for port, spec in (("mu", mu), ("logvar", logvar)):
            if spec.dtype != "float":
                raise ShapeError(f"'{port}' must be float, got {spec.dtype} {spec.label()}",
                                 "wire the output of a Linear (the encoder's head)", port)
        if mu.dims != logvar.dims:
            raise ShapeError(f"mu {mu.label()} and logvar {logvar.label()} must have the same "
                             "shape", "give the mu and logvar Linears the same out_features",
                             "logvar")
        return {"z": TensorSpec(mu.dims)}

    @classmethod
    def emit(cls, p: Params, ins: Mapping[str, Any]) -> Emission:
        return Emission("{self}({mu}, {logvar})", Call.of("Reparameterize"),
                        helpers=("Reparameterize",))

    @classmethod
    def examples(cls) -> list[Example]:
        return [Example({}, {"mu": TensorSpec(("N", 4)), "logvar": TensorSpec(("N", 4))}),
                Example({}, {"mu": TensorSpec((2, 3, 5)), "logvar": TensorSpec((2, 3, 5))})]
