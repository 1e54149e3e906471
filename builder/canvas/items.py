"""Canvas items: ports, nodes, wires and their shape labels. They draw what the scene tells
them; a gesture on one becomes a command through the scene, never an edit of the project."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsSceneMouseEvent,
    QStyleOptionGraphicsItem,
    QWidget,
)

from compiler.ports import is_ref, ports_of
from compiler.project import PARAM_REF_KEY
from nodes import registry
from nodes.base import NodeType
from nodes.io import Role, role_of

from .. import assets, theme
from ..search.badge import (
    badge_tooltip,
    changed_tooltip,
    paint_badge,
    paint_changed_outline,
    paint_changed_pill,
    search_labels,
    trial_changes,
)
from .routing import route

NODE_W = 184.0
HEADER_H = 24.0
LINE_H = 18.0
PORT_R = 5.0
MIME_NODE = "application/x-layerloom-node"
MIME_CLIP = "application/x-layerloom-nodes"
READABLE_SCALE = 0.8  # the zoom at which a node's params and a wire's shape read comfortably
LOD_TITLE = 0.55  # below this zoom a node shows only its name, drawn large enough to read
LOD_BARS = 0.08  # below this, coloured bars only
SCENE_MARGIN = 1500.0

_FONT = QFont()
_FONT.setPointSizeF(9.0)
_BOLD = QFont(_FONT)
_BOLD.setBold(True)
_NODE_FLAGS = (QGraphicsItem.GraphicsItemFlag.ItemIsMovable
               | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
_SMALL = QFont()
_SMALL.setPointSizeF(8.0)


class PortItem(QGraphicsItem):
    """A connection point on a node; dragging from it draws a wire."""

    def __init__(self, node: "NodeItem", name: str, is_input: bool, kind: str) -> None:
        super().__init__(node)
        self.node, self.name, self.is_input, self.kind = node, name, is_input, kind
        self.setAcceptHoverEvents(True)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        self.hover = False

    def boundingRect(self) -> QRectF:  # noqa: N802
        r = PORT_R + 4
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, p: QPainter, opt: QStyleOptionGraphicsItem, w: QWidget | None = None) -> None:
        pass  # drawn by the node (one cached pixmap per node instead of a paint call per port)

    def hoverEnterEvent(self, e) -> None:  # noqa: N802
        self.hover = True
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.node.update()

    def hoverLeaveEvent(self, e) -> None:  # noqa: N802
        self.hover = False
        self.unsetCursor()
        self.node.update()

    def mousePressEvent(self, e: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.LeftButton:
            self.scene().begin_wire(self)  # type: ignore[union-attr]
            e.accept()
        else:
            super().mousePressEvent(e)

    def mouseMoveEvent(self, e: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        self.scene().drag_wire(e.scenePos())  # type: ignore[union-attr]

    def mouseReleaseEvent(self, e: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        self.scene().end_wire(e.scenePos())  # type: ignore[union-attr]


class NodeItem(QGraphicsItem):
    def __init__(self, scene: Any, node: Any) -> None:
        super().__init__()
        self.canvas = scene
        self.node_id = node.id
        self.setFlags(_NODE_FLAGS)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.wires: list[WireItem] = []
        self.ports: dict[tuple[bool, str], PortItem] = {}
        self.severity: str | None = None
        self.problem = ""
        self.height = HEADER_H + LINE_H
        self.refresh(node)

    # -- content -------------------------------------------------------------------------------
    def refresh(self, node: Any = None) -> None:
        """Re-read name, params and ports from the document."""
        doc, net = self.canvas.doc, self.canvas.graph.net
        node = node if node is not None else net.node(self.node_id)
        self.node = node
        self.cls = registry.get(node.type)
        self.title = node.name
        self.type_name = self.cls.name if role_of(self.cls) != Role.BLOCK else \
            f"Block · {node.params.get('block', '?')}"
        try:
            from compiler.ports import resolve_params

            defaults = (doc.project.block(net.name).param_defaults()
                        if doc.project.has_block(net.name) else None)
            self.face = face_text(self.cls, resolve_params(doc.project, node, defaults),
                                  node.params if defaults is not None else {})
        except Exception:
            self.face = ""
        ins, outs = ports_of(doc.project, node)
        wanted = {(True, p.name): p for p in ins} | {(False, p.name): p for p in outs}
        for key in list(self.ports):
            if key not in wanted:
                port = self.ports.pop(key)
                port.setParentItem(None)
                if port.scene():
                    port.scene().removeItem(port)
        for key, p in wanted.items():
            if key not in self.ports:
                self.ports[key] = PortItem(self, p.name, key[0], p.kind)
        rows = max(len(ins), len(outs), 1)
        self.prepareGeometryChange()
        self.height = HEADER_H + LINE_H + rows * LINE_H + 6
        for i, p in enumerate(ins):
            self.ports[(True, p.name)].setPos(0, HEADER_H + LINE_H + (i + 0.5) * LINE_H + 3)
        for i, p in enumerate(outs):
            self.ports[(False, p.name)].setPos(NODE_W, HEADER_H + LINE_H + (i + 0.5) * LINE_H + 3)
        self.in_names = [p.name for p in ins]
        self.out_names = [p.name for p in outs]
        self.search_labels = search_labels(doc.project, net.name, node.id)  # issue 12 badge
        self.trial_changes = trial_changes(self.canvas, net.name, node.id)  # an opened trial
        self._tooltip()
        self.update()

    def _tooltip(self) -> None:
        lines = [f"<b>{self.title}</b> — {self.cls.name}"]
        if self.cls.description:
            lines.append(self.cls.description)
        if self.problem:
            color = theme.current().error if self.severity == "error" else theme.current().warning
            lines.append(f"<span style='color:{color}'>{self.problem}</span>")
        self.setToolTip("<br>".join(lines) + badge_tooltip(getattr(self, "search_labels", []))
                        + changed_tooltip(getattr(self, "trial_changes", [])))

    def set_problem(self, severity: str | None, message: str) -> None:
        if (severity, message) != (self.severity, self.problem):
            self.severity, self.problem = severity, message
            self._tooltip()
            self.update()

    def port_pos(self, name: str, is_input: bool) -> QPointF:
        port = self.ports.get((is_input, name))
        if port is None:
            return self.scenePos() + QPointF(0 if is_input else NODE_W, HEADER_H / 2)
        return port.scenePos()

    # -- painting ------------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(-4, -10, NODE_W + 8, self.height + 14)

    def paint(self, p: QPainter, opt: QStyleOptionGraphicsItem, w: QWidget | None = None) -> None:
        t = theme.current()
        rect = QRectF(0, 0, NODE_W, self.height)
        lod = opt.levelOfDetailFromTransform(p.worldTransform())
        border = QColor(t.accent) if self.isSelected() else QColor(t.node_border)
        if self.severity == "error":
            border = QColor(t.error) if not self.isSelected() else border
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(t.node))
        p.drawRoundedRect(rect, 6, 6)
        color = theme.category_color(self.cls.category)
        color.setAlpha(210)
        p.setBrush(color)
        p.drawRoundedRect(QRectF(0, 0, NODE_W, HEADER_H), 6, 6)
        p.drawRect(QRectF(0, HEADER_H / 2, NODE_W, HEADER_H / 2))
        p.setPen(QPen(border, 2.0 if self.isSelected() or self.severity else 1.0))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRoundedRect(rect, 6, 6)
        paint_changed_outline(p, self.trial_changes, rect)
        if lod < LOD_BARS:
            return
        if lod < LOD_TITLE:  # zoomed out: the name alone, large enough to read at this zoom
            font = QFont(_BOLD)
            font.setPixelSize(max(8, min(int(12 / lod), int(self.height * 0.55))))
            p.setFont(font)
            p.setPen(QColor(t.text))
            p.drawText(QRectF(6, HEADER_H * 0.4, NODE_W - 12, self.height - HEADER_H * 0.4),
                       Qt.AlignmentFlag.AlignCenter, _elide(self.title, font, NODE_W - 12))
            return
        icon = assets.category_icon(self.cls.category)
        if not icon.isNull():
            icon.paint(p, QRectF(5, 4, HEADER_H - 8, HEADER_H - 8).toRect())
        p.setPen(QColor("#ffffff"))
        p.setFont(_BOLD)
        p.drawText(QRectF(HEADER_H - 1, 0, NODE_W - HEADER_H - 26, HEADER_H),
                   Qt.AlignmentFlag.AlignVCenter, _elide(self.title, _BOLD, NODE_W - HEADER_H - 26))
        p.setFont(_SMALL)
        p.setPen(QColor(t.dim))
        face = self.face or self.type_name
        if self.face and self.type_name not in (self.title,):
            face = f"{self.type_name}: {self.face}" if role_of(self.cls) != Role.BLOCK else \
                f"{self.node.params.get('block', '')} {self.face}"
        p.drawText(QRectF(8, HEADER_H, NODE_W - 16, LINE_H), Qt.AlignmentFlag.AlignVCenter,
                   _elide(face, _SMALL, NODE_W - 16))
        p.setPen(QColor(t.label))
        for i, name in enumerate(self.in_names):
            y = HEADER_H + LINE_H + i * LINE_H + 3
            p.drawText(QRectF(10, y, NODE_W / 2 - 10, LINE_H), Qt.AlignmentFlag.AlignVCenter,
                       name)
        for i, name in enumerate(self.out_names):
            y = HEADER_H + LINE_H + i * LINE_H + 3
            p.drawText(QRectF(NODE_W / 2, y, NODE_W / 2 - 10, LINE_H),
                       Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, name)
        self._paint_ports(p, t)
        right = NODE_W - (24 if self.severity else 5)
        paint_badge(p, self.search_labels, right, HEADER_H)
        paint_changed_pill(p, self.trial_changes, right - (34 if self.search_labels else 0),
                           HEADER_H)
        if self.severity:
            c = QColor(t.error if self.severity == "error" else t.warning)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(c)
            center = QPointF(NODE_W - 12, HEADER_H / 2)
            p.drawEllipse(center, 8, 8)
            p.setPen(QColor("#ffffff"))
            p.setFont(_BOLD)
            p.drawText(QRectF(center.x() - 8, center.y() - 8, 16, 16),
                       Qt.AlignmentFlag.AlignCenter, "!")

    def _paint_ports(self, p: QPainter, t: theme.Theme) -> None:
        p.setPen(QPen(QColor(t.canvas), 1.5))
        for port in self.ports.values():
            color = t.accent if port.hover else ("#5bbf9a" if port.kind == "graph" else t.label)
            p.setBrush(QColor(color))
            p.drawEllipse(port.pos(), PORT_R, PORT_R)

    # -- interaction ---------------------------------------------------------------------------
    def update_wires(self) -> None:
        """Re-route this node's wires after it moved. Called by whoever moves it (the scene's
        drag handler, sync, undo): cheaper than an itemChange override on every item."""
        for wire in self.wires:
            wire.update_path()

    def mouseDoubleClickEvent(self, e: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        if role_of(self.cls) == Role.BLOCK:
            # Deferred: opening the block deletes this item, which must not happen while it is
            # still handling its own event (the scene would keep a dead mouse grabber).
            name, canvas = str(self.node.params.get("block", "")), self.canvas
            QTimer.singleShot(0, lambda: canvas.open_block.emit(name))
            e.accept()
            return
        super().mouseDoubleClickEvent(e)


class WireItem(QGraphicsPathItem):
    """A curve from an output port to an input port, labelled with the shape it carries."""

    def __init__(self, scene: Any, edge: Any, src: NodeItem, dst: NodeItem) -> None:
        super().__init__()
        self.canvas, self.edge, self.src, self.dst = scene, edge, src, dst
        self.label = ""
        self.bad = False
        self.bounds = QRectF()
        self.tag: WireLabel | None = None
        self.routed = False  # drawn along a bypass lane (see canvas.routing)
        self.setZValue(-1)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        src.wires.append(self)
        dst.wires.append(self)
        self.update_path()

    def detach(self) -> None:
        for n in (self.src, self.dst):
            if self in n.wires:
                n.wires.remove(self)
        if self.tag is not None and self.tag.scene() is not None:
            self.tag.scene().removeItem(self.tag)
        self.tag = None

    def update_path(self) -> None:
        a = self.src.port_pos(self.edge.src_port, False)
        b = self.dst.port_pos(self.edge.dst_port, True)
        path, self.routed = route(a, b, self._obstacles,
                                  [self.src.sceneBoundingRect(), self.dst.sceneBoundingRect()],
                                  NODE_W * 1.5)
        self.prepareGeometryChange()
        self.setPath(path)
        self._bounds()

    def _obstacles(self, rect: QRectF) -> list[QRectF]:
        """Rectangles of the nodes other than this wire's ends that meet ``rect``."""
        return self.canvas.nodes_in(rect, (self.src, self.dst))

    def long(self) -> bool:
        """Worth re-routing when other nodes move: it spans layers, or it runs backwards."""
        a = self.src.port_pos(self.edge.src_port, False)
        b = self.dst.port_pos(self.edge.dst_port, True)
        return self.routed or b.x() - a.x() > NODE_W * 1.5 or b.x() < a.x()

    def _bounds(self) -> None:
        path = self.path()
        r = path.boundingRect().adjusted(-4, -4, 4, 4)
        self.mid = path.pointAtPercent(0.5)
        if self.label:
            width = QFontMetricsF(_SMALL).horizontalAdvance(self.label) + 10
            self.label_box = QRectF(self.mid.x() - width / 2, self.mid.y() - 17, width, 15)
            if self.tag is None:
                self.tag = WireLabel(self)
                self.canvas.addItem(self.tag)
            self.tag.place(self.label_box)
        elif self.tag is not None:
            self.tag.place(QRectF())
        self.bounds = r

    def set_label(self, text: str, bad: bool = False) -> None:
        if (text, bad) != (self.label, self.bad):
            self.label, self.bad = text, bad
            self._bounds()
            self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self.bounds

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(8)
        return stroker.createStroke(self.path())

    def paint(self, p: QPainter, opt: QStyleOptionGraphicsItem, w: QWidget | None = None) -> None:
        t = theme.current()
        color = QColor(t.error if self.bad else (t.accent if self.isSelected() else t.wire))
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(color, 2.0 if self.isSelected() else 1.6))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(self.path())


