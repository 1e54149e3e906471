"""Recurrent layers: RNN, LSTM, GRU, always batch-first.

Each has two outputs. ``output`` is every step's top-layer state; ``hidden`` is the last layer's
final state with both directions side by side, the vector a sequence classifier feeds to a Linear.
torch returns that state buried in ``h_n`` ([layers * directions, N, H]), so the generated code
passes the module's result through the small helper ``output_and_hidden`` to keep forward one
readable line per node.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping

from pydantic import Field

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
    concrete_dim,
    register_helper,
    tensor_in,
)
from .registry import register

register_helper("output_and_hidden", helpers.output_and_hidden)


class RecurrentParams(Params):
    hidden_size: int = Field(128, ge=1, le=100_000, description="Size of the hidden state")
    num_layers: int = Field(1, ge=1, le=64, description="Stacked recurrent layers")
    bidirectional: bool = Field(False, description="Also read the sequence backwards; output and "
                                "hidden are then twice hidden_size wide")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout between stacked layers "
                           "(needs num_layers ≥ 2)")
    bias: bool = Field(True, description="Learn bias weights")


class RNNParams(RecurrentParams):
    nonlinearity: Literal["tanh", "relu"] = Field("tanh", description="Activation of the hidden "
                                                  "state update")


class _Recurrent(NodeType):
    category = "Recurrent"
    torch_name: ClassVar[str] = ""
    Params = RecurrentParams
    inputs = (Port("x", doc="A batch of sequences [N, T, features]"),)
    outputs = (Port("output", doc="Top-layer state at every step [N, T, H·directions]"),
               Port("hidden", doc="Last layer's final state [N, H·directions]"))
    key_params = ("hidden_size", "num_layers", "bidirectional")

    @classmethod
    def infer(cls, p: RecurrentParams, ins: Mapping[str, Any]) -> dict:
        x = tensor_in(ins)
        if x.dtype != "float":
            raise ShapeError(f"{cls.name} needs float vectors per step, got {x.dtype} "
                             f"{x.label()}",
                             "put an Embedding before it to turn token ids into vectors", "x")
        if x.rank != 3:
            raise ShapeError(f"{cls.name} needs a batch of sequences [N, T, features]; got "
                             f"{x.label()} (rank {x.rank})",
                             "Reshape or Unsqueeze to [N, T, features] (batch first)", "x")
        concrete_dim(x, -1, "input_size")
        if p.dropout > 0 and p.num_layers == 1:
            raise ShapeError(f"dropout={p.dropout} does nothing with one layer: {cls.name} applies "
                             "it between stacked layers",
                             "set num_layers to 2 or more, or put a Dropout node after it", None)
        width = p.hidden_size * (2 if p.bidirectional else 1)
        n, t = x.dims[0], x.dims[1]
        return {"output": TensorSpec((n, t, width)), "hidden": TensorSpec((n, width))}

    @classmethod
    def ctor_kwargs(cls, p: RecurrentParams) -> dict[str, Any]:
        """Only the settings that differ from torch's defaults, so the call reads like hand code."""
        kw: dict[str, Any] = {}
        if p.num_layers != 1:
            kw["num_layers"] = p.num_layers
        if isinstance(p, RNNParams) and p.nonlinearity != "tanh":
            kw["nonlinearity"] = p.nonlinearity
        if not p.bias:
            kw["bias"] = False
        kw["batch_first"] = True
        if p.dropout > 0:
            kw["dropout"] = p.dropout
        if p.bidirectional:
            kw["bidirectional"] = True
        return kw

    @classmethod
    def emit(cls, p: RecurrentParams, ins: Mapping[str, Any]) -> Emission:
        # Keywords, not positions: torch's RNN constructors take *args, so a lifted block argument
        # could not otherwise be named input_size.
        init = Call.of(f"nn.{cls.torch_name}", input_size=ins["x"].dims[-1],
                       hidden_size=p.hidden_size, **cls.ctor_kwargs(p))
        directions = 2 if p.bidirectional else 1
        return Emission(f"output_and_hidden({{self}}({{x}}), directions={directions})", init,
                        unpack="{output}, {hidden}", helpers=("output_and_hidden",))

    @classmethod
    def examples(cls) -> list[Example]:
        return [
            Example({"hidden_size": 8}, {"x": TensorSpec(("N", "T", 5))}),
            Example({"hidden_size": 6, "num_layers": 2, "bidirectional": True, "dropout": 0.1},
                    {"x": TensorSpec(("N", "T", 4))}),
            Example({"hidden_size": 3, "bias": False, "num_layers": 3},
                    {"x": TensorSpec((2, 7, 4))}),
        ]


@register
class RNN(_Recurrent):
    id = "recurrent.rnn"
    name = "RNN"
    torch_name = "RNN"
    Params = RNNParams
    description = ("Elman recurrent layer: h_t = act(W x_t + U h_(t-1) + b). Simple and fast, "
                   "but it forgets over long sequences; prefer LSTM or GRU there.")

    @classmethod
    def examples(cls) -> list[Example]:
        return super().examples() + [Example({"hidden_size": 4, "nonlinearity": "relu"},
                                             {"x": TensorSpec(("N", "T", 3))})]


@register
class LSTM(_Recurrent):
    id = "recurrent.lstm"
    name = "LSTM"
    torch_name = "LSTM"
    description = ("Long short-term memory: gated cell state that keeps information over long "
                   "sequences. 'hidden' is the last layer's final h (both directions joined).")


@register
class GRU(_Recurrent):
    id = "recurrent.gru"
    name = "GRU"
    torch_name = "GRU"
    description = ("Gated recurrent unit: LSTM-like memory with fewer weights (no separate cell "
                   "state). 'hidden' is the last layer's final state (both directions joined).")
