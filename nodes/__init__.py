"""Layerloom's catalogue of node types (Qt-free). Look types up with :func:`nodes.registry.get`."""

from . import families  # noqa: F401  (each family module registers its types on import)
from .base import (
    Call,
    Emission,
    Example,
    GraphSpec,
    NodeType,
    Params,
    Port,
    ShapeError,
    Spec,
    TensorSpec,
)
from .registry import UnknownNodeType, all_types, by_category, get, has, register

__all__ = [
    "Call", "Emission", "Example", "GraphSpec", "NodeType", "Params", "Port", "ShapeError", "Spec",
    "TensorSpec", "UnknownNodeType", "all_types", "by_category", "get", "has", "register",
]