class WireLabel(QGraphicsItem):
    """A wire's shape label, kept above the nodes so a short wire's label is never hidden."""

    def __init__(self, wire: WireItem) -> None:
        super().__init__()
        self.wire = wire
        self.box = QRectF()
        self.setZValue(2)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def place(self, box: QRectF) -> None:
        self.prepareGeometryChange()
        self.box = box
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self.box

    def paint(self, p: QPainter, opt: QStyleOptionGraphicsItem, w: QWidget | None = None) -> None:
        wire = self.wire
        if not wire.label or opt.levelOfDetailFromTransform(p.worldTransform()) < 0.5:
            return
        t = theme.current()
        p.setPen(Qt.PenStyle.NoPen)
        bg = QColor(t.canvas)
        bg.setAlpha(225)
        p.setBrush(bg)
        p.drawRoundedRect(self.box, 3, 3)
        p.setFont(_SMALL)
        p.setPen(QColor(t.error if wire.bad else t.label))
        p.drawText(self.box, Qt.AlignmentFlag.AlignCenter, wire.label)


def face_text(cls: type, params: Any, raw: dict) -> str:
    """The node's one-line face. Inside a block a param bound to a block param reads
    ``out_channels=$planes``, never the inner type's default (the wire may carry another)."""
    refs = {k: v[PARAM_REF_KEY] for k, v in raw.items() if is_ref(v)}
    args = raw.get("args") if isinstance(raw.get("args"), dict) else {}
    arg_refs = {k: v[PARAM_REF_KEY] for k, v in args.items() if is_ref(v)}
    if not refs and not arg_refs:
        return cls.summary(params)
    if role_of(cls) == Role.BLOCK:
        rep = f"${refs['repeat']}" if "repeat" in refs else str(params.repeat)
        extra = ", ".join(f"{k}=${arg_refs[k]}" if k in arg_refs else f"{k}={show_value(v)}"
                          for k, v in params.args.items())
        return f"×{rep}" + (f"  {extra}" if extra else "")
    if getattr(cls.summary, "__func__", None) is NodeType.summary.__func__:
        parts = []
        for key in cls.key_params:
            value = f"${refs[key]}" if key in refs else getattr(params, key, None)
            if isinstance(value, (list, tuple)):
                value = "×".join(show_value(v) for v in value)
            parts.append(f"{key}={show_value(value)}")
        return ", ".join(parts)
    bound = ", ".join(f"{k}=${r}" for k, r in refs.items())
    return f"{cls.summary(params)}  ({bound})"


def show_value(value: Any) -> str:
    """A value as the user typed it: floats in their shortest form (0.5, 1e-05), not 0.500000."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _elide(text: str, font: QFont, width: float) -> str:
    return QFontMetricsF(font).elidedText(text, Qt.TextElideMode.ElideRight, width)
