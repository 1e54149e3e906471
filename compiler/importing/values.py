"""The values that flow through the walk over a traced graph: a tensor on a node's port, and the
few non-tensor things (sizes, the causal mask, position ids) that only some patterns consume."""

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


class _Device:
    pass


DEVICE = _Device()


@dataclass
class Recorded:
    """Shapes seen per module call, in call order, for two runs of different symbolic sizes."""

    calls: dict[int, list[tuple[list[Any], Any]]]
    sizes: tuple[dict[str, int], dict[str, int]]
