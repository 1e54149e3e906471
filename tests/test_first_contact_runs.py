"""Issue 13, the training side as a new user meets it in the window: projects never share runs,
the data meets the model before a run starts, runs have names, and the plots stay readable.

Each test drives the real main window (keys, clicks, the real runner process) or the real
dashboard widgets; none replaces a part of the app.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import isolated_app
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

SHOTS = __import__("conftest").SCREENSHOTS
TIMEOUT = 90_000


def _digits(steps: int = 30):
    import templates

    p = templates.build("mlp-digits")
    p.training.hyper = {"steps": steps, "log_every": 5, "eval_every": 10, "device": "cpu"}
    return p


@pytest.fixture
def window(tmp_path, monkeypatch, qtbot):
    from builder.file_actions import lay_out_all
    from builder.main_window import MainWindow

    isolated_app(tmp_path, monkeypatch)
    w = MainWindow()
    w.asked = []
    w.ask = lambda title, text: w.asked.append(text) or True
    w.ask_unsaved = lambda text: "discard"
    w.inform = lambda title, text: None
    qtbot.addWidget(w)
    p = _digits()
    lay_out_all(p)
    w.document.set_project(p, None)  # a template opened and not saved yet
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.training.shutdown(3000)


def _rows(panel) -> list[tuple[str, str]]:
    tree = panel.run_list
    return [(tree.topLevelItem(i).text(0), tree.topLevelItem(i).text(1))
            for i in range(tree.topLevelItemCount())]


def _train(qtbot, w) -> str:
    """F5 in the window, then wait for the run to end; returns its id."""
    panel = w.training
    with qtbot.waitSignal(panel.run_started, timeout=10_000) as started:
        QTest.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: not panel.running() and panel.current.terminal, timeout=TIMEOUT)
    return started.args[0]


@pytest.mark.slow  # one real run: ~10 s on a quiet machine, more on a loaded one
def test_unsaved_projects_never_share_runs(window, qtbot):
    from builder.dashboard.runs import read_events

    w = window
    panel = w.training
    panel.form.amount.setValue(1_000_000)  # still training when the user moves on
    with qtbot.waitSignal(panel.run_started, timeout=10_000) as started:
        QTest.keyClick(w, Qt.Key.Key_F5)
    run_id = started.args[0]
    qtbot.waitUntil(lambda: panel.plots.points(run_id, "train", "loss") >= 2, timeout=TIMEOUT)
    first_root = panel.home.root()
    assert (first_root / run_id / "events.jsonl").exists() and len(_rows(panel)) == 1
    # an edit raises the banner of this project's run ...
    g = w.document.graph("net")
    fc = next(n for n in g.net.nodes if n.type == "linear.linear")
    g.set_params(fc.id, out_features=fc.params.get("out_features", 32) + 1)
    panel.graph_changed()
    assert panel.banner.isVisible()

    # ... and another unsaved project (File ▸ New) shows none of it: no run, curve, sample,
    # banner or Resume; the first project's run is stopped with a checkpoint, not adopted
    w.new_project()
    assert not panel.running() and panel.current is None
    assert _rows(panel) == [] and panel.plots.curve_count() == 0
    assert panel.samples.shown_kinds() == [] and not panel.banner.isVisible()
    assert not panel.resume_btn.isEnabled() and panel.start_btn.isEnabled()
    assert panel.home.root() != first_root
    qtbot.waitUntil(lambda: not panel._background, timeout=TIMEOUT)
    assert read_events(first_root / run_id / "events.jsonl")[-1]["event"] == "stopped"

    # a second unsaved template (the gallery, unsaved) has a folder of its own, empty
    w.document.set_project(_digits(), None)
    assert _rows(panel) == [] and panel.home.root() != first_root
    assert panel.check(w.document.project) is None  # and F5 would train there


@pytest.mark.slow  # two real runs: ~20 s on a quiet machine
def test_runs_are_named_stop_agrees_legend_lists_every_run_and_saving_keeps_them(
        window, qtbot, tmp_path):
    w = window
    panel = w.training
    w.training.form.amount.setValue(1_000_000)  # long: the user stops it
    with qtbot.waitSignal(panel.run_started, timeout=10_000):
        QTest.keyClick(w, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: panel.plots.points(panel.current.run_id, "train", "loss") >= 2,
                    timeout=TIMEOUT)
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as done:
        qtbot.mouseClick(panel.stop_btn, Qt.MouseButton.LeftButton)
    assert done.args[1] == "stopped"
    # the status, the buttons and the list agree the moment the run says it stopped
    assert panel.progress_label.text().split(": ", 1)[1].startswith("stopped")
    assert panel.start_btn.isEnabled() and not panel.stop_btn.isEnabled()
    assert not panel.pause_btn.isEnabled() and panel.resume_btn.isEnabled()
    assert _rows(panel)[0][1] == "stopped"

    # a second run with another learning rate is named by what changed
    lr = panel.form.fields["lr"]
    lr.selectAll()
    QTest.keyClicks(lr, "0.01")  # typed, as the user does
    panel.form.amount.setValue(20)
    _train(qtbot, w)
    names = [r[0] for r in _rows(panel)]
    assert names[1].startswith("#1 mlp-digits · "), names  # the first: the template
    assert names[0].startswith("#2 lr 0.01"), names  # then: what changed
    assert " · " in names[0]
    assert names[0] != names[1]

    panel.select_runs(list(panel.runs))
    qtbot.waitUntil(lambda: len(panel.plots.runs) == 2, timeout=2000)
    panel.plots.refresh()
    legend = panel.plots.legend_entries()
    for run in panel.runs.values():  # every run, each split, by the name the list shows
        assert any(e.startswith(run.name) for e in legend), (run.name, legend)
    assert panel.plots.legend.isVisible()

    # the first save of this unsaved project moves its runs along; the list keeps them
    target = tmp_path / "mine.loom"
    w.choose_file = lambda *_a: str(target)
    unsaved_root = panel.home.root()
    names = {r.run_id: r.name for r in panel.runs.values()}
    assert w.save_as()
    for run_id in names:
        assert (tmp_path / "mine.runs" / run_id / "events.jsonl").exists()
        assert not (unsaved_root / run_id).exists()
    assert {r.run_id: r.name for r in panel.runs.values()} == names

    # File ▸ New, then open the saved project again: its runs are back, nothing else
    w.new_project()
    assert _rows(panel) == []
    assert w.open_path(target)
    qtbot.waitUntil(lambda: len(_rows(panel)) == 2, timeout=5000)
    assert sorted(r[0] for r in _rows(panel)) == sorted(names.values())


def test_data_that_does_not_fit_is_said_before_a_run_and_adapted_in_one_undoable_click(
        window, qtbot):
    w = window
    panel = w.training
    w.docks["Training"].hide()
    form = panel.form
    form.dataset.setCurrentIndex(form.dataset.findData("shapes32"))
    # the data loads in a worker (the window never waits): the notice follows within moments
    qtbot.waitUntil(lambda: panel.notices.misfit is not None, timeout=TIMEOUT)
    assert "[3, 32, 32]" in panel.notices.misfit.reason and "4 classes" in \
        panel.notices.misfit.reason

    # F5 refuses: no run folder, the status bar says why, the Training panel comes forward
    root = panel.home.root()
    QTest.keyClick(w, Qt.Key.Key_F5)
    assert not panel.running() and not root.exists()
    assert w.statusBar().currentMessage().startswith("Cannot train: the dataset's samples")
    assert w.docks["Training"].isVisible() and panel.failure.isVisible()
    assert panel.notices.fit_box.isVisible()

    def node(pred):  # undo puts back whole copies of the network: look nodes up afresh
        return next(n for n in w.document.graph("net").net.nodes if pred(n))

    before = list(node(lambda n: n.type == "io.input").params["shape"])
    qtbot.mouseClick(panel.notices.adapt_btn, Qt.MouseButton.LeftButton)
    assert node(lambda n: n.type == "io.input").params["shape"] == ["N", 3072]
    head_id = node(lambda n: n.params.get("out_features") == 4).id
    assert not panel.notices.fit_box.isVisible()
    assert w.document.undo_stack.undoText() == "Adapt the model to the data"
    w.document.undo_stack.undo()
    assert node(lambda n: n.type == "io.input").params["shape"] == before
    assert node(lambda n: n.id == head_id).params["out_features"] == 10
    w.document.undo_stack.redo()
    assert node(lambda n: n.type == "io.input").params["shape"] == ["N", 3072]
    assert panel.check(w.document.project) is None  # it would start now


def test_confusion_matrix_with_more_outputs_than_labels_paints_readable_labels(qtbot):
    from PySide6.QtGui import QColor

    from builder.dashboard.runs import RunData
    from builder.dashboard.samples import ConfusionView, SamplesView

    view = SamplesView()
    qtbot.addWidget(view)
    view.resize(500, 500)
    view.show()
    run = RunData(Path("r"))
    matrix = [[5 if i == j else 0 for j in range(10)] for i in range(10)]  # 10 outputs
    run.apply({"event": "sample", "kind": "confusion", "step": 3, "matrix": matrix,
               "labels": ["circle", "square", "triangle", "cross"]})  # 4 labels in the data
    view.show_run(run)
    conf = next(w for w in view.findChildren(ConfusionView))
    img = conf.grab().toImage()  # paints: raised IndexError before
    assert conf.labels[:4] == ["circle", "square", "triangle", "cross"]
    assert conf.labels[4:] == [str(i) for i in range(4, 10)]
    # the labels use the theme's text colour, so they read on the dark background
    text = conf.palette().color(conf.foregroundRole())
    bg = conf.palette().color(conf.backgroundRole())
    assert abs(text.lightness() - bg.lightness()) > 100
    found = {QColor(img.pixel(x, y)).lightness() for x in range(0, 34) for y in range(18, 200)}
    assert any(abs(v - text.lightness()) < 40 for v in found if v != bg.lightness())


def test_vae_shows_prior_samples_and_reconstructions_with_labelled_rows(qtbot, tmp_path):
    import templates
    from builder.dashboard.runs import RunData
    from builder.dashboard.samples import SamplesView
    from training.runner import run as train

    p = templates.build("vae-digits")
    p.training.hyper = {"steps": 4, "log_every": 2, "eval_every": 4, "device": "cpu"}
    ev = train(p, tmp_path / "run")
    assert ev["event"] == "finished", ev
    run = RunData.load(tmp_path / "run")
    assert {"image:recon", "image:prior"} <= set(run.samples)
    assert run.samples["image:recon"]["rows"] == ["data", "model"]
    view = SamplesView()
    qtbot.addWidget(view)
    view.show()
    view.show_run(run)
    titles = sorted(t.text() for _, t, _ in view._slots.values())
    assert titles[0].startswith("Reconstructions") and titles[1].startswith("Samples from the "
                                                                             "prior")
    pix = view._slots["image:prior"][2].pixmap()
    assert pix is not None and not pix.isNull()


def test_plots_keep_their_height_when_the_panel_is_short_and_empty_plots_have_no_legend(
        qtbot):
    from builder.dashboard.plots import MIN_PLOT_H, PlotArea
    from builder.dashboard.runs import RunData

    area = PlotArea(interval_ms=0)
    qtbot.addWidget(area)
    area.resize(700, 260)  # a short bottom dock
    area.show()
    area.prepare(["loss", "accuracy", "lr"])  # laid out before the first point
    assert not area.legend.isVisible() and area.legend_entries() == []
    run = RunData(Path("20260101-120000"), meta={"number": 1, "label": "mlp", "time": 0})
    run.apply({"event": "started", "total_steps": 50, "time": 1.0})
    for step in range(1, 40):
        run.apply({"event": "metric", "split": "train", "step": step, "loss": 1 / step,
                   "accuracy": step / 40, "lr": 1e-3, "time": 1.0 + step})
        if step % 10 == 0:
            run.apply({"event": "metric", "split": "val", "step": step, "loss": 1.2 / step,
                       "accuracy": step / 45, "kl": 0.1, "time": 1.0 + step})
    area.set_runs([run])
    qtbot.wait(50)
    assert len(area.plot_names()) == 4  # loss, accuracy, kl, lr: two rows of two
    assert area.canvas.height() >= 2 * MIN_PLOT_H
    assert area.scroll.verticalScrollBar().maximum() > 0  # the short panel scrolls instead
    assert area.legend_entries() == [f"{run.name}: train", f"{run.name}: val"]
    # the legend is a row above the plots, not a box on the curves
    assert area.legend.geometry().bottom() <= area.scroll.geometry().top()


def test_first_run_of_a_template_names_it_and_the_meta_is_on_disk(tmp_path):
    """Names come from run.json, written once as the run starts (no Qt needed)."""
    import templates
    from builder.dashboard.naming import display_name, read_meta, what_changed, write_meta

    p = templates.build("mlp-digits")
    q = p.model_copy(deep=True)
    q.training.hyper = {**q.training.hyper, "lr": 0.01}
    assert what_changed(None, p) == p.name
    assert what_changed(p, q) == "lr 0.01"
    write_meta(tmp_path, 2, what_changed(p, q))
    meta = read_meta(tmp_path)
    assert json.loads((tmp_path / "run.json").read_text())["number"] == 2
    assert display_name("x", meta).startswith("#2 lr 0.01 · ")


def test_first_save_moves_finished_runs_now_and_a_live_one_once_it_exits(tmp_path, monkeypatch):
    """RunsHome (no Qt): each unsaved project its own folder; the first save moves the runs."""
    import templates
    from builder.dashboard.home import RunsHome

    monkeypatch.setenv("LAYERLOOM_DATA_DIR", str(tmp_path / "data"))
    home = RunsHome()
    a, b = templates.build("mlp-digits"), templates.build("mlp-digits")
    assert home.follow(a, None) == "other"
    root_a = home.root()
    for run in ("done", "live"):
        (root_a / run).mkdir(parents=True)
        (root_a / run / "events.jsonl").write_text("{}\n")
    assert home.follow(a, None) == "same"
    assert home.follow(b, None) == "other" and home.root() != root_a  # never shared
    assert home.follow(a, None) == "other" and home.root() != root_a  # a fresh one each time

    home = RunsHome()
    home.follow(a, None)
    home._key = root_a.name[: -len(".runs")]  # the project whose runs these are
    saved = tmp_path / "a.loom"
    assert home.follow(a, saved) == "saved" and home.root() == tmp_path / "a.runs"
    assert home.take_runs(keep={"live"}) == ["done"]
    assert (tmp_path / "a.runs" / "done" / "events.jsonl").exists()
    assert home.pending_move(root_a / "live")
    assert home.take_runs(keep=set()) == ["live"] and not root_a.exists()
    assert not home.pending_move(root_a / "live")
