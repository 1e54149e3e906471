"""Dashboard pieces on hand-written event files (fast; the real runner: test_dashboard_live)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from PySide6.QtGui import QColor, QImage

from builder.dashboard import TrainingPanel
from builder.dashboard.plots import PlotArea
from builder.dashboard.runs import RunData, Series, format_duration, runs_root
from builder.dashboard.samples import SamplesView
from compiler import Project, add_network

SHOTS = Path(__file__).parent / "screenshots"


def _events(run_dir: Path, events: list[dict]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "events.jsonl", "w") as fh:
        for ev in events:
            fh.write(json.dumps(ev) + "\n")
    return run_dir


def _started(t: float = 100.0, start: int = 0) -> dict:
    return {"event": "started", "run_id": "r", "recipe": "classification", "dataset": "digits",
            "device": "cpu", "device_name": "CPU", "device_reason": "no GPU", "total_steps": 40,
            "steps_per_epoch": 10, "config": {}, "time": t, "start_step": start}


def test_series_grows_and_smooths():
    s = Series(capacity=4)
    for i in range(1000):
        s.append(i, i / 10, i * 0.1, float(i % 7))
    assert s.n == 1000 and s.values[-1] == 999 % 7 and s.epochs[10] == 1.0
    sm = s.smoothed(0.9)
    assert len(sm) == 1000 and abs(sm[0] - 0.0) < 1e-12
    s.append(1000, 100, 100, 5.0)  # incremental update equals a full recompute
    full = Series()
    full.extend(s.steps, s.epochs, s.times, s.values)
    assert np.allclose(s.smoothed(0.9), full.smoothed(0.9))
    s.truncate_after(500)
    assert s.n == 501 and s.steps[-1] == 500


def test_run_from_events_expands_losses_and_handles_resume(tmp_path):
    d = _events(tmp_path / "run1", [
        _started(),
        {"event": "metric", "step": 4, "epoch": 0.4, "split": "train", "loss": 1.5,
         "losses": [2.0, 1.6, 1.4, 1.0], "lr": 0.01, "samples_per_s": 500, "time": 101},
        {"event": "metric", "step": 4, "epoch": 0.4, "split": "val", "loss": 1.2,
         "accuracy": 0.5, "time": 101.5},
        {"event": "checkpoint", "step": 4, "path": "x", "time": 101.6},
        {"event": "metric", "step": 8, "epoch": 0.8, "split": "train", "loss": 0.9,
         "losses": [1.0, 0.9, 0.9, 0.8], "lr": 0.01, "time": 102},
        # killed here; resumed from the step-4 checkpoint
        _started(200.0, start=4), {"event": "resumed", "step": 4, "time": 200},
        {"event": "metric", "step": 8, "epoch": 0.8, "split": "train", "loss": 0.95,
         "losses": [1.0, 0.9, 0.95, 0.95], "lr": 0.01, "time": 201},
        {"event": "finished", "step": 8, "metrics": {"loss": 0.7, "accuracy": 0.8},
         "duration_s": 3, "time": 203},
    ])
    run = RunData.load(d)
    loss = run.series[("train", "loss")]
    assert list(loss.steps) == [1, 2, 3, 4, 5, 6, 7, 8]  # replayed steps are not doubled
    assert loss.values[-1] == 0.95
    assert run.series[("val", "accuracy")].n == 1 and run.status == "finished"
    assert run.summary() == "accuracy 0.8, loss 0.7"
    assert run.duration_s == 2 + 3  # active time, not the gap while it was down


def test_unfinished_run_reads_as_failed(tmp_path):
    run = RunData.load(_events(tmp_path / "r", [_started(), {"event": "metric", "step": 1,
                                                            "split": "train", "loss": 1.0}]))
    assert run.status == "failed" and "without finishing" in run.failure.reason
    assert not run.resumable
    (tmp_path / "r" / "events.jsonl").write_text('{"event": "started"\n')  # torn line
    assert RunData.load(tmp_path / "r").status == "failed"


def test_runs_root_and_duration():
    assert runs_root(Path("/a/b/net.loom")) == Path("/a/b/net.runs")
    assert format_duration(75) == "1m 15s" and format_duration(3.25) == "3.2s"


def test_100k_points_stay_fast(qtbot):
    area = PlotArea(interval_ms=10_000)  # drive refresh by hand to time it
    qtbot.addWidget(area)
    area.resize(900, 600)
    area.show()
    run = RunData(Path("big"))
    run.apply(_started(0.0))
    n = 100_000
    steps = np.arange(1, n + 1, dtype=float)
    for key in (("train", "loss"), ("train", "accuracy")):
        run.series[key] = s = Series()
        s.extend(steps, steps / 100, steps * 0.01, np.exp(-steps / 3e4) + 0.01 * np.sin(steps))
    area.set_runs([run])
    area.grab()
    assert area.points("big", "train", "loss") == n
    times = []
    for i in range(10):  # a live run: 50 new points per timer tick, then a repaint
        run.series[("train", "loss")].extend(steps[:50] + n + 50 * i, steps[:50], steps[:50],
                                             np.ones(50))
        t = time.perf_counter()
        area.refresh()
        area.canvas.repaint()
        times.append(time.perf_counter() - t)
    assert area.points("big", "train", "loss") == n + 500
    assert sorted(times)[5] < 0.1, times  # median tick well under the UI budget
    area.smoothing.setValue(90)
    area.x_axis.setCurrentText("time")
    area.log_y.setChecked(True)
    area.reset_view()
    assert area.curve_count() == 2


def test_samples_show_images_text_and_confusion(qtbot, tmp_path):
    img = QImage(64, 32, QImage.Format.Format_RGB32)
    img.fill(QColor("#3366aa"))
    png = tmp_path / "step_000010_samples.png"
    img.save(str(png))
    run = RunData(tmp_path)
    run.apply(_started())
    run.apply({"event": "sample", "step": 10, "kind": "image", "path": str(png)})
    run.apply({"event": "sample", "step": 10, "kind": "text", "text": "hello world"})
    run.apply({"event": "sample", "step": 10, "kind": "confusion",
               "matrix": [[5, 1, 0], [0, 6, 0], [2, 0, 4]], "labels": ["a", "b", "c"]})
    view = SamplesView()
    qtbot.addWidget(view)
    view.resize(700, 500)
    view.show_run(run)
    assert sorted(view.shown_kinds()) == ["confusion", "image:samples", "text"]
    run.apply({"event": "sample", "step": 20, "kind": "image",
               "path": str(tmp_path / "step_000020_samples.png")})  # replaces, not adds
    view.show_run(run)
    assert len(view.shown_kinds()) == 3
    SHOTS.mkdir(exist_ok=True)
    view.grab().save(str(SHOTS / "dashboard_samples_units.png"))


def _tiny() -> Project:
    p = Project(name="tiny")
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 64])
    g.chain(x, ("linear.linear", {"out_features": 16}, "fc1"), ("activation.relu", {}, "act"),
            ("linear.linear", {"out_features": 10}, "fc2"), ("io.output", {}, "logits"))
    p.training.recipe, p.training.dataset = "classification", "digits-flat"
    return p


def test_setup_problems_shown_before_any_run(qtbot, tmp_path):
    p = _tiny()
    panel = TrainingPanel(lambda: p, lambda: tmp_path / "tiny.loom")
    qtbot.addWidget(panel)
    panel.show()
    panel.form.dataset.setCurrentIndex(panel.form.dataset.findData("csv"))
    panel.form.path.setText(str(tmp_path / "missing.csv"))
    panel.start()
    assert panel.proc is None and panel.failure.isVisible()
    assert "file not found" in panel.failure.text()
    assert p.training.dataset == "csv"  # the form is saved in the project
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\nx,\n")
    panel.form.path.setText(str(bad))
    panel.form.fields["lr"].setText("-1")
    panel.start()
    assert panel.proc is None and "lr" in panel.failure.text()
    assert not (tmp_path / "tiny.runs").exists() or not any((tmp_path / "tiny.runs").iterdir())


def test_history_is_listed_from_disk(qtbot, tmp_path):
    root = tmp_path / "m.runs"
    _events(root / "20260101-000000", [_started(), {"event": "stopped", "step": 3, "time": 105}])
    _events(root / "20260101-000100", [_started(), {"event": "finished", "step": 40,
                                                    "metrics": {"accuracy": 0.9}, "time": 130}])
    p = _tiny()
    panel = TrainingPanel(lambda: p, lambda: tmp_path / "m.loom")
    qtbot.addWidget(panel)
    items = [panel.run_list.topLevelItem(i) for i in range(panel.run_list.topLevelItemCount())]
    # runs from before runs had names read as their start time
    assert [(i.text(0), i.text(1)) for i in items] == [("00:01:00", "finished"),
                                                       ("00:00:00", "stopped")]
    assert "accuracy 0.9" in items[0].text(3) and items[0].text(2) == "30s"


def test_warning_events_are_kept_and_do_not_end_the_run(tmp_path):
    run = RunData(tmp_path)
    run.apply({"event": "started", "total_steps": 10, "time": 1.0})
    run.apply({"event": "warning", "step": 4, "kind": "diverged", "time": 2.0,
               "message": "the loss is 10x its start", "hint": "lower the learning rate"})
    assert run.status == "running" and not run.terminal
    assert [w["kind"] for w in run.warnings] == ["diverged"]
