"""The canvas badge of a node that carries a search choice: a small accent pill in its header
reading "⟳ N" (N searched params), with the labels in the node's tooltip. No Qt widgets, only a
painter helper, so the canvas item calls it in one line."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter

from compiler.project import Project

from .. import theme


def search_labels(project: Project, scope: str, node_id: str) -> list[str]:
    """``label (param)`` for each choice on this node."""
    return [f"{c.label} ({c.param})" for c in project.search.choices
            if c.scope == scope and c.node == node_id]


def paint_badge(p: QPainter, labels: list[str], right: float, header_h: float) -> None:
    """Draw the pill ending at x = ``right`` (left of the problem dot), centred in the header."""
    if not labels:
        return
    t = theme.current()
    w, h = 30.0, 16.0
    rect = QRectF(right - w, (header_h - h) / 2, w, h)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(t.accent))
    p.drawRoundedRect(rect, h / 2, h / 2)
    p.setPen(QColor("#ffffff"))
    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"⟳{len(labels)}")


def badge_tooltip(labels: list[str]) -> str:
    return ("<br><b>searched:</b> " + ", ".join(labels)) if labels else ""
