"""The Search panel inside the main window (issue 12): a choice made through the Inspector's
"Search over…" menu is an undoable edit with a canvas badge and a space size; a real search run
from the panel (the CLI's child process, real training) puts a point in the scatter and a row in
the table, and clicking either opens that architecture as a new window."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from helpers import isolated_app, make_window, mlp_project
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QLabel

from compiler.project import save

ROOT = Path(__file__).resolve().parent.parent


def _node_id(w, name: str) -> str:
    return next(n.id for n in w.document.project.networks[0].nodes if n.name == name)


def _answer_dialog(values: str, label: str | None = None) -> None:
    """Fill the modal "Search over…" dialog when it opens, as a user would, and press OK."""
    from builder.search.inspector_menu import SearchOverDialog

    def fill() -> None:
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, SearchOverDialog):
            QTimer.singleShot(20, fill)
            return
        dlg.set_domain("values", values)
        if label:
            dlg.label.setText(label)
        ok = dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
        QTest.mouseClick(ok, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, fill)


def _search_over(w, key: str, values: str, label: str | None = None) -> None:
    from builder.search.inspector_menu import param_menu

    menu = param_menu(w.inspector, key)
    action = next(a for a in menu.actions() if a.text() in ("Search over…",
                                                             "Change search domain…"))
    _answer_dialog(values, label)
    action.trigger()


def test_search_over_is_an_undoable_choice_with_a_badge_and_a_size(tmp_path, monkeypatch,
                                                                     qtbot):
    isolated_app(tmp_path, monkeypatch)
    w = make_window(qtbot, mlp_project())
    doc, fc1 = w.document, _node_id(w, "fc1")
    w.inspector.show_node("net", fc1)
    _search_over(w, "out_features", "16, 32, 64")
    qtbot.waitUntil(lambda: bool(doc.project.search.choices), timeout=5000)
    (choice,) = doc.project.search.choices
    assert (choice.scope, choice.node, choice.param) == ("net", fc1, "out_features")
    assert choice.domain.kind == "values" and choice.domain.values == [16, 32, 64]
    # the Inspector shows the domain instead of the one value; the node wears the badge
    shown = w.inspector.findChild(QLabel, "search_domain_out_features")
    assert shown is not None and "[16, 32, 64]" in shown.text()
    item = w.scene.nodes[fc1]
    assert item.search_labels == ["out_features (out_features)"]
    assert "searched" in item.toolTip()
    size = w.statusBar().findChild(QLabel, "search_space_size")
    assert "3 architectures" in size.text()
    assert "3 architectures" in w.search_panel.space_summary()
    assert w.search_panel.space.tree.topLevelItemCount() == 1

    _search_over(w, "out_features", "16, 32, 64, 128")  # change the domain: one undo step
    qtbot.waitUntil(lambda: len(doc.project.search.choices[0].domain.values) == 4, timeout=5000)
    assert "4 architectures" in size.text()

    doc.undo_stack.undo()  # back to three values
    assert doc.project.search.choices[0].domain.values == [16, 32, 64]
    doc.undo_stack.undo()  # no choice at all
    assert doc.project.search.choices == []
    assert item.search_labels == [] and not size.isVisible()
    assert w.inspector.findChild(QLabel, "search_domain_out_features") is None
    doc.undo_stack.redo()
    assert doc.project.search.choices[0].domain.values == [16, 32, 64]
    assert w.scene.nodes[fc1].search_labels

    # the panel's Remove button and its settings are document edits too
    w.search_panel.space.remove.click()
    assert doc.project.search.choices == []
    doc.undo_stack.undo()
    assert len(doc.project.search.choices) == 1
    w.search_panel.trials.setValue(7)
    assert doc.project.search.trials == 7 and len(doc.project.search.choices) == 1
    doc.undo_stack.undo()
    assert doc.project.search.trials == 20


def test_a_refused_domain_names_why_and_changes_nothing(tmp_path, monkeypatch, qtbot):
    isolated_app(tmp_path, monkeypatch)
    w = make_window(qtbot, mlp_project())
    doc = w.document
    w.inspector.show_node("net", _node_id(w, "fc1"))
    steps = doc.undo_stack.count()
    _search_over(w, "out_features", "16, -3")  # a width the param refuses
    qtbot.waitUntil(lambda: "Refused" in w.inspector.error.text(), timeout=5000)
    assert doc.project.search.choices == [] and doc.undo_stack.count() == steps


def test_table_and_scatter_follow_the_search_events(tmp_path, monkeypatch, qtbot):
    """The event stream of the contract: rejected and failed trials are rows with their reason
    but no point; the front is the one the search reports; a running trial shows its step."""
    isolated_app(tmp_path, monkeypatch)
    w = make_window(qtbot, mlp_project())
    panel = w.search_panel
    feed = panel.on_event
    feed({"event": "search_started", "study_dir": str(tmp_path), "space_size": 3,
          "strategy": "evolution", "trials_planned": 4, "metric_name": "accuracy",
          "higher_is_better": True, "objective": "params", "trials_done": 0})
    base = {"latency_ms": None, "duration_s": 3.0, "project": None}
    trials = [(0, "complete", 0.80, 5000, None), (1, "complete", 0.90, 20000, None),
              (2, "rejected", None, 900000, "2 params over max_params 100000"),
              (3, "failed", None, None, "the training process ended (exit code -9)")]
    for n, state, metric, params, reason in trials:
        feed({"event": "trial_started", "number": n, "choices": {"w": n}})
        if n == 1:
            feed({"event": "trial_metric", "number": 1, "step": 6, "loss": 1.0, "metric": 0.5,
                  "split": "val"})
            assert panel.table.item(panel.table.rows[1], 1).text() == "running (step 6)"
            assert panel.curves.data[1] == ([6.0], [0.5])
        feed({"event": "trial_finished", "number": n, "state": state, "choices": {"w": n},
              "metric": metric, "params": params, "flops": params, "cost": params,
              "reason": reason, **base})
    feed({"event": "front", "numbers": [0, 1]})
    assert panel.table.rowCount() == 4
    why = {n: panel.table.item(panel.table.rows[n], 7).text() for n in range(4)}
    assert "max_params" in why[2] and "exit code" in why[3] and why[0] == ""
    assert panel.scatter.plotted() == [0, 1]  # no metric, no point
    xs, ys = panel.scatter.front_marks.getData()
    assert list(ys) == [0.80, 0.90] and xs[0] == pytest.approx(math.log10(5000))
    assert "4 trials finished of 4" in panel.state.text()
    feed({"event": "search_finished", "best": 1, "front": [1], "stopped": False})
    assert list(panel.scatter.front_marks.getData()[1]) == [0.90]
    assert "best: trial 1" in panel.state.text()
    # a trial without an architecture file cannot open, and says why
    assert panel.open_trial(2) is None


@pytest.mark.slow
def test_search_panel_runs_a_search_and_opens_a_trial(tmp_path, monkeypatch, qtbot):
    """Start from the panel: a real child search (1 trial of a few steps), then open it."""
    import templates

    isolated_app(tmp_path, monkeypatch)
    p = templates.build("mlp-digits")
    p.training.hyper = {**p.training.hyper, "log_every": 1, "eval_every": 2, "device": "cpu"}
    w = make_window(qtbot, p)
    doc = w.document
    w.inspector.show_node("net", _node_id(w, "fc1"))
    _search_over(w, "out_features", "8, 16", label="width")
    qtbot.waitUntil(lambda: bool(doc.project.search.choices), timeout=5000)
    path = tmp_path / "mlp.loom"
    save(doc.project, path)
    assert w.open_path(path)
    panel = w.search_panel
    panel.strategy.setCurrentIndex(panel.strategy.findData("random"))
    panel.trials.setValue(2)
    panel.steps.setValue(4)
    assert doc.project.search.strategy == "random" and doc.project.search.steps == 4
    assert panel.start_btn.isEnabled()
    panel.start_btn.click()
    assert panel.running() and panel.stop_btn.isEnabled()
    assert (tmp_path / "mlp.search" / "base.loom").exists()
    # the first trial lands in the table and the scatter
    qtbot.waitUntil(lambda: bool(panel.scatter.plotted()), timeout=120_000)
    number = panel.scatter.plotted()[0]
    assert panel.table.rowCount() >= 1
    assert panel.table.records[number]["state"] == "complete"
    _shoot(w, panel)
    panel.stop_btn.click()  # the second trial (if it started) is stopped with the search
    qtbot.waitUntil(lambda: not panel.running(), timeout=60_000)
    assert not panel.stop_btn.isEnabled() and panel.resume_btn.isEnabled()

    # click the trial's row: its architecture opens as a new project window
    row = panel.table.rows[number]
    rect = panel.table.visualRect(panel.table.model().index(row, 2))
    QTest.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.opened, "clicking the row opened nothing"
    win = panel.opened[-1]
    qtbot.addWidget(win)
    rec = panel.table.records[number]
    fc1 = next(n for n in win.document.project.networks[0].nodes if n.name == "fc1")
    assert fc1.params["out_features"] == rec["choices"]["width"]
    assert win.document.project.search.choices == []  # an ordinary project
    assert f"Trial {number}" in win.docks
    # clicking the scatter point opens it too
    spot = next(s for s in panel.scatter.points.points() if s.data() == number)
    panel.scatter.points.sigClicked.emit(panel.scatter.points, [spot], None)
    assert len(panel.opened) == 2


def _shoot(w, panel) -> None:
    """docs/search.png: the Search dock during a search (scatter and table)."""
    import os

    if os.environ.get("LAYERLOOM_SHOTS") != "1":
        return
    dock = w.docks["Search"]
    dock.setFloating(True)
    dock.resize(1200, 560)
    QApplication.processEvents()
    dock.grab().save(str(ROOT / "docs" / "search.png"))
