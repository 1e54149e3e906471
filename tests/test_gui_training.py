"""The training dashboard inside the main window: Run menu keys, settings as undoable edits,
the banner on graph edits during a run, and closing while a run is live."""

from __future__ import annotations

import pytest
from helpers import isolated_app
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from compiler.project import save

SHOTS = __import__("conftest").SCREENSHOTS
TIMEOUT = 90_000


@pytest.fixture
def window(tmp_path, monkeypatch, qtbot):
    import templates
    from builder.file_actions import lay_out_all
    from builder.main_window import MainWindow

    isolated_app(tmp_path, monkeypatch)
    p = templates.build("mlp-digits")
    p.training.hyper = {"steps": 1_000_000, "log_every": 10, "eval_every": 100, "device": "cpu"}
    lay_out_all(p)
    path = tmp_path / "digits.loom"
    save(p, path)
    w = MainWindow()
    w.asked = []
    w.ask = lambda title, text: w.asked.append(text) or True
    w.inform = lambda title, text: None
    qtbot.addWidget(w)
    assert w.open_path(path)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    yield w, path
    if w.training.proc is not None:
        w.training.proc.kill()
        w.training.proc.proc.waitForFinished(5000)


def test_run_menu_holds_the_panel_actions_with_ide_keys(window):
    w, _ = window
    acts = {a.text().replace("&", ""): a for a in w.run_menu.actions() if a.text()}
    assert acts["Train / Resume"].shortcut() == QKeySequence("F5")
    assert acts["Stop Training"].shortcut() == QKeySequence("Shift+F5")
    assert acts["Train / Resume"] is w.training.start_action  # one owner per key
    assert acts["Train / Resume"].isEnabled() and not acts["Stop Training"].isEnabled()
    keys = [a.shortcut().toString() for m in w.menuBar().actions() if m.menu()
            for a in m.menu().actions() if not a.shortcut().isEmpty()]
    assert len(keys) == len(set(keys)), "a key is bound twice"


def test_training_settings_are_undoable_document_edits(window, qtbot):
    w, _ = window
    doc, form = w.document, w.training.form
    assert not doc.dirty and doc.project.training.hyper["steps"] == 1_000_000
    form.amount.setValue(250)
    form.amount.setValue(300)  # successive edits merge into one step
    assert doc.project.training.hyper["steps"] == 300 and doc.dirty
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert doc.project.training.hyper["steps"] == 1_000_000 and not doc.dirty
    assert form.amount.value() == 1_000_000  # the form follows the undo
    doc.undo_stack.redo()
    assert form.amount.value() == 300


def test_f5_trains_in_the_window_banner_on_edit_shift_f5_stops(window, qtbot):
    w, path = window
    panel = w.training
    with qtbot.waitSignal(panel.run_started, timeout=5000):
        QTest.keyClick(w, Qt.Key.Key_F5)
    assert w.docks["Training"].isVisible()
    assert (path.parent / "digits.runs").is_dir()
    qtbot.waitUntil(lambda: panel.plots.points(panel.current.run_id, "train", "loss") >= 5,
                    timeout=TIMEOUT)
    assert not w.training.start_action.isEnabled() and w.training.stop_action.isEnabled()

    # an edit through the editor's command reaches the banner at once; the run is untouched
    from builder.commands import SetParamsCommand, push

    g = w.document.graph("net")
    fc = next(n for n in g.net.nodes if n.type == "linear.linear")
    push(w.document, SetParamsCommand(w.document, "net", fc.id,
                                      {"out_features": fc.params.get("out_features", 32) + 1}))
    assert panel.banner.isVisible()
    w.grab().save(str(SHOTS / "window_training.png"))

    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as done:
        QTest.keyClick(w, Qt.Key.Key_F5, Qt.KeyboardModifier.ShiftModifier)
    assert done.args[1] == "stopped"
    assert w.document.project.networks[0].nodes  # the document is intact


def test_closing_during_a_run_asks_and_stops_it(window, qtbot):
    w, _ = window
    panel = w.training
    with qtbot.waitSignal(panel.run_started, timeout=5000):
        w.training.start_action.trigger()
    qtbot.waitUntil(lambda: panel.current.status == "running", timeout=TIMEOUT)
    w.close()
    assert any("Training is running" in t or "Stop the run" in t for t in w.asked)
    assert not panel.running()
    assert panel.current.status in ("stopped", "failed")


def test_journey_learn_resnet_train_change_repeat_train_again_overlay(tmp_path, monkeypatch,
                                                                      qtbot):
    """Journey 1 in the window: ResNet-18 (small) trains with F5 and shows curves; stage 3's
    depth goes up by 2 (more parameters); F5 trains the edited graph; the two runs overlay."""
    from builder.main_window import MainWindow

    isolated_app(tmp_path, monkeypatch)
    w = MainWindow()
    w.ask = lambda title, text: True
    w.inform = lambda title, text: None
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    assert w.open_template("resnet18-small")
    w.choose_file = lambda *a: str(tmp_path / "resnet.loom")
    assert w.save_as()
    panel = w.training
    panel.form.budget.setCurrentText("steps")
    panel.form.amount.setValue(4)
    hyper = w.document.project.training.hyper
    # a small batch: the journey checks curves, snapshots and overlays, not what ResNet learns
    w.document.project.training.hyper = {**hyper, "log_every": 1, "eval_every": 4,
                                         "max_val_samples": 64, "batch_size": 16,
                                         "device": "cpu"}
    panel.load_settings()

    def train_once() -> str:
        with qtbot.waitSignal(panel.run_started, timeout=10_000,
                              raising=False) as started:
            panel.start_action.trigger()  # Run ▸ Train (F5; the key itself is tested above)
        assert started.signal_triggered, panel.failure.text()
        with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as finished:
            pass
        assert finished.args[1] == "finished", panel.current.failure
        return started.args[0]

    first = train_once()
    assert panel.plots.points(first, "train", "loss") == 4
    assert "accuracy" in panel.plots.plot_names()

    blocks = [n for n in w.scene.graph.net.nodes if n.type == "block.block"]
    stage3 = next(n for n in blocks if n.name == "layer3")  # a Stage: projection block + `blocks`
    params_before = w.document.summaries()
    w.scene.select([stage3.id])
    depth = w.inspector.editors["args.blocks"]  # identity blocks after the first: 2 -> 4 in all
    old = depth.value()
    depth.setValue(old + 2)
    w.document.analyze_now()
    assert not w.document.analysis.errors and stage3.params["args"]["blocks"] == old + 2
    assert w.document.summaries() != params_before

    second = train_once()
    runs = {first, second}
    panel.select_runs(sorted(runs))
    assert {r.run_id for r in panel.plots.runs} == runs
    assert panel.plots.points(first, "train", "loss") == 4
    assert panel.plots.points(second, "train", "loss") == 4
    from compiler import load

    snap1 = load(tmp_path / "resnet.runs" / first / "project.loom")
    snap2 = load(tmp_path / "resnet.runs" / second / "project.loom")
    reps = [next(n.params["args"]["blocks"] for n in p.networks[0].nodes if n.id == stage3.id)
            for p in (snap1, snap2)]
    assert reps == [old, old + 2]  # each run trained the graph as it was when it started
    w.grab().save(str(SHOTS / "journey1_two_runs_overlaid.png"))
    w.document.undo_stack.setClean()
