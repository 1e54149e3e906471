"""The editor window, driven as a user would (offscreen): palette drop, wiring, inspector edits,
refusals, undo/redo. Screenshots go to tests/screenshots/ (look at them)."""

from __future__ import annotations

import pytest
from helpers import isolated_app
from PySide6.QtCore import QCoreApplication, QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest

from compiler import Project, add_network
from nodes import registry

SHOTS = __import__("conftest").SCREENSHOTS


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A main window with settings, recovery files and dialogs kept inside tmp_path."""
    isolated_app(tmp_path, monkeypatch)
    from builder.main_window import MainWindow

    w = MainWindow(_empty())
    w.messages = []
    w.ask = lambda title, text: True
    w.inform = lambda title, text: w.messages.append((title, text))
    w.ask_text = lambda title, label, default: "Stem"
    qtbot.addWidget(w)
    w.resize(1300, 820)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.document.undo_stack.setClean()
    w.close()


def _empty() -> Project:
    p = Project(name="scratch")
    add_network(p, "net")
    return p


def drop_type(w, type_id: str, at: QPoint) -> str:
    """Drop a palette entry onto the canvas viewport as a drag would; returns the new node id."""
    tree = w.palette.tree
    item = next(tree.topLevelItem(i).child(j) for i in range(tree.topLevelItemCount())
                for j in range(tree.topLevelItem(i).childCount())
                if tree.topLevelItem(i).child(j).data(0, Qt.ItemDataRole.UserRole + 1) == type_id)
    mime: QMimeData = tree.mimeData([item])
    before = {n.id for n in w.scene.graph.net.nodes}
    vp = w.view.viewport()
    from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent

    for cls in (QDragEnterEvent, QDragMoveEvent):
        QCoreApplication.sendEvent(vp, cls(at, Qt.DropAction.CopyAction, mime,
                                           Qt.MouseButton.LeftButton,
                                           Qt.KeyboardModifier.NoModifier))
    drop = QDropEvent(QPointF(at), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QCoreApplication.sendEvent(vp, drop)
    new = [n.id for n in w.scene.graph.net.nodes if n.id not in before]
    assert len(new) == 1, "the drop did not add exactly one node"
    return new[0]


def wire_label(w, src: str, dst: str) -> str:
    w.document.analyze_now()
    return next(wi.label for k, wi in w.scene.wires.items() if k[0] == src and k[2] == dst)


def test_drag_from_palette_connect_and_see_shapes(window, qtbot):
    w = window
    x = drop_type(w, "io.input", QPoint(80, 200))
    fc = drop_type(w, "linear.linear", QPoint(330, 200))
    out = drop_type(w, "io.output", QPoint(580, 200))
    g = w.scene.graph
    assert [g.node(i).type for i in (x, fc, out)] == ["io.input", "linear.linear", "io.output"]
    tree = w.palette.tree
    count = sum(tree.topLevelItem(i).childCount() for i in range(tree.topLevelItemCount()))
    from builder.palette import HIDDEN

    assert count == len([t for t in registry.all_types() if t.id not in HIDDEN])  # kept
    w.palette.search.setText("embedding")
    shown = [tree.topLevelItem(i).child(j).text(0) for i in range(tree.topLevelItemCount())
             for j in range(tree.topLevelItem(i).childCount())
             if not tree.topLevelItem(i).child(j).isHidden()]
    assert "Embedding" in shown and "ReLU" not in shown
    w.palette.search.clear()
    w.scene.select([x])
    shape = w.inspector.editors["shape"]  # one field per dim; N and T are symbols
    for _ in range(2):
        QTest.mouseClick(shape.remove_button, Qt.MouseButton.LeftButton)
    shape.fields[1].setText("20")
    shape.fields[1].editingFinished.emit()
    assert g.node(x).params["shape"] == ["N", 20]
    assert w.scene.connect_ports(x, "y", fc, "x")
    assert w.scene.connect_ports(fc, "y", out, "x")
    assert wire_label(w, x, fc) == "[N, 20]"
    assert wire_label(w, fc, out) == "[N, 64]"
    assert not w.document.analysis.errors
    # The inspector edits out_features; the wire after it shows the new width.
    w.scene.select([fc])
    assert w.inspector.node_id == fc
    spin = w.inspector.editors["out_features"]
    spin.setValue(12)
    assert g.node(fc).params["out_features"] == 12
    assert wire_label(w, fc, out) == "[N, 12]"
    assert "out <b>y</b>: [N, 12]" in w.inspector.figures.text()
    # Parameters and FLOPs are counted in a worker thread; the inspector fills them in.
    qtbot.waitUntil(lambda: "parameters: <b>252</b>" in w.inspector.figures.text(), timeout=20000)
    assert "FLOPs: <b>480</b>" in w.inspector.figures.text()  # 2 * 20 * 12, batch 1
    w.view.fit()
    w.grab().save(str(SHOTS / "editor_mlp.png"))


@pytest.mark.skipif(not (registry.has("conv.conv2d") and registry.has("pool.max_pool2d")),
                    reason="conv or pool family not registered yet")
def test_journey_draw_a_cnn_from_scratch(window):
    """Journey 2: Input, Conv2d, ReLU, MaxPool2d, Flatten, Linear, Output, no input sizes typed."""
    w = window
    types = ["io.input", "conv.conv2d", "activation.relu", "pool.max_pool2d", "shape.flatten",
             "linear.linear", "io.output"]
    ids = [drop_type(w, t, QPoint(60 + 150 * i, 150 + 40 * (i % 2))) for i, t in enumerate(types)]
    for a, b in zip(ids, ids[1:], strict=False):
        assert w.scene.connect_ports(a, w.scene.nodes[a].out_names[0], b,
                                     w.scene.nodes[b].in_names[0]), w.statusBar().currentMessage()
    w.scene.select([ids[1]])
    w.inspector.editors["out_channels"].setValue(8)
    w.document.analyze_now()
    assert not w.document.analysis.errors, [str(d) for d in w.document.analysis.errors]
    labels = [wi.label for wi in w.scene.wires.values()]
    assert all(labels) and "[N, 8, 30, 30]" in labels and "[N, 1800]" in labels
    # An Add between tensors of different shapes is flagged with what differs; Ctrl+Z undoes it.
    add = drop_type(w, "merge.add", QPoint(500, 400))
    assert w.scene.connect_ports(ids[0], "y", add, "x")
    assert w.scene.connect_ports(ids[1], "y", add, "x")
    msg = w.statusBar().currentMessage()
    assert "Wired, but" in msg and " vs " in msg, msg
    assert w.scene.nodes[add].severity == "error"
    w.document.undo_stack.undo()
    w.document.analyze_now()
    assert w.scene.nodes[add].severity is None or len(w.scene.graph.edges_into(add)) == 1
    w.view.fit()
    w.grab().save(str(SHOTS / "journey2_cnn.png"))


def test_bad_wires_are_refused_with_a_reason(window):
    w = window
    g = w.scene.graph
    x = drop_type(w, "io.input", QPoint(80, 100))
    a = drop_type(w, "activation.relu", QPoint(300, 100))
    b = drop_type(w, "activation.tanh", QPoint(500, 100))
    assert w.scene.connect_ports(x, "y", a, "x")
    assert w.scene.connect_ports(a, "y", b, "x")
    steps = w.document.undo_stack.count()
    assert not w.scene.connect_ports(b, "y", a, "x")  # a cycle
    assert "cycle" in w.statusBar().currentMessage()
    assert not w.scene.connect_ports(a, "y", a, "x")
    assert "feed itself" in w.statusBar().currentMessage()
    assert w.document.undo_stack.count() == steps  # refusals leave no undo step
    assert len(g.net.edges) == 2
    # Dragging between two inputs is refused too, through the real drag path.
    w.scene.begin_wire(w.scene.nodes[a].ports[(True, "x")])
    w.scene.end_wire(w.scene.nodes[b].ports[(True, "x")].scenePos())
    assert "two inputs" in w.statusBar().currentMessage()
    # Shape mismatch: wired but the node is flagged with what differs.
    add = drop_type(w, "merge.add", QPoint(300, 300))
    fc = drop_type(w, "linear.linear", QPoint(100, 300))
    assert w.scene.connect_ports(x, "y", fc, "x")
    assert w.scene.connect_ports(x, "y", add, "x")
    assert w.scene.connect_ports(fc, "y", add, "x")
    assert "32 vs 64" in w.statusBar().currentMessage()  # what differs, and where
    assert w.scene.nodes[add].severity == "error"
    assert "32 vs 64" in w.scene.nodes[add].toolTip()


def test_rewire_is_one_undo_step_and_undo_redo(window):
    w = window
    g = w.scene.graph
    x = drop_type(w, "io.input", QPoint(80, 100))
    y = drop_type(w, "io.input", QPoint(80, 300))
    a = drop_type(w, "activation.relu", QPoint(300, 200))
    assert w.scene.connect_ports(x, "y", a, "x")
    n = w.document.undo_stack.count()
    assert w.scene.connect_ports(y, "y", a, "x")  # replaces the wire from x
    assert [e.src for e in g.edges_into(a)] == [y]
    assert w.document.undo_stack.count() == n + 1
    w.document.undo_stack.undo()
    assert [e.src for e in g.edges_into(a)] == [x]
    w.document.undo_stack.redo()
    assert [e.src for e in g.edges_into(a)] == [y]
    # Undo everything back to the empty graph, then redo it all.
    while w.document.undo_stack.canUndo():
        w.document.undo_stack.undo()
    assert g.net.nodes == [] and not w.scene.nodes
    while w.document.undo_stack.canRedo():
        w.document.undo_stack.redo()
    assert len(g.net.nodes) == 3 and len(w.scene.nodes) == 3
    assert len(w.scene.wires) == 1


def test_param_edits_merge_and_invalid_values_are_refused(window):
    w = window
    g = w.scene.graph
    fc = drop_type(w, "linear.linear", QPoint(200, 200))
    w.scene.select([fc])
    n = w.document.undo_stack.count()
    spin = w.inspector.editors["out_features"]
    for v in (1, 12, 128):
        spin.setValue(v)
    assert g.node(fc).params["out_features"] == 128
    assert w.document.undo_stack.count() == n + 1  # successive edits of one param merge
    w.document.undo_stack.undo()
    assert "out_features" not in g.node(fc).params
    # The spin box bounds come from the pydantic field (ge=1).
    assert spin.minimum() == 1
    # A value pydantic rejects is refused with the reason, nothing changes.
    x = drop_type(w, "io.input", QPoint(50, 50))
    w.scene.select([x])
    assert not w.inspector.set_value("shape", ["N", "Q"])
    assert "not a size" in w.inspector.error.text()
    assert g.node(x).params.get("shape") != ["N", "Q"]
    # Renaming to a taken name is refused too.
    w.inspector.editors["__name__"].setText(g.node(fc).name)
    w.inspector.editors["__name__"].editingFinished.emit()
    assert "already exists" in w.inspector.error.text()


def test_move_copy_paste_delete_align_layout(window):
    w = window
    g = w.scene.graph
    a = drop_type(w, "activation.relu", QPoint(100, 100))
    b = drop_type(w, "activation.tanh", QPoint(300, 180))
    assert w.scene.connect_ports(a, "y", b, "x")
    item = w.scene.nodes[a]
    w.scene.select([a])
    w.scene._press_pos = {a: item.pos()}
    item.setPos(item.pos() + QPointF(30, 0))
    w.scene.commit_moves()
    w.scene._press_pos = {a: item.pos()}
    item.setPos(item.pos() + QPointF(30, 0))
    w.scene.commit_moves()
    moved = w.document.positions("net")[a]
    w.document.undo_stack.undo()  # both moves were merged into one step
    assert w.document.positions("net")[a][0] == pytest.approx(moved[0] - 60)
    assert w.scene.nodes[a].pos().x() == pytest.approx(moved[0] - 60)
    w.scene.select([a, b])
    assert w.scene.duplicate()
    assert len(g.net.nodes) == 4 and len(g.net.edges) == 2
    w.scene.align("top")
    ys = {w.document.positions("net")[i][1] for i in w.scene.selected_ids()}
    assert len(ys) == 1
    w.scene.delete_selected()
    assert len(g.net.nodes) == 2
    w.auto_layout()
    pos = w.document.positions("net")
    assert pos[a][0] < pos[b][0]  # data flows left to right


def test_make_block_open_it_and_come_back(window, qtbot):
    w = window
    x = drop_type(w, "io.input", QPoint(50, 100))
    a = drop_type(w, "linear.linear", QPoint(250, 100))
    b = drop_type(w, "activation.relu", QPoint(450, 100))
    o = drop_type(w, "io.output", QPoint(650, 100))
    w.scene.select([x])
    assert w.inspector.set_value("shape", ["N", 64])
    for s, d in ((x, a), (a, b), (b, o)):
        assert w.scene.connect_ports(s, "y", d, "x")
    w.scene.select([a, b])
    w.make_block()  # ask_text answers "Stem"
    g = w.scene.graph
    assert w.document.project.has_block("Stem")
    block_node = next(n for n in g.net.nodes if n.type == "block.block")
    w.document.analyze_now()
    assert not w.document.analysis.errors
    assert wire_label(w, block_node.id, o) == "[N, 64]"
    # Repeat ×N is edited in the inspector.
    w.scene.select([block_node.id])
    w.inspector.editors["repeat"].setValue(3)
    assert g.node(block_node.id).params["repeat"] == 3
    w.document.analyze_now()
    assert not w.document.analysis.errors
    assert "×3" in w.scene.nodes[block_node.id].face
    w.document.undo_stack.undo()
    assert w.scene.graph.node(block_node.id).params.get("repeat", 1) == 1
    w.view.centerOn(w.scene.nodes[block_node.id])
    item = w.scene.nodes[block_node.id]
    at = w.view.mapFromScene(item.mapToScene(QPointF(90, 40)))
    QTest.mouseDClick(w.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      at)
    qtbot.waitUntil(lambda: w.scene.network == "Stem", timeout=2000)  # opened after the click
    assert w.back.isVisible() and "Stem" in w.crumbs.text()
    w.document.analyze_now()
    inner = w.scene.graph.find("linear")
    assert any(wi.label == "[N, 64]" for k, wi in w.scene.wires.items() if k[0] == inner)
    w.grab().save(str(SHOTS / "editor_block_view.png"))
    w.close_block()
    assert w.scene.network == "net"
    w.document.undo_stack.undo()  # undo make-block
    assert not w.document.project.has_block("Stem")
    assert {n.id for n in w.scene.graph.net.nodes} == {x, a, b, o}
