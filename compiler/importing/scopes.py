"""The intermediate form of an import: one converted scope (a module's forward) per submodule call.

A :class:`Scope` holds nodes in the catalogue's vocabulary (type ids, params, wires by node name)
and, beside them, where each came from (the original leaf module, for its weights). Block nodes
point at the child scope they were converted from; :mod:`.assemble` later groups equal child
scopes of one class into one project block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn


class Unsupported(Exception):
    """This scope cannot be written with the catalogue; says what and where."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message + (f" ({where})" if where else ""))
        self.message = message
        self.where = where


@dataclass
class FNode:
    name: str
    type: str
    params: dict[str, Any]
    #: (destination port, source node name, source port), in wiring order
    inputs: list[tuple[str, str, str]] = field(default_factory=list)
    module: nn.Module | None = None
    #: generated state_dict key -> original key, when the node's module names them differently
    rename: dict[str, str] = field(default_factory=dict)
    #: block nodes: the converted submodule of each repeat, in order
    children: list["Scope"] = field(default_factory=list)
    qualname: str = ""
    #: opaque nodes: why the module was kept as is
    reason: str = ""


@dataclass
class Scope:
    module: nn.Module
    qualname: str
    nodes: list[FNode] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    ctor: dict[str, Any] | None = None
    block: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    #: (node, param[, arg]) -> the block param its value is lifted into (set by assemble)
    lifted: dict[tuple[str, ...], str] = field(default_factory=dict)
    #: made by assemble from the nodes of one ``nn.Sequential`` attribute (fx traces through
    #: containers), so the generated model keeps that attribute and its indices
    sequential: bool = False

    def node(self, name: str) -> FNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def height(self) -> int:
        kids = [c for n in self.nodes for c in n.children]
        return 1 + max((c.height() for c in kids), default=0)

    def unique(self, base: str) -> str:
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in base).strip("_") or "node"
        if base[0].isdigit():
            base = "n" + base
        taken = {n.name for n in self.nodes}
        name, i = base, 1
        while name in taken:
            name = f"{base}_{i}"
            i += 1
        return name

    def add(self, type_id: str, base: str, params: dict[str, Any] | None = None,
            **kw: Any) -> FNode:
        node = FNode(self.unique(base), type_id, dict(params or {}), **kw)
        self.nodes.append(node)
        return node
