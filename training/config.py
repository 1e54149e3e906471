"""Hyperparameters: one pydantic model, filled from recipe defaults, the project, then overrides.

The model checks values (a typo or a negative learning rate is a clear message, not a crash);
the engine and recipes receive ``Hyper.model_dump()``, a plain dict, so train.py needs no pydantic.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: Bound of every count (steps, intervals...): far beyond any run, small enough to do arithmetic on.
MAX_COUNT = 10**9


class Hyper(BaseModel):
    """Every float finite (``allow_inf_nan=False``) and every int bounded, so a project's
    settings cannot overflow the engine's arithmetic or torch's seed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0, le=10, description="Base learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["constant", "step", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0, le=MAX_COUNT)
    step_size: int | None = Field(None, ge=1, le=MAX_COUNT,
                                  description="Steps between decays ('step' schedule)")
    gamma: float = Field(0.1, gt=0, le=1)
    batch_size: int = Field(64, ge=1, le=65536)
    epochs: int | None = Field(None, ge=1, le=MAX_COUNT)
    steps: int | None = Field(None, ge=1, le=MAX_COUNT)
    weight_decay: float = Field(0.0, ge=0, le=1e3)
    grad_clip: float = Field(0.0, ge=0, description="Max gradient norm; 0 turns clipping off")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed (numpy-compatible)")
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto", description="Mixed precision: bf16 (CUDA or CPU) or fp16 (CUDA); auto: off, but "
        "bf16 in the optimised mode where the device runs it faster (numerics change)")
    compile: bool = Field(False, description="torch.compile the networks (part of optimize)")
    optimize: bool = Field(False, description="Optimised mode: torch.compile, channels-last "
                           "conv nets, fused optimisers, bf16 autocast where the device runs it "
                           "faster (CUDA; conv nets on a CPU with AMX or AVX512-BF16) unless amp "
                           "says otherwise; on CUDA also cudnn.benchmark and TF32 (numerics "
                           "change, like TF32's)")
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    log_every: int = Field(10, ge=1, le=MAX_COUNT, description="Steps between train records")
    log_min_s: float = Field(0.1, ge=0, le=3600, description="At most one train record this "
                             "often (seconds; every step's loss is still in it); 0: every "
                             "log_every steps")
    eval_every: int | None = Field(None, ge=1, le=MAX_COUNT,
                                   description="Default: about 10 times per run")
    max_val_samples: int | None = Field(None, ge=1, le=MAX_COUNT,
                                        description="Validate on at most this many")
    checkpoint_every: int | None = Field(None, ge=1, le=MAX_COUNT,
                                         description="Default: at each evaluation")
    # recipe-specific knobs
    beta: float = Field(1.0, ge=0, description="VAE: weight of the KL term")
    temperature: float = Field(0.5, gt=0, description="SimCLR: NT-Xent temperature")
    ema: float = Field(0.99, ge=0, le=1, description="BYOL: starting target EMA rate")
    predictor_lr_scale: float = Field(10.0, gt=0, le=100,
                                      description="BYOL: predictor learning rate / base rate")
    mask_prob: float = Field(0.15, gt=0, lt=1, description="Masked LM: share of tokens chosen")
    sample_length: int = Field(200, ge=1, le=10**6,
                               description="Language model: characters per sample")

    @model_validator(mode="after")
    def _budget(self) -> "Hyper":
        if self.steps is None and self.epochs is None:
            self.epochs = 10
        return self


class HyperError(ValueError):
    """A refused training setting; ``field`` names it (e.g. ``seed``, ``betas.0``)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def resolve(defaults: dict[str, Any], project_hyper: dict[str, Any],
            overrides: dict[str, Any] | None = None) -> Hyper:
    """Recipe defaults < project settings < overrides. Giving steps clears epochs and vice versa,
    at each level, so the most specific budget wins."""
    merged: dict[str, Any] = {}
    for layer in (defaults, project_hyper, overrides or {}):
        layer = {k: v for k, v in layer.items() if v is not None}
        if "steps" in layer:
            merged.pop("epochs", None)
        if "epochs" in layer:
            merged.pop("steps", None)
        merged.update(layer)
    try:
        return Hyper(**merged)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        raise HyperError(f"training setting '{field or 'hyper'}': {first.get('msg')}",
                         field) from None
