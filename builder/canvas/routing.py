"""Wire routing on the canvas: a plain curve between neighbours, a bypass lane around nodes.

The layered layout (``builder.layout``) reserves a free lane for every edge that jumps layers
(Sugiyama's dummy nodes). Here a wire whose direct curve would run behind other nodes (a ResNet
shortcut, or any wire after the user moved things) is drawn along the nearest free horizontal
lane instead, so an Add visibly has two inputs; a wire that runs backwards (a wrapped row's
return, or a node dragged left of its source) takes the free gap between the rows.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath, QPainterPathStroker

BEND = 28.0  # px: the horizontal length of half a bend
MARGIN = 20.0  # px: a lane keeps this far from any node
FAR = 500.0  # px: how far above and below a lane is looked for (lanes sit near the nodes)

Obstacles = Callable[[QRectF], list[QRectF]]


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    """The plain curve: leaves the output to the right, enters the input from the left."""
    path = QPainterPath(a)
    dx = max(40.0, abs(b.x() - a.x()) * 0.5)
    path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


def route(a: QPointF, b: QPointF, obstacles: Obstacles, own: list[QRectF],
          min_span: float) -> tuple[QPainterPath, bool]:
    """The path from output ``a`` to input ``b`` and whether it bypasses something.

    ``obstacles(rect)`` lists the other nodes' rectangles meeting ``rect``; ``own`` are the two
    end nodes' rectangles (a backward lane must avoid them too). Wires shorter than ``min_span``
    (neighbouring layers) never detour."""
    span = b.x() - a.x()
    top, bottom = min(a.y(), b.y()), max(a.y(), b.y())
    if span >= -BEND:
        direct = wire_path(a, b)
        if span < max(min_span, 4 * BEND):
            return direct, False
        hits = obstacles(QRectF(a.x() + 2, top - 60, span - 4, bottom - top + 120))
        if not hits:
            return direct, False
        stroke = QPainterPathStroker()
        stroke.setWidth(6)
        outline = stroke.createStroke(direct)
        if not any(outline.intersects(r) for r in hits):
            return direct, False
        column = obstacles(QRectF(a.x() + 2, top - FAR, span - 4, bottom - top + 2 * FAR))
        lane = free_lane([(r.top(), r.bottom()) for r in column], a.y())
        return lane_path(a, b, lane), True
    left, right = min(a.x(), b.x()) - 2 * BEND, max(a.x(), b.x()) + 2 * BEND
    column = obstacles(QRectF(left, top - FAR, right - left, bottom - top + 2 * FAR)) + own
    lane = free_lane([(r.top(), r.bottom()) for r in column], (a.y() + b.y()) / 2)
    return return_path(a, b, lane), True


def free_lane(intervals: list[tuple[float, float]], target: float,
              margin: float = MARGIN) -> float:
    """The y nearest ``target`` that keeps ``margin`` away from every (top, bottom) interval."""
    spans = sorted((lo - margin, hi + margin) for lo, hi in intervals)
    merged: list[list[float]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    for lo, hi in merged:
        if lo < target < hi:
            return hi if hi - target <= target - lo else lo
    return target


def lane_path(a: QPointF, b: QPointF, lane: float) -> QPainterPath:
    """Forward bypass: bend onto the lane just after the output, off it just before the input."""
    r = min(BEND, (b.x() - a.x()) / 4)
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x() + r, a.y()), QPointF(a.x() + r, lane), QPointF(a.x() + 2 * r, lane))
    path.lineTo(QPointF(b.x() - 2 * r, lane))
    path.cubicTo(QPointF(b.x() - r, lane), QPointF(b.x() - r, b.y()), b)
    return path


def return_path(a: QPointF, b: QPointF, lane: float) -> QPainterPath:
    """Backward wire (a wrapped row's return): U-turn onto the lane, back along it, U-turn in."""
    path = QPainterPath(a)
    path.cubicTo(QPointF(a.x() + 2 * BEND, a.y()), QPointF(a.x() + 2 * BEND, lane),
                 QPointF(a.x(), lane))
    path.lineTo(QPointF(b.x(), lane))
    path.cubicTo(QPointF(b.x() - 2 * BEND, lane), QPointF(b.x() - 2 * BEND, b.y()), b)
    return path
