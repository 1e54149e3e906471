"""The one registry of node types. Ids are stable: a renamed type keeps its old id in legacy_ids."""

from __future__ import annotations

from .base import NodeType

_TYPES: dict[str, type[NodeType]] = {}
_LEGACY: dict[str, str] = {}


class UnknownNodeType(KeyError):
    def __init__(self, type_id: str) -> None:
        super().__init__(type_id)
        self.type_id = type_id

    def __str__(self) -> str:
        return f"unknown node type '{self.type_id}'"


def register(cls: type[NodeType]) -> type[NodeType]:
    """Class decorator. A duplicate id (or a legacy id that clashes) is a programming error."""
    type_id = cls.id
    if type_id in _TYPES or type_id in _LEGACY:
        raise ValueError(f"node type id '{type_id}' is registered twice")
    if "." not in type_id:
        raise ValueError(f"node type id '{type_id}' must be dotted (family.name)")
    for old in cls.legacy_ids:  # check everything before registering anything
        if old in _TYPES or old in _LEGACY or old == type_id:
            raise ValueError(f"legacy id '{old}' of '{type_id}' is already taken")
    _TYPES[type_id] = cls
    for old in cls.legacy_ids:
        _LEGACY[old] = type_id
    return cls


def get(type_id: str) -> type[NodeType]:
    if type_id in _TYPES:
        return _TYPES[type_id]
    if type_id in _LEGACY:
        return _TYPES[_LEGACY[type_id]]
    raise UnknownNodeType(type_id)


def canonical_id(type_id: str) -> str:
    return get(type_id).id


def has(type_id: str) -> bool:
    return type_id in _TYPES or type_id in _LEGACY


def all_types() -> list[type[NodeType]]:
    return list(_TYPES.values())


def by_category() -> dict[str, list[type[NodeType]]]:
    out: dict[str, list[type[NodeType]]] = {}
    for cls in all_types():
        out.setdefault(cls.category, []).append(cls)
    return out

