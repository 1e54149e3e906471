"""Issue 13, the editor side: the first ten minutes in the window as a new user meets them, driven
through the real widgets (keys, clicks, the dialogs' own buttons). Each test fails on the editor
as it was before: unreadable fits, hidden skip wires, default values on block faces, empty first
views, a gallery that opened the wrong row, yes/no unsaved prompts, a warning-box F1..."""

from __future__ import annotations

import pytest
from helpers import isolated_app
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox

from compiler import Project, add_network

SHOTS = __import__("conftest").SCREENSHOTS


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    """A 1280×800 main window (a laptop), settings and recovery files inside tmp_path."""
    isolated_app(tmp_path, monkeypatch)
    from builder.main_window import MainWindow

    w = MainWindow(_chain(3))
    w.messages = []
    w.inform = lambda title, text: w.messages.append((title, text))
    w.ask = lambda title, text: True
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.document.undo_stack.setClean()
    w.close()


def _chain(n: int) -> Project:
    p = Project(name=f"chain{n}")
    g = add_network(p, "net")
    steps = [("io.input", {"shape": ["N", 8]}, "x")]
    steps += [("linear.linear", {"out_features": 8}, f"fc{i}") for i in range(n)]
    g.chain(*steps, ("io.output", {}, "y"))
    return p


def _open_template(w, qtbot, name: str = "resnet18-small") -> None:
    assert w.open_template(name)
    qtbot.wait(30)  # the deferred fit
    w.document.analyze_now()


def _visible_scene_rect(w):
    return w.view.mapToScene(w.view.viewport().rect()).boundingRect()


def _node_by_name(w, name: str):
    return next(i for i in w.scene.nodes.values() if i.node.name == name)


def _enter_block(w, qtbot, node_name: str) -> None:
    item = _node_by_name(w, node_name)
    w.view.centerOn(item)
    pos = w.view.mapFromScene(item.sceneBoundingRect().center())
    before = w.scene.network
    QTest.mouseDClick(w.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: w.scene.network != before, timeout=2000)


# -- Seeing the model ---------------------------------------------------------------------------
def test_resnet18_opens_fitted_and_readable_on_a_laptop(window, qtbot):
    from builder.canvas.items import READABLE_SCALE

    w = window
    _open_template(w, qtbot)
    assert w.view.transform().m11() >= READABLE_SCALE  # names and shapes are readable
    seen = _visible_scene_rect(w)
    for item in w.scene.nodes.values():  # ... and every node of the network is on screen
        assert seen.contains(item.sceneBoundingRect()), item.node.name
    w.grab().save(str(SHOTS / "first_contact_resnet_open.png"))


def test_long_graph_opens_on_its_input_and_fit_keeps_names(window, qtbot):
    from builder.canvas.items import LOD_TITLE, READABLE_SCALE
    from builder.file_actions import lay_out_all

    w = window
    project = _chain(60)
    lay_out_all(project)
    w._replace(project)
    qtbot.wait(30)
    assert w.view.transform().m11() == pytest.approx(READABLE_SCALE)
    x = _node_by_name(w, "x")
    assert _visible_scene_rect(w).contains(x.sceneBoundingRect())  # starts at the input
    w.view.setFocus()
    QTest.keyClick(w, Qt.Key.Key_F)  # View ▸ Fit to View
    scale = w.view.transform().m11()
    assert scale < LOD_TITLE
    seen = _visible_scene_rect(w)
    assert all(seen.contains(i.sceneBoundingRect()) for i in w.scene.nodes.values())
    # Zoomed out, a node still shows its name in letters tall enough to read.
    img = w.view.viewport().grab().toImage()
    fc = _node_by_name(w, "fc17")
    box = w.view.mapFromScene(fc.sceneBoundingRect()).boundingRect()
    rows = [y for y in range(max(0, box.top()), min(img.height(), box.bottom()))
            if any(QColor(img.pixel(x, y)).lightness() > 200
                   for x in range(max(0, box.left()), min(img.width(), box.right())))]
    assert rows and rows[-1] - rows[0] >= 7, f"title {len(rows)} px tall at zoom {scale:.2f}"
    img.save(str(SHOTS / "first_contact_fit_long_chain.png"))


