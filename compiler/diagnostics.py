"""Diagnostics are values: what is wrong, where, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    node_id: str | None
    port: str | None
    severity: Severity
    message: str
    hint: str = ""
    network: str = ""
    node_name: str = ""
    #: For problems inside a block instance: the chain of block node names leading to it.
    path: tuple[str, ...] = field(default=())

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def where(self) -> str:
        parts = [self.network] if self.network else []
        parts += list(self.path)
        if self.node_name:
            parts.append(self.node_name + (f".{self.port}" if self.port else ""))
        return "/".join(parts)

    def __str__(self) -> str:
        text = f"{self.severity}: {self.where()}: {self.message}"
        return text + (f" — {self.hint}" if self.hint else "")

    def to_json(self) -> dict:
        return {"severity": self.severity, "network": self.network, "node_id": self.node_id,
                "node": self.node_name, "port": self.port, "message": self.message,
                "hint": self.hint, "path": list(self.path)}
