"""Window-level behaviour: quick-add, problems list, code and summary views, networks as tabs,
themes, menus and shortcuts, closing with unsaved changes, and the run_app entry point."""

from __future__ import annotations

import uuid

import pytest
from PySide6.QtCore import QCoreApplication, QPointF, QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication

from compiler import Project, add_network

SHOTS = __import__("conftest").SCREENSHOTS


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLOOM_DATA_DIR", str(tmp_path / "data"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "ini"))
    QCoreApplication.setOrganizationName(f"LayerloomTest{uuid.uuid4().hex[:6]}")
    from builder.app import make_app

    make_app()
    return tmp_path


def _gan_like() -> Project:
    p = Project(name="two nets")
    g = add_network(p, "generator")
    g.chain(("io.input", {"shape": ["N", 8]}, "z"), ("linear.linear", {"out_features": 16}, "fc"),
            ("activation.tanh", {}, "act"), ("io.output", {}, "img"))
    d = add_network(p, "discriminator")
    d.chain(("io.input", {"shape": ["N", 16]}, "img"), ("linear.linear", {"out_features": 1}, "fc"),
            ("io.output", {}, "logit"))
    return p


def make_window(qtbot, project=None):
    from builder.file_actions import lay_out_all
    from builder.main_window import MainWindow

    if project is not None:
        lay_out_all(project)
    w = MainWindow(project)
    w.messages = []
    w.asked = []
    w.answer = True
    w.ask = lambda title, text: w.asked.append(text) or w.answer
    w.inform = lambda title, text: w.messages.append((title, text))
    qtbot.addWidget(w)
    w.resize(1300, 820)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_networks_are_tabs_and_problems_select_their_node(env, qtbot):
    w = make_window(qtbot, _gan_like())
    assert w.tabs.isVisible() and [w.tabs.tabText(i) for i in range(w.tabs.count())] == \
        ["generator", "discriminator"]
    w.tabs.setCurrentIndex(1)
    assert w.scene.network == "discriminator"
    names = {w.scene.nodes[i].title for i in w.scene.nodes}
    assert names == {"img", "fc", "logit"}
    # Break the generator; its problem is listed; clicking it goes there and selects the node.
    w.tabs.setCurrentIndex(0)
    act = w.scene.graph.find("act")
    w.scene.select([act])
    w.scene.delete_selected()
    w.tabs.setCurrentIndex(1)
    w.document.analyze_now()
    assert w.problems.topLevelItemCount() >= 1
    item = next(w.problems.topLevelItem(i) for i in range(w.problems.topLevelItemCount())
                if "img" in w.problems.topLevelItem(i).text(1))
    w.problems.itemClicked.emit(item, 0)
    assert w.scene.network == "generator" and w.tabs.currentIndex() == 0
    assert [w.scene.nodes[i].title for i in w.scene.selected_ids()] == ["img"]
    assert w.scene.nodes[w.scene.graph.find("img")].severity == "error"
    w.docks["Problems"].raise_()
    w.grab().save(str(SHOTS / "window_problems.png"))
    w.document.undo_stack.setClean()


def test_code_and_summary_views_follow_edits(env, qtbot):
    w = make_window(qtbot, _gan_like())
    w.docks["Code"].raise_()
    w.docks["Summary"].raise_()
    qtbot.waitUntil(lambda: "class Generator" in w.code.toPlainText(), timeout=10000)
    assert w.code.isReadOnly()
    assert "nn.Linear(8, 16)" in w.code.toPlainText()
    fc = w.scene.graph.find("fc")
    w.scene.select([fc])
    w.inspector.editors["out_features"].setValue(5)
    w.document.analyze_now()
    qtbot.waitUntil(lambda: "nn.Linear(8, 5)" in w.code.toPlainText(), timeout=10000)
    # The summary lists every node with its params once the worker has counted them.
    qtbot.waitUntil(lambda: "45 params" in w.summary.totals.text(), timeout=20000)  # 8*5 + 5
    rows = {w.summary.table.item(r, 0).text(): w.summary.table.item(r, 3).text()
            for r in range(w.summary.table.rowCount())}
    assert rows["generator/fc"] == "45"
    w.grab().save(str(SHOTS / "window_code_summary.png"))
    w.document.undo_stack.setClean()


def test_quick_add_at_the_cursor(env, qtbot):
    w = make_window(qtbot)
    w.view.quick_add.emit(QPointF(100, 50))
    assert w.quick.isVisible()
    qtbot.keyClicks(w.quick.edit, "layernorm")
    if w.quick.list.count() == 0:  # the norm family may not be registered; any type will do
        w.quick.edit.clear()
        qtbot.keyClicks(w.quick.edit, "relu")
    chosen = w.quick.list.currentItem().data(Qt.ItemDataRole.UserRole + 1)
    qtbot.keyClick(w.quick.edit, Qt.Key.Key_Return)
    assert not w.quick.isVisible()
    node = w.scene.graph.net.nodes[-1]
    assert node.type == chosen
    assert w.document.positions(w.scene.network)[node.id] == [100.0, 50.0]
    # Tab on the canvas opens it too.
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key.Key_Tab)
    assert w.quick.isVisible()
    w.quick.hide()
    w.document.undo_stack.setClean()


def test_menus_shortcuts_theme_and_run_menu(env, qtbot):
    w = make_window(qtbot)
    shortcuts = {a.text().replace("&", ""): a.shortcut().toString()
                 for m in w.menuBar().actions() if m.menu() for a in m.menu().actions()}
    for name in ("Save", "Open…", "Undo", "Redo", "Copy", "Paste", "Duplicate", "Delete",
                 "Fit to View", "Auto-Layout", "Make Block from Selection…"):
        assert shortcuts.get(name), f"{name} has no shortcut"
    menus = [m.text().replace("&", "") for m in w.menuBar().actions()]
    assert "Run" in menus
    from PySide6.QtWidgets import QLabel

    dock = w.add_dock(QLabel("extra"), "Extra", Qt.DockWidgetArea.BottomDockWidgetArea)
    assert w.dockWidgetArea(dock) == Qt.DockWidgetArea.BottomDockWidgetArea
    from builder import theme

    assert theme.current().name == "dark"
    w.set_theme("light")
    assert theme.current().name == "light"
    assert QApplication.palette().window().color().lightness() > 200
    assert QSettings().value("theme") == "light"
    w.grab().save(str(SHOTS / "window_light.png"))
    w.set_theme("dark")


def test_closing_with_unsaved_changes_asks(env, qtbot):
    w = make_window(qtbot)
    w.scene.add_node("activation.relu", QPointF(0, 0))
    assert w.document.dirty
    w.answer = False
    assert not w.close()
    assert w.asked and "unsaved" in w.asked[-1]
    w.answer = True
    assert w.close()
    # Geometry and dock state were stored for the next start.
    assert QSettings().value("geometry") is not None


def test_run_app_opens_a_file_and_returns_the_exit_code(env, qtbot):
    from builder.app import run_app
    from compiler.project import save

    path = env / "two.loom"
    save(_gan_like(), path)
    seen = {}

    def stop():
        from builder.main_window import MainWindow

        wins = [x for x in QApplication.topLevelWidgets() if isinstance(x, MainWindow)
                and x.isVisible()]
        win = wins[-1]
        seen["title"] = win.windowTitle()
        seen["tabs"] = win.tabs.count()
        win.close()
        QApplication.instance().exit(0)

    QTimer.singleShot(300, stop)
    assert run_app(path=str(path)) == 0
    assert "two.loom" in seen["title"] and seen["tabs"] == 2
