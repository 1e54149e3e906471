"""The registry of node types (one :class:`~nodes.catalogue.Registry`). Ids are stable: a renamed
type keeps its old id in ``legacy_ids``."""

from __future__ import annotations

from .base import NodeType
from .catalogue import Registry, UnknownEntry


class UnknownNodeType(UnknownEntry):
    def __init__(self, type_id: str, known: list[str] | None = None) -> None:
        super().__init__("node type", type_id)
        self.type_id = type_id

    def __str__(self) -> str:
        return f"unknown node type '{self.type_id}'"


NODE_TYPES: Registry[type[NodeType]] = Registry(
    "node type", unknown=lambda name, _known: UnknownNodeType(name))


def register(cls: type[NodeType]) -> type[NodeType]:
    """Class decorator. A duplicate id (or a legacy id that clashes) is a programming error."""
    if "." not in cls.id:
        raise ValueError(f"node type id '{cls.id}' must be dotted (family.name)")
    return NODE_TYPES.add(cls.id, cls, cls.legacy_ids)


def get(type_id: str) -> type[NodeType]:
    return NODE_TYPES.get(type_id)


def canonical_id(type_id: str) -> str:
    return NODE_TYPES.canonical(type_id)


def has(type_id: str) -> bool:
    return type_id in NODE_TYPES


def all_types() -> list[type[NodeType]]:
    return NODE_TYPES.entries()


def by_category() -> dict[str, list[type[NodeType]]]:
    out: dict[str, list[type[NodeType]]] = {}
    for cls in all_types():
        out.setdefault(cls.category, []).append(cls)
    return out