def _skip_wire(w):
    add = _node_by_name(w, "residual")
    block_in = next(i for i in w.scene.nodes.values() if i.node.type == "io.block_input")
    wire = next(x for x in add.wires if x.src is block_in)
    main = next(x for x in add.wires if x.src is not block_in and x.dst is add)
    return wire, main


def _assert_skip_visible(w) -> None:
    from PySide6.QtGui import QPainterPathStroker

    skip, main = _skip_wire(w)
    stroke = QPainterPathStroker()
    stroke.setWidth(2)
    outline = stroke.createStroke(skip.path())
    behind = [i.node.name for i in w.scene.nodes.values()
              if i not in (skip.src, skip.dst) and outline.intersects(i.sceneBoundingRect())]
    assert not behind, f"the shortcut runs behind {behind}"
    # Add visibly has two inputs: the shortcut runs apart from the main chain.
    assert abs(skip.path().pointAtPercent(0.5).y() - main.path().pointAtPercent(0.5).y()) > 20


def test_skip_connection_is_routed_around_the_nodes_it_jumps(window, qtbot):
    w = window
    _open_template(w, qtbot)
    _enter_block(w, qtbot, "layer1")
    assert w.scene.network == "BasicBlock"
    _assert_skip_visible(w)
    w.view.viewport().grab().save(str(SHOTS / "first_contact_skip_default.png"))
    # Ctrl+L (View ▸ Auto-Layout) lays the block out afresh: still routed around.
    w.view.setFocus()
    QTest.keyClick(w, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    _assert_skip_visible(w)
    w.view.viewport().grab().save(str(SHOTS / "first_contact_skip_ctrl_l.png"))


def test_node_faces_inside_a_block_show_the_bound_param(window, qtbot):
    w = window
    _open_template(w, qtbot)
    _enter_block(w, qtbot, "layer1")
    conv = _node_by_name(w, "conv1")
    assert "out_channels=$planes" in conv.face
    assert "out_channels=64" not in conv.face  # the inner type's default, never shown
    w.close_block()
    _enter_block(w, qtbot, "layer2")  # a stage: its blocks pass $planes on
    first = _node_by_name(w, "first")
    assert "planes=$planes" in first.face


def test_code_and_summary_are_filled_when_first_shown_and_totals_follow(window, qtbot):
    w = window
    _open_template(w, qtbot)
    w.docks["Code"].raise_()
    qtbot.waitUntil(lambda: "class" in w.code.toPlainText(), timeout=5000)
    w.docks["Summary"].raise_()
    qtbot.waitUntil(lambda: w.summary.table.rowCount() > 5 and "params" in w.summary.totals.text(),
                    timeout=8000)
    # Totals without opening Summary: the status bar, and they follow an edit at once.
    qtbot.waitUntil(lambda: "params" in w.state_label.text(), timeout=8000)
    before = w.state_label.text()
    layer1 = _node_by_name(w, "layer1")
    w.scene.select([layer1.node_id])
    rep = w.inspector.editors["repeat"]
    rep.setFocus()
    QTest.keyClick(rep, Qt.Key.Key_Up)
    qtbot.waitUntil(lambda: "params" in w.state_label.text() and w.state_label.text() != before,
                    timeout=8000)


def test_compute_figures_computes_for_a_large_project(window, qtbot):
    from builder.document import FIGURES_MAX_NODES

    w = window
    w._replace(_chain(FIGURES_MAX_NODES + 5))
    w.docks["Summary"].raise_()
    w.document.analyze_now()
    qtbot.waitUntil(lambda: w.summary.compute.isVisible(), timeout=5000)
    assert "params" not in w.summary.totals.text()
    QTest.mouseClick(w.summary.compute, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "params" in w.summary.totals.text(), timeout=20000)
    assert not w.summary.compute.isVisible()
    assert "params" in w.state_label.text()


# -- Templates and projects ---------------------------------------------------------------------
def _answer_modal(qtbot, act) -> list:
    """Run ``act(dialog)`` on the next modal dialog (exec() blocks the test meanwhile)."""
    seen: list = []

    def poll() -> None:
        dlg = QApplication.activeModalWidget()
        if dlg is None:
            QTimer.singleShot(20, poll)
            return
        seen.append(dlg)
        act(dlg)

    QTimer.singleShot(20, poll)
    return seen


def test_gallery_opens_the_highlighted_row_after_filtering(window, qtbot):
    w = window

    def choose(dlg) -> None:
        QTest.keyClicks(dlg.search, "vgg16-bn")
        assert dlg.selected_name() == "vgg16-bn"
        assert "vgg16-bn" in dlg.details.text()
        QTest.keyClick(dlg.search, Qt.Key.Key_Return)

    seen = _answer_modal(qtbot, choose)
    w.show_gallery()
    assert seen and not seen[0].windowIcon().isNull()
    assert w.statusBar().currentMessage() == "New project from template vgg16-bn"


def test_unsaved_prompt_offers_save_discard_and_cancel(window, qtbot, tmp_path):
    w = window
    w.ask = w._ask  # the real dialogs
    w.scene.add_node("activation.relu", QPointF(0, 0))
    assert w.document.dirty
    # The real box has the three buttons; Cancel keeps everything.
    buttons = []

    def cancel(box) -> None:
        buttons.extend(b.text().replace("&", "") for b in box.buttons())
        box.button(QMessageBox.StandardButton.Cancel).click()

    _answer_modal(qtbot, cancel)
    w.new_project()
    assert {"Save", "Discard", "Cancel"} <= set(buttons) or len(buttons) == 3
    assert w.document.dirty and any(n.type == "activation.relu" for n in w.scene.graph.net.nodes)
    # Save: asks where, writes, then goes on to the new project.
    target = tmp_path / "kept.loom"
    w.choose_file = lambda caption, filt, save: str(target)
    _answer_modal(qtbot, lambda box: box.button(QMessageBox.StandardButton.Save).click())
    w.new_project()
    assert target.exists() and not w.document.dirty
    assert not any(n.type == "activation.relu" for n in w.scene.graph.net.nodes)
    # Discard on close: closes without writing.
    w.scene.add_node("activation.relu", QPointF(0, 0))
    _answer_modal(qtbot, lambda box: box.button(QMessageBox.StandardButton.Discard).click())
    assert w.close()


# -- Polish -------------------------------------------------------------------------------------
def test_palette_and_quick_add_rank_exact_and_prefix_first(window, qtbot):
    w = window
    before = len(w.scene.graph.net.nodes)
    w.palette.search.setFocus()
    QTest.keyClicks(w.palette.search, "relu")
    QTest.keyClick(w.palette.search, Qt.Key.Key_Return)
    assert len(w.scene.graph.net.nodes) == before + 1
    assert w.scene.graph.net.nodes[-1].type == "activation.relu"
    w.palette.search.clear()
    QTest.keyClicks(w.palette.search, "add")
    assert w.palette.tree.currentItem().text(0) == "Add"
    tip = w.palette.tree.currentItem().toolTip(0)
    assert "Add" in tip and "residual" in tip and "merge.add" not in tip
    w.view.quick_add.emit(QPointF(0, 300))
    QTest.keyClicks(w.quick.edit, "add")
    assert w.quick.list.item(0).text().startswith("Add ")
    QTest.keyClick(w.quick.edit, Qt.Key.Key_Return)
    assert w.scene.graph.net.nodes[-1].type == "merge.add"


def test_f1_opens_a_grouped_searchable_shortcuts_window(window, qtbot):
    w = window
    w.view.setFocus()
    QTest.keyClick(w, Qt.Key.Key_F1)
    dlg = w.shortcuts_dialog
    assert dlg.isVisible() and not w.messages  # a window, not a warning box
    groups = [dlg.tree.topLevelItem(i).text(0) for i in range(dlg.tree.topLevelItemCount())]
    assert {"File", "Edit", "View", "Canvas"} <= set(groups)
    assert "Undo" in dlg.visible_actions() and "Auto-Layout" in dlg.visible_actions()
    QTest.keyClicks(dlg.filter, "undo")
    assert dlg.visible_actions() == ["Undo"]
    dlg.filter.clear()
    QTest.keyClicks(dlg.filter, "Ctrl+L")
    assert "Auto-Layout" in dlg.visible_actions()
    dlg.grab().save(str(SHOTS / "first_contact_shortcuts.png"))
    dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close).click()
    assert not dlg.isVisible()


