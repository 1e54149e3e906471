"""The canvas badge of a node that carries a search choice: a small accent pill in its header
reading "⟳ N" (N searched params), with the labels in the node's tooltip; and the mark of a node
an opened trial changed: an outline and a "Δ N" pill of the same shape in the trial colour, with
"param: old → new" in its tooltip. No Qt widgets, only painter helpers, so the canvas item calls
each in one line."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from compiler.project import Project

from .. import theme

#: The colour of what a trial changed, per theme: apart from the selection's accent, the error
#: red and the warning amber, so a changed node that is selected or has a problem shows both.
CHANGED = {"dark": "#3cc8a0", "light": "#0d8a68"}
PILL_W, PILL_H = 30.0, 16.0


def search_labels(project: Project, scope: str, node_id: str) -> list[str]:
    """``label (param)`` for each choice on this node."""
    return [f"{c.label} ({c.param})" for c in project.search.choices
            if c.scope == scope and c.node == node_id]


def paint_badge(p: QPainter, labels: list[str], right: float, header_h: float) -> None:
    """Draw the pill ending at x = ``right`` (left of the problem dot), centred in the header."""
    if not labels:
        return
    _pill(p, QColor(theme.current().accent), f"⟳{len(labels)}", right, header_h)


def _pill(p: QPainter, color: QColor, text: str, right: float, header_h: float) -> None:
    rect = QRectF(right - PILL_W, (header_h - PILL_H) / 2, PILL_W, PILL_H)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(color)
    p.drawRoundedRect(rect, PILL_H / 2, PILL_H / 2)
    p.setPen(QColor("#ffffff"))
    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)


def badge_tooltip(labels: list[str]) -> str:
    return ("<br><b>searched:</b> " + ", ".join(labels)) if labels else ""


# -- what an opened trial changed ------------------------------------------------------------
def changed_color() -> QColor:
    return QColor(CHANGED.get(theme.current().name, CHANGED["dark"]))


def trial_changes(scene: Any, scope: str, node_id: str) -> list[str]:
    """``param: old → new`` for each param the opened trial changed on this node: read from the
    scene's ``trial_changes`` ({(scope, node id): lines}, set by ``trial_view`` on a trial's
    window and kept across graph switches), empty in any other window."""
    marks = getattr(scene, "trial_changes", None) or {}
    return list(marks.get((scope, node_id), ()))


def paint_changed_outline(p: QPainter, changes: list[str], rect: QRectF) -> None:
    """An outline just outside the node (inside its bounding rect), at every zoom level, so a
    trial's changes show on a zoomed-out graph too."""
    if not changes:
        return
    p.setPen(QPen(changed_color(), 2.0))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(rect.adjusted(-2.5, -2.5, 2.5, 2.5), 8, 8)


def paint_changed_pill(p: QPainter, changes: list[str], right: float, header_h: float) -> None:
    """The "Δ N" pill (N changed params), where the search badge would be."""
    if changes:
        _pill(p, changed_color(), f"Δ{len(changes)}", right, header_h)


def changed_tooltip(changes: list[str]) -> str:
    return ("<br><b>changed in this trial:</b> " + ", ".join(changes)) if changes else ""
