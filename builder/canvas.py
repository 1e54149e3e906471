"""The node canvas: a QGraphicsScene mirroring one network (or block) of the document.

The scene never edits the project: gestures become commands (``builder.commands``) and the scene
rebuilds what changed when ``Document.changed`` fires. Node positions live in ``project.ui``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from PySide6.QtCore import QLineF, QMimeData, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
)
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from compiler.graph import GraphEditError
from compiler.ports import ports_of
from compiler.shapes import Analysis, NetworkResult
from nodes import registry
from nodes.io import role_of

from . import theme
from .commands import (
    AddNodeCommand,
    ConnectCommand,
    DisconnectCommand,
    MoveCommand,
    PasteCommand,
    RemoveNodesCommand,
    push,
)
from .document import Document

NODE_W = 184.0
HEADER_H = 24.0
LINE_H = 18.0
PORT_R = 5.0
MIME_NODE = "application/x-layerloom-node"
MIME_CLIP = "application/x-layerloom-nodes"
READABLE_SCALE = 0.6
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
    def __init__(self, scene: "CanvasScene", node: Any) -> None:
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
        self.type_name = self.cls.name if role_of(self.cls) != "block" else \
            f"Block · {node.params.get('block', '?')}"
        try:
            from compiler.ports import resolve_params

            defaults = (doc.project.block(net.name).param_defaults()
                        if doc.project.has_block(net.name) else None)
            self.face = self.cls.summary(resolve_params(doc.project, node, defaults))
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
        self._tooltip()
        self.update()

    def _tooltip(self) -> None:
        lines = [f"<b>{self.title}</b> — {self.cls.name}"]
        if self.cls.description:
            lines.append(self.cls.description)
        if self.problem:
            color = theme.current().error if self.severity == "error" else theme.current().warning
            lines.append(f"<span style='color:{color}'>{self.problem}</span>")
        self.setToolTip("<br>".join(lines))

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
        if lod < 0.3:
            return
        p.setPen(QColor("#ffffff"))
        p.setFont(_BOLD)
        p.drawText(QRectF(8, 0, NODE_W - 34, HEADER_H), Qt.AlignmentFlag.AlignVCenter,
                   _elide(self.title, _BOLD, NODE_W - 34))
        p.setFont(_SMALL)
        p.setPen(QColor(t.dim))
        face = self.face or self.type_name
        if self.face and self.type_name not in (self.title,):
            face = f"{self.type_name}: {self.face}" if role_of(self.cls) != "block" else \
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
        if role_of(self.cls) == "block":
            self.canvas.open_block.emit(str(self.node.params.get("block", "")))
            e.accept()
            return
        super().mouseDoubleClickEvent(e)


class WireItem(QGraphicsPathItem):
    """A curve from an output port to an input port, labelled with the shape it carries."""

    def __init__(self, scene: "CanvasScene", edge: Any, src: NodeItem, dst: NodeItem) -> None:
        super().__init__()
        self.canvas, self.edge, self.src, self.dst = scene, edge, src, dst
        self.label = ""
        self.bad = False
        self.bounds = QRectF()
        self.tag: WireLabel | None = None
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
        path = wire_path(a, b)
        self.prepareGeometryChange()
        self.setPath(path)
        self._bounds()

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


def wire_path(a: QPointF, b: QPointF) -> QPainterPath:
    path = QPainterPath(a)
    dx = max(40.0, abs(b.x() - a.x()) * 0.5)
    path.cubicTo(QPointF(a.x() + dx, a.y()), QPointF(b.x() - dx, b.y()), b)
    return path


def _elide(text: str, font: QFont, width: float) -> str:
    return QFontMetricsF(font).elidedText(text, Qt.TextElideMode.ElideRight, width)


class CanvasScene(QGraphicsScene):
    """One network or block of the document as items. ``network`` names what is shown."""

    status = Signal(str)  # a message for the status bar (refusals say why)
    open_block = Signal(str)
    selection_ids = Signal(list)

    def __init__(self, doc: Document, network: str, parent=None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.network = network
        self.nodes: dict[str, NodeItem] = {}
        self.wires: dict[tuple, WireItem] = {}
        self._temp: QGraphicsPathItem | None = None
        self._from: PortItem | None = None
        self._press_pos: dict[str, QPointF] = {}
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.setBackgroundBrush(QColor(theme.current().canvas))
        doc.changed.connect(self._on_changed)
        doc.analyzed.connect(self.apply_analysis)
        self.selectionChanged.connect(self._emit_selection)
        self.sync()

    def _emit_selection(self) -> None:
        self.selection_ids.emit(self.selected_ids())

    @property
    def graph(self):
        return self.doc.graph(self.network)

    # -- mirroring the document ----------------------------------------------------------------
    def set_network(self, network: str) -> None:
        self.network = network
        self.clear_items()
        self.sync()
        if self.doc.analysis is not None:
            self.apply_analysis(self.doc.analysis)

    def clear_items(self) -> None:
        for w in self.wires.values():
            w.detach()
            self.removeItem(w)
        for n in self.nodes.values():
            self.removeItem(n)
        self.nodes.clear()
        self.wires.clear()

    def _on_changed(self, event: str, info: dict) -> None:
        if event == "reset":
            names = [n.name for n in self.doc.project.networks]
            self.set_network(names[0] if names else self.network)
            return
        if event == "training" or (info.get("network") not in (None, self.network)
                                   and event != "structure"):
            return
        if event == "positions":
            pos = self.doc.positions(self.network)
            for nid in info.get("nodes", []):
                item = self.nodes.get(nid)
                if item and nid in pos:
                    item.setPos(*pos[nid])
                    item.update_wires()
            self.grow()
            return
        try:
            _ = self.graph
        except KeyError:  # the shown block vanished (undo of make-block)
            self.set_network(self.doc.project.networks[0].name)
            return
        self.sync(changed=info.get("node"))

    def sync(self, changed: str | None = None) -> None:
        """Bring items in line with the document: add, remove and refresh what differs."""
        try:
            net = self.graph.net
        except KeyError:
            return
        pos = self.doc.positions(self.network)
        want = {n.id for n in net.nodes}
        for nid in list(self.nodes):
            if nid not in want:
                item = self.nodes.pop(nid)
                for w in list(item.wires):
                    self._drop_wire(w)
                self.removeItem(item)
        missing = [n.id for n in net.nodes if n.id not in self.nodes and n.id not in pos]
        if missing:
            from .layout import layered_positions

            auto = layered_positions(net, str(self.doc.project.ui.get("layout", "LR")))
            for nid in missing:
                pos[nid] = auto.get(nid, [0.0, 0.0])
        for n in net.nodes:
            item = self.nodes.get(n.id)
            p = pos.get(n.id, [0.0, 0.0])
            if item is None:
                item = NodeItem(self, n)
                item.setPos(p[0], p[1])
                self.nodes[n.id] = item
                self.addItem(item)
                continue
            if changed is None or changed == n.id:
                item.refresh(n)
            if item.pos() != QPointF(p[0], p[1]):
                item.setPos(p[0], p[1])
                item.update_wires()
        keys = {}
        for e in net.edges:
            keys[(e.src, e.src_port, e.dst, e.dst_port)] = e
        for k in list(self.wires):
            if k not in keys:
                self._drop_wire(self.wires[k])
        for k, e in keys.items():
            w = self.wires.get(k)
            if w is None and e.src in self.nodes and e.dst in self.nodes:
                w = WireItem(self, e, self.nodes[e.src], self.nodes[e.dst])
                self.wires[k] = w
                self.addItem(w)
            elif w is not None:
                w.edge = e
                w.update_path()
        self.grow()

    def grow(self) -> None:
        """Keep room around the graph so views can scroll past its edges and centre any node."""
        self.setSceneRect(self.itemsBoundingRect().adjusted(-SCENE_MARGIN, -SCENE_MARGIN,
                                                            SCENE_MARGIN, SCENE_MARGIN))

    def _drop_wire(self, w: WireItem) -> None:
        w.detach()
        key = (w.edge.src, w.edge.src_port, w.edge.dst, w.edge.dst_port)
        self.wires.pop(key, None)
        if w.scene() is self:
            self.removeItem(w)

    def network_result(self, analysis: Analysis | None = None) -> NetworkResult | None:
        """The shapes of what is shown; for a block, its first instance where it is used."""
        analysis = analysis or self.doc.analysis
        if analysis is None:
            return None
        if self.network in analysis.networks:
            return analysis.networks[self.network]
        return block_instance(analysis, self.network)

    def apply_analysis(self, analysis: Analysis) -> None:
        res = self.network_result(analysis)
        problems: dict[str, tuple[str, str]] = {}
        for d in analysis.diagnostics:
            if d.node_id and d.node_id in self.nodes and (d.network in ("", self.network)):
                sev, msg = problems.get(d.node_id, (d.severity, ""))
                text = d.message + (f" — {d.hint}" if d.hint else "")
                if d.severity == "error" or sev != "error":
                    sev = d.severity if sev != "error" else "error"
                problems[d.node_id] = (sev, (msg + "\n" if msg else "") + text)
        if res is not None and self.network not in analysis.networks:
            for d in res.diagnostics:
                if d.node_id in self.nodes:
                    problems[d.node_id] = (d.severity, d.message)
        for nid, item in self.nodes.items():
            sev, msg = problems.get(nid, (None, ""))
            item.set_problem(sev, msg)
        for (src, sport, dst, _dport), w in self.wires.items():
            spec = res.spec(src, sport) if res else None
            bad = problems.get(dst, ("", ""))[0] == "error"
            w.set_label(spec.label() if spec is not None else "", bad=bad and spec is not None)

    # -- edits (each becomes a command) --------------------------------------------------------
    def _try(self, command) -> bool:
        try:
            push(self.doc, command)
            return True
        except GraphEditError as err:
            self.status.emit(f"Refused: {err}")
            return False

    def add_node(self, type_id: str, pos: QPointF, params: dict | None = None) -> str | None:
        cmd = AddNodeCommand(self.doc, self.network, type_id, (pos.x(), pos.y()), params=params)
        if self._try(cmd):
            self.clearSelection()
            item = self.nodes.get(cmd.node_id)
            if item:
                item.setSelected(True)
            return cmd.node_id
        return None

    def connect_ports(self, src: str, src_port: str, dst: str, dst_port: str) -> bool:
        """The wire a drag from ``src.src_port`` to ``dst.dst_port`` makes; refusals say why."""
        ok = self._try(ConnectCommand(self.doc, self.network, src, src_port, dst, dst_port))
        if ok:
            analysis = self.doc.analyze_now()
            res = self.network_result(analysis)
            dst_name = self.graph.node(dst).name
            errs = [d for d in (res.diagnostics if res else []) if d.node_id == dst and d.is_error]
            if errs:
                d = errs[0]
                self.status.emit(f"Wired, but {dst_name}: {d.message}"
                                 + (f" — {d.hint}" if d.hint else ""))
            else:
                spec = res.spec(src, src_port) if res else None
                self.status.emit(f"Connected {self.graph.node(src).name} → {dst_name}"
                                 + (f"  {spec.label()}" if spec is not None else ""))
        return ok

    def delete_selected(self) -> None:
        ids = self.selected_ids()
        if ids:
            self._try(RemoveNodesCommand(self.doc, self.network, ids))
            return
        wires = [i for i in self.selectedItems() if isinstance(i, WireItem)]
        if len(wires) > 1:
            self.doc.undo_stack.beginMacro("Delete wires")
        for w in wires:
            self._try(DisconnectCommand(self.doc, self.network, w.edge))
        if len(wires) > 1:
            self.doc.undo_stack.endMacro()

    def selected_ids(self) -> list[str]:
        return [i.node_id for i in self.selectedItems() if isinstance(i, NodeItem)]

    def select(self, node_ids: list[str]) -> None:
        self.clearSelection()
        for nid in node_ids:
            if nid in self.nodes:
                self.nodes[nid].setSelected(True)

    def copy_selection(self) -> QMimeData | None:
        ids = set(self.selected_ids())
        if not ids:
            return None
        net = self.graph.net
        pos = self.doc.positions(self.network)
        data = {"nodes": [n.model_dump() for n in net.nodes if n.id in ids],
                "edges": [e.model_dump() for e in net.edges if e.src in ids and e.dst in ids],
                "positions": {k: pos.get(k, [0, 0]) for k in ids}}
        mime = QMimeData()
        mime.setData(MIME_CLIP, json.dumps(data).encode())
        mime.setText(json.dumps(data))
        return mime

    def paste(self, mime: QMimeData | None, offset: tuple[float, float] = (40.0, 40.0)) -> bool:
        if mime is None or not mime.hasFormat(MIME_CLIP):
            self.status.emit("Nothing to paste")
            return False
        data = json.loads(bytes(mime.data(MIME_CLIP)).decode())
        cmd = PasteCommand(self.doc, self.network, data["nodes"], data["edges"],
                           data["positions"], offset)
        if self._try(cmd):
            self.select(cmd.result or [])
            return True
        return False

    def duplicate(self) -> bool:
        return self.paste(self.copy_selection())

    def align(self, how: str) -> None:
        """'left', 'top' or 'hcenter'/'vcenter', 'hspread', 'vspread' over the selection."""
        items = [self.nodes[i] for i in self.selected_ids()]
        if len(items) < 2:
            self.status.emit("Select two or more nodes to align")
            return
        xs = [i.pos().x() for i in items]
        ys = [i.pos().y() for i in items]
        new = {}
        for idx, it in enumerate(sorted(items, key=lambda i: (i.pos().y() if how == "vspread"
                                                              else i.pos().x()))):
            x, y = it.pos().x(), it.pos().y()
            if how == "left":
                x = min(xs)
            elif how == "top":
                y = min(ys)
            elif how == "vcenter":
                y = sum(ys) / len(ys)
            elif how == "hcenter":
                x = sum(xs) / len(xs)
            elif how == "hspread":
                x = min(xs) + idx * (max(xs) - min(xs)) / (len(items) - 1)
            elif how == "vspread":
                y = min(ys) + idx * (max(ys) - min(ys)) / (len(items) - 1)
            new[it.node_id] = [x, y]
        push(self.doc, MoveCommand(self.doc, self.network, new, text=f"Align {how}"))

    # -- wire dragging ------------------------------------------------------------------------
    def begin_wire(self, port: PortItem) -> None:
        self._from = port
        self._temp = QGraphicsPathItem()
        self._temp.setPen(QPen(QColor(theme.current().accent), 1.8, Qt.PenStyle.DashLine))
        self._temp.setZValue(10)
        self.addItem(self._temp)

    def drag_wire(self, pos: QPointF) -> None:
        if self._temp is None or self._from is None:
            return
        a = self._from.scenePos()
        self._temp.setPath(wire_path(pos, a) if self._from.is_input else wire_path(a, pos))

    def end_wire(self, pos: QPointF) -> None:
        start, temp = self._from, self._temp
        self._from = self._temp = None
        if temp is not None:
            self.removeItem(temp)
        if start is None:
            return
        target = next((i for i in self.items(pos) if isinstance(i, PortItem) and i is not start),
                      None)
        if target is None:
            target = self._nearest_port(pos, not start.is_input)
        if target is None:
            return
        if target.is_input == start.is_input:
            side = "inputs" if start.is_input else "outputs"
            self.status.emit(f"Refused: cannot wire two {side} together; drag from an output "
                             "to an input")
            return
        out, inp = (target, start) if start.is_input else (start, target)
        self.connect_ports(out.node.node_id, out.name, inp.node.node_id, inp.name)

    def _nearest_port(self, pos: QPointF, want_input: bool) -> PortItem | None:
        best, dist = None, 14.0
        for item in self.items(QRectF(pos.x() - 14, pos.y() - 14, 28, 28)):
            if isinstance(item, PortItem) and item.is_input == want_input:
                d = math.dist((pos.x(), pos.y()), (item.scenePos().x(), item.scenePos().y()))
                if d < dist:
                    best, dist = item, d
        return best

    # -- moving --------------------------------------------------------------------------------
    def mousePressEvent(self, e: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        super().mousePressEvent(e)
        self._press_pos = {nid: self.nodes[nid].pos() for nid in self.selected_ids()}

    def mouseMoveEvent(self, e: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        super().mouseMoveEvent(e)
        for nid in self._press_pos:
            item = self.nodes.get(nid)
            if item is not None:
                item.update_wires()

    def mouseReleaseEvent(self, e: QGraphicsSceneMouseEvent) -> None:  # noqa: N802
        super().mouseReleaseEvent(e)
        self.commit_moves()

    def commit_moves(self) -> None:
        """Turn item moves since the press into one MoveCommand."""
        moved = {nid: [self.nodes[nid].pos().x(), self.nodes[nid].pos().y()]
                 for nid, p in self._press_pos.items()
                 if nid in self.nodes and self.nodes[nid].pos() != p}
        if moved:
            old = {nid: [self._press_pos[nid].x(), self._press_pos[nid].y()] for nid in moved}
            push(self.doc, MoveCommand(self.doc, self.network, moved, old))
            self.grow()
        self._press_pos = {}

    # -- drops from the palette -----------------------------------------------------------------
    def dragEnterEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasFormat(MIME_NODE):
            e.acceptProposedAction()

    def dragMoveEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasFormat(MIME_NODE):
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasFormat(MIME_NODE):
            type_id = bytes(e.mimeData().data(MIME_NODE)).decode()
            self.add_node(type_id, e.scenePos() - QPointF(NODE_W / 2, HEADER_H / 2))
            e.setDropAction(Qt.DropAction.CopyAction)  # never Move: the palette keeps its entry
            e.accept()


def block_instance(analysis: Analysis, block: str) -> NetworkResult | None:
    """The first analysed instance of ``block`` (searching networks, then nested blocks)."""
    stack = list(analysis.networks.values())
    seen = 0
    while stack and seen < 10_000:
        res = stack.pop(0)
        seen += 1
        for nr in res.nodes.values():
            if nr.instances:
                params = nr.params
                if getattr(params, "block", None) == block:
                    return nr.instances[0]
                stack.extend(nr.instances[:1])
    return None


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
        rect = self.scene().itemsBoundingRect().adjusted(-40, -40, 40, 40)
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
            if rect.width() >= rect.height():
                self.centerOn(rect.left() + vw / 2, rect.center().y())
            else:
                self.centerOn(rect.center().x(), rect.top() + vh / 2)

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


def clipboard_mime() -> QMimeData | None:
    return QApplication.clipboard().mimeData()


__all__ = ["CanvasScene", "CanvasView", "NodeItem", "PortItem", "WireItem", "MIME_NODE",
           "block_instance", "QBrush"]
