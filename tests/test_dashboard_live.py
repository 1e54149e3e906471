"""The Train panel driving the real runner process on a small template."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from builder.dashboard import TrainingPanel
from builder.dashboard.runs import RunData
from compiler.project import save

SHOTS = Path(__file__).parent / "screenshots"
TIMEOUT = 90_000


@pytest.fixture
def project(tmp_path):
    import templates

    p = templates.build("mlp-digits")
    # long enough that the test stops it; the user's pause/stop decide when it ends
    p.training.hyper = {"steps": 1_000_000, "log_every": 10, "eval_every": 100, "device": "cpu"}
    path = tmp_path / "digits.loom"
    save(p, path)
    return p, path


@pytest.fixture
def panel(qtbot, project):
    p, path = project
    w = TrainingPanel(lambda: p, lambda: path)
    qtbot.addWidget(w)
    w.resize(1200, 820)
    w.show()
    yield w
    if w.proc is not None:
        w.proc.kill()
        w.proc.proc.waitForFinished(5000)


def _points(panel: TrainingPanel, metric: str = "loss", split: str = "train") -> int:
    return panel.plots.points(panel.current.run_id, split, metric)


def test_start_pause_resume_stop(qtbot, panel, project):
    p, path = project
    with qtbot.waitSignal(panel.run_started, timeout=5000) as started:
        panel.start()
    run_id = started.args[0]
    assert (path.parent / "digits.runs" / run_id / "project.loom").exists()  # a snapshot
    qtbot.waitUntil(lambda: _points(panel) >= 10, timeout=TIMEOUT)
    assert "CPU" in panel.device_label.text()

    # editing the graph during the run touches only the document, and raises the banner
    net = p.networks[0]
    fc = next(n for n in net.nodes if n.type == "linear.linear")
    fc.params["out_features"] = fc.params.get("out_features", 32) + 1
    qtbot.waitUntil(lambda: panel.banner.isVisible(), timeout=5000)

    panel.pause()
    qtbot.waitUntil(lambda: panel.status == "paused", timeout=TIMEOUT)
    step = panel.current.step
    qtbot.wait(1500)
    assert panel.current.step == step  # nothing trains while paused
    assert panel.resume_btn.isEnabled() and not panel.pause_btn.isEnabled()
    panel.start()  # F5 resumes a paused run
    qtbot.waitUntil(lambda: panel.status == "running" and panel.current.step > step,
                    timeout=TIMEOUT)
    qtbot.waitUntil(lambda: "confusion" in panel.samples.shown_kinds(), timeout=TIMEOUT)
    panel.tabs.setCurrentIndex(0)
    SHOTS.mkdir(exist_ok=True)
    panel.grab().save(str(SHOTS / "dashboard_live.png"))
    panel.tabs.setCurrentIndex(1)
    panel.grab().save(str(SHOTS / "dashboard_samples.png"))
    panel.tabs.setCurrentIndex(0)
    assert "step" in panel.progress_label.text() and "ETA" in panel.progress_label.text()

    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as finished:
        panel.stop()
    assert finished.args == [run_id, "stopped"]
    run = RunData.load(path.parent / "digits.runs" / run_id)  # history as read after restart
    assert run.status == "stopped" and run.resumable
    assert run.series[("train", "loss")].n >= 10
    assert panel.run_list.topLevelItem(0).text(1) == "stopped"


def test_kill_runner_fails_then_overlay(qtbot, panel, project, tmp_path):
    p, path = project
    panel.start()
    first = panel.current.run_id
    qtbot.waitUntil(lambda: panel.current.checkpoint is not None, timeout=TIMEOUT)
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as ended:
        os.kill(panel.proc.pid(), signal.SIGKILL)
    assert ended.args == [first, "failed"]
    assert panel.failure.isVisible()
    assert "ended unexpectedly (exit code" in panel.failure.text()
    assert "What to try" in panel.failure.text()
    assert RunData.load(path.parent / "digits.runs" / first).status == "failed"
    assert (path.parent / "digits.runs" / first / "runner.log").exists()
    SHOTS.mkdir(exist_ok=True)
    panel.grab().save(str(SHOTS / "dashboard_failed.png"))

    # a second, short run finishes; then both runs' curves overlay
    p.training.hyper["steps"] = 30
    panel.load_settings()
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as done:
        panel.start()
    second = done.args[0]
    assert done.args[1] == "finished"
    assert panel.runs[second].final_metrics.get("accuracy") is not None
    panel.select_runs([first, second])
    qtbot.waitUntil(lambda: panel.plots.points(first, "train", "loss") > 0 and
                    panel.plots.points(second, "train", "loss") > 0, timeout=5000)
    panel.grab().save(str(SHOTS / "dashboard_overlay.png"))

    # the killed run resumes from its checkpoint, in its own folder
    panel.select_runs([first])
    assert panel.resume_run_btn.isEnabled()
    p.training.hyper["steps"] = 1_000_000
    panel.resume_run(first)
    qtbot.waitUntil(lambda: panel.status == "running", timeout=TIMEOUT)
    with qtbot.waitSignal(panel.run_finished, timeout=TIMEOUT) as stopped:
        panel.stop()
    assert stopped.args == [first, "stopped"]

    code = panel.export_code(second, tmp_path / "model.py")
    assert "class" in code.read_text()
    import torch

    w = torch.load(panel.export_weights(second, tmp_path / "w.pt"), weights_only=True)
    assert set(w) == {"net"} or len(w) == 1
