"""The node canvas scene: a QGraphicsScene mirroring one network (or block) of the document.

The scene never edits the project: gestures become commands (``builder.commands``) and the scene
rebuilds what changed when ``Document.changed`` fires. Node positions live in ``project.ui``.
"""

from __future__ import annotations

import json
import math

from PySide6.QtCore import QMimeData, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QPen,
)
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsPathItem,
    QGraphicsScene,
    QGraphicsSceneMouseEvent,
)

from compiler.graph import GraphEditError
from compiler.shapes import Analysis, NetworkResult

from .. import theme
from ..commands import (
    AddNodeCommand,
    ConnectCommand,
    DisconnectCommand,
    MoveCommand,
    PasteCommand,
    RemoveNodesCommand,
    push,
)
from ..document import Document
from ..layout import layered_positions
from .items import (
    HEADER_H,
    MIME_CLIP,
    MIME_NODE,
    NODE_W,
    SCENE_MARGIN,
    NodeItem,
    PortItem,
    WireItem,
)
from .routing import wire_path

_CELL = 300.0  # px: the column width of the routing index


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
        self._grid: dict[tuple, list] | None = None  # node rects by grid cell, for routing
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
        self._grid = None
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
            near = []
            for nid in info.get("nodes", []):
                item = self.nodes.get(nid)
                if item and nid in pos:
                    near.append(item.sceneBoundingRect())
                    item.setPos(*pos[nid])
                    item.update_wires()
                    near.append(item.sceneBoundingRect())
            self.grow(near=near)
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
        # Nodes without a stored position are shown where a layout would put them; the view
        # never writes the document (a later move stores the position through a command).
        auto = (layered_positions(net, str(self.doc.project.ui.get("layout", "LR")))
                if missing else {})
        for n in net.nodes:
            item = self.nodes.get(n.id)
            p = pos.get(n.id) or auto.get(n.id, [0.0, 0.0])
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
        self._grid = None  # nodes were added or moved: the routing index is rebuilt on demand
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
        self.grow(reroute=False)  # every wire was just routed

    def grow(self, reroute: bool = True, near: list[QRectF] | None = None) -> None:
        """Keep room around the graph so views can scroll past its edges and centre any node;
        re-route the long wires, whose bypass lanes depend on where the other nodes now are
        (with ``near``: only those passing the rectangles where nodes were or now are)."""
        self._grid = None
        for w in self.wires.values() if reroute else ():
            if (near is None or any(w.bounds.intersects(r) for r in near)) and w.long():
                w.update_path()
        self.setSceneRect(self.itemsBoundingRect().adjusted(-SCENE_MARGIN, -SCENE_MARGIN,
                                                            SCENE_MARGIN, SCENE_MARGIN))

    def nodes_in(self, rect: QRectF, exclude: tuple = ()) -> list[QRectF]:
        """Rectangles of the node items meeting ``rect`` (routing's obstacles). A grid index
        built once per change, not the scene's BSP tree: re-routing hundreds of wires then costs
        a few small list scans instead of an index rebuild per wire."""
        if self._grid is None:
            self._grid = {}
            for item in self.nodes.values():
                r = item.sceneBoundingRect()
                for cell in _cells(r):
                    self._grid.setdefault(cell, []).append((item, r))
        seen: set[int] = set()
        out = []
        for cell in _cells(rect):
            for item, r in self._grid.get(cell, ()):
                if id(item) not in seen and item not in exclude and r.intersects(rect):
                    seen.add(id(item))
                    out.append(r)
        return out

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
            near = [self.nodes[nid].sceneBoundingRect().translated(
                self._press_pos[nid] - self.nodes[nid].pos()) for nid in moved]
            push(self.doc, MoveCommand(self.doc, self.network, moved, old))
            self.grow(near=near)  # the new places were handled when the move was announced
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


def _cells(r: QRectF):
    """The routing grid's cells that ``r`` covers."""
    for cx in range(math.floor(r.left() / _CELL), math.floor(r.right() / _CELL) + 1):
        for cy in range(math.floor(r.top() / _CELL), math.floor(r.bottom() / _CELL) + 1):
            yield cx, cy


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


def clipboard_mime() -> QMimeData | None:
    return QApplication.clipboard().mimeData()
