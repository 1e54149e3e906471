"""The canvas view: zoom, pan, fit and the keyboard gestures over a CanvasScene."""

from __future__ import annotations

import math

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QPainter,
    QPen,
)
from PySide6.QtWidgets import (
    QGraphicsView,
)

from .. import theme
from .items import READABLE_SCALE
from .scene import CanvasScene


class CanvasView(QGraphicsView):
    """Zoom with the wheel, pan with the middle button, rubber-band select on empty canvas."""

    quick_add = Signal(QPointF)  # scene position where a quick-add search should open

    def __init__(self, scene: CanvasScene, parent=None) -> None:
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlags(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._pan: QPointF | None = None

    def canvas(self) -> CanvasScene:
        return self.scene()  # type: ignore[return-value]

    def drawBackground(self, p: QPainter, rect: QRectF) -> None:  # noqa: N802
        t = theme.current()
        p.fillRect(rect, QColor(t.canvas))
        if self.transform().m11() < 0.4:
            return
        step = 25.0
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(QPen(QColor(t.grid), 0))
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        lines = []
        x = left
        while x < rect.right():
            lines.append(QLineF(x, rect.top(), x, rect.bottom()))
            x += step
        y = top
        while y < rect.bottom():
            lines.append(QLineF(rect.left(), y, rect.right(), y))
            y += step
        p.drawLines(lines)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)

    def wheelEvent(self, e) -> None:  # noqa: N802
        factor = 1.0015 ** e.angleDelta().y()
        self.zoom(factor)

    def zoom(self, factor: float) -> None:
        current = self.transform().m11()
        factor = max(0.05 / current, min(3.0 / current, factor))
        self.scale(factor, factor)

    def fit(self, readable: bool = False) -> None:
        """Show the whole graph; with ``readable``, never zoom out past where node text can be
        read: a long graph then shows its start (inputs) and scrolls."""
        rect = self.scene().itemsBoundingRect().adjusted(-24, -24, 24, 24)
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        scale = self.transform().m11()
        if scale > 1.2 or (readable and scale < READABLE_SCALE):
            target = 1.2 if scale > 1.2 else READABLE_SCALE
            self.resetTransform()
            self.scale(target, target)
            if scale > 1.2:
                self.centerOn(rect.center())
                return
            vw = self.viewport().width() / target
            vh = self.viewport().height() / target
            # The input end: the left (and top, where the rows do not fit either) edge.
            x = rect.left() + vw / 2 if rect.width() > vw else rect.center().x()
            y = rect.top() + vh / 2 if rect.height() > vh else rect.center().y()
            self.centerOn(x, y)

    def center_on_node(self, node_id: str) -> None:
        item = self.canvas().nodes.get(node_id)
        if item is not None:
            self.canvas().select([node_id])
            if self.transform().m11() < 0.6:
                self.resetTransform()
            self.centerOn(item.sceneBoundingRect().center())

    def mousePressEvent(self, e) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.MiddleButton:
            self._pan = e.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            e.accept()
            return
        super().mousePressEvent(e)

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        if self._pan is not None:
            delta = e.position() - self._pan
            self._pan = e.position()
            self.horizontalScrollBar().setValue(int(self.horizontalScrollBar().value() - delta.x()))
            self.verticalScrollBar().setValue(int(self.verticalScrollBar().value() - delta.y()))
            return
        super().mouseMoveEvent(e)

    def mouseReleaseEvent(self, e) -> None:  # noqa: N802
        if self._pan is not None and e.button() == Qt.MouseButton.MiddleButton:
            self._pan = None
            self.unsetCursor()
            return
        super().mouseReleaseEvent(e)

    def mouseDoubleClickEvent(self, e) -> None:  # noqa: N802
        if self.itemAt(e.position().toPoint()) is None:
            self.quick_add.emit(self.mapToScene(e.position().toPoint()))
            return
        super().mouseDoubleClickEvent(e)

    def keyPressEvent(self, e) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Tab:
            pos = self.mapFromGlobal(self.cursor().pos())
            if not self.viewport().rect().contains(pos):
                pos = self.viewport().rect().center()
            self.quick_add.emit(self.mapToScene(pos))
            return
        super().keyPressEvent(e)

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802, A002 - keep Tab for quick-add
        return False