def test_floats_show_as_typed_in_inspector_and_on_the_node(window, qtbot):
    w = window
    nid = w.scene.add_node("norm.dropout", QPointF(0, 300))
    w.scene.select([nid])
    box = w.inspector.editors["p"]
    assert box.text() == "0.5"
    assert "p=0.5" in w.scene.nodes[nid].face and "0.500000" not in w.scene.nodes[nid].face
    box.setFocus()
    box.selectAll()
    QTest.keyClicks(box, "0.125")
    QTest.keyClick(box, Qt.Key.Key_Return)
    assert w.scene.graph.node(nid).params["p"] == 0.125
    assert w.inspector.editors["p"].text() == "0.125"


def test_input_shape_is_edited_dim_by_dim(window, qtbot):
    from builder.shape_editor import ShapeEditor

    w = window
    x = _node_by_name(w, "x")
    w.scene.select([x.node_id])
    editor = w.inspector.editors["shape"]
    assert isinstance(editor, ShapeEditor)
    assert [f.text() for f in editor.fields] == ["N", "8"]
    field = editor.fields[1]
    field.setFocus()
    field.selectAll()
    QTest.keyClicks(field, "16")
    QTest.keyClick(field, Qt.Key.Key_Return)
    assert w.scene.graph.node(x.node_id).params["shape"] == ["N", 16]
    editor = w.inspector.editors["shape"]
    QTest.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    assert w.scene.graph.node(x.node_id).params["shape"] == ["N", 16, 1]
    editor = w.inspector.editors["shape"]
    QTest.keyClicks(editor.fields[0], "{")  # neither a size nor a symbol: not accepted
    assert editor.fields[0].text() == "N"
    QTest.mouseClick(editor.remove_button, Qt.MouseButton.LeftButton)
    assert w.scene.graph.node(x.node_id).params["shape"] == ["N", 16]
    w.document.undo_stack.undo()  # successive edits of one field are one undo step
    assert w.scene.graph.node(x.node_id).params["shape"] == ["N", 8]


