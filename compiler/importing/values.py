"""The values that flow through the walk over a traced graph: a tensor on a node's port, and the
few non-tensor things (sizes, the causal mask, position ids, an RNN's final states) that only
some patterns consume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class Out:
    node: str
    port: str = "y"


@dataclass(frozen=True)
class Size:
    of: Out
    dim: int


@dataclass(frozen=True)
class Shape:
    of: Out


@dataclass(frozen=True)
class Causal:
    of: Out


@dataclass(frozen=True)
class Square:
    """``torch.full((T, T), -inf)`` or ``torch.ones(T, T, dtype=torch.bool)`` with T the steps
    of ``of``: what ``.triu(1)`` turns into the causal mask (torch's own
    ``nn.Transformer.generate_square_subsequent_mask`` is written so)."""

    of: Out


@dataclass(frozen=True)
class Arange:
    of: Out


@dataclass(frozen=True)
class PosEmb:
    module: nn.Module
    qualname: str


@dataclass(frozen=True)
class Result:
    """A multi-valued leaf result (an RNN's (output, h), attention's (y, weights))."""

    node: str
    kind: str


@dataclass(frozen=True)
class RNNState:
    """An RNN's ``h_n`` (``cell``: an LSTM's ``c_n``), [layers * directions, N, H].

    No node has that stacked tensor as an output; what a model reads of it (``h_n[-1]``,
    ``h_n.squeeze(0)``, the last layer's two directions side by side) is the RNN node's
    ``hidden`` port or a slice of it, so it stays a value until one of those reads it."""

    node: str
    layers: int
    directions: int
    hidden_size: int
    cell: bool = False


@dataclass(frozen=True)
class LSTMState:
    """An LSTM's ``(h_n, c_n)`` pair, before it is unpacked."""

    node: str
    layers: int
    directions: int
    hidden_size: int


@dataclass(frozen=True)
class LastLayer:
    """``h_n[i]`` for one direction of the last layer (0 forward, 1 backward) of a bidirectional
    RNN: a slice of the ``hidden`` port, made only where it is used on its own."""

    state: RNNState
    direction: int


@dataclass(frozen=True)
class SeqFirst:
    """A time-major tensor [T, N, ...] that is the batch-first ``of`` with dims 0 and 1 swapped
    (the output of an RNN built with ``batch_first=False``); indexing it indexes ``of`` with the
    two dims swapped, anything else gets a Transpose node."""

    of: Out


class _Device:
    pass


DEVICE = _Device()


@dataclass
class Recorded:
    """Shapes seen per module call, in call order, for two runs of different symbolic sizes."""

    calls: dict[int, list[tuple[list[Any], Any]]]
    sizes: tuple[dict[str, int], dict[str, int]]