def test_a_mismatched_wire_is_accepted_and_flagged_as_the_readme_says(window, qtbot):
    from conftest import ROOT

    w = window
    conv = w.scene.add_node("conv.conv2d", QPointF(0, 400))
    fc0 = _node_by_name(w, "fc0")
    assert w.scene.connect_ports(fc0.node_id, "y", conv, "x")  # [N, 8] into a Conv2d
    msg = w.statusBar().currentMessage()
    assert msg.startswith("Wired, but") and "conv" in msg.lower()
    w.document.analyze_now()
    wire = next(x for x in w.scene.wires.values() if x.dst.node_id == conv)
    assert wire.bad and w.scene.nodes[conv].severity == "error"
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "accepted and flagged" in readme and "Wired, but" in readme


def test_a_journey_leaves_stderr_clean(window, qtbot):
    from PySide6.QtCore import qInstallMessageHandler

    w = window
    messages: list[str] = []
    old = qInstallMessageHandler(lambda mode, ctx, text: messages.append(f"{mode}: {text}"))
    try:
        _open_template(w, qtbot)
        layer1 = _node_by_name(w, "layer1")
        w.scene.select([layer1.node_id])
        rep = w.inspector.editors["repeat"]
        rep.setFocus()
        QTest.keyClick(rep, Qt.Key.Key_Up)
        w.view.setFocus()
        QTest.keyClick(w, Qt.Key.Key_F)
        w.repaint()
        _enter_block(w, qtbot, "layer1")
        w.view.viewport().repaint()
        w.close_block()
        w.docks["Code"].raise_()
        w.docks["Summary"].raise_()
        w.set_theme("light")
        w.repaint()
        w.set_theme("dark")
        w.document.undo_stack.undo()
        qtbot.wait(50)
    finally:
        qInstallMessageHandler(old)
    bad = [m for m in messages if "propagateSizeHints" not in m]  # the offscreen plugin's note
    assert not bad, bad


def test_assets_are_loaded_through_one_helper_and_used(window, qtbot):
    from builder import assets
    from nodes import registry

    w = window
    assert (assets.root() / "icons" / "app.svg").is_file()
    assert not w.windowIcon().isNull()
    for cat in {t.category for t in registry.all_types()}:
        assert not assets.category_icon(cat).isNull(), cat
    top = w.palette.tree.topLevelItem(0)
    assert not top.icon(0).isNull()
    assert "QToolTip" in QApplication.instance().styleSheet()
    assert "$" not in QApplication.instance().styleSheet()  # every colour filled in
