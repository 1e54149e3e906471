"""File ▸ Export ▸ ONNX… runs in a child process: the window's event loop keeps running while it
exports, the status bar tells the progress, and one dialog the result (per network its max
|diff| against torch, or what stopped it)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import isolated_app, make_window, mlp_project
from PySide6.QtCore import QTimer

from compiler import add_network


@pytest.fixture
def env(tmp_path, monkeypatch):
    isolated_app(tmp_path, monkeypatch)
    return tmp_path


class _Ticks:
    """Counts a 10 ms timer's ticks and the longest gap between two: a blocked event loop shows
    as one long gap."""

    def __init__(self) -> None:
        self.count, self.gap, self.last = 0, 0.0, time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gap = max(self.gap, now - self.last)
        self.last, self.count = now, self.count + 1


def _export(w, qtbot, folder: Path) -> tuple[float, _Ticks, float]:
    """Start the export and wait for its dialog; (seconds trigger() took, ticks, total)."""
    from builder.weights_actions import export_onnx

    before = len(w.messages)
    ticks = _Ticks()
    t0 = time.perf_counter()
    job = export_onnx(w, str(folder))
    started = time.perf_counter() - t0
    assert job is not None and job.running()
    assert not w.export_onnx_action.isEnabled()  # one export at a time
    qtbot.waitUntil(lambda: len(w.messages) > before, timeout=240_000)
    ticks.timer.stop()
    return started, ticks, time.perf_counter() - t0


@pytest.mark.timeout(60)
def test_starting_an_export_returns_at_once(env: Path, qtbot) -> None:
    """The action hands the work to a child and returns; the event loop runs while the child
    starts (torch alone takes seconds to import there); stopping it leaves nothing running."""
    from builder.weights_actions import export_onnx

    w = make_window(qtbot, mlp_project())
    qtbot.wait(300)  # the new window's first layout and analysis
    enabled = w.export_onnx_action.isEnabled()
    t0 = time.perf_counter()
    job = export_onnx(w, str(env / "onnx"))
    assert time.perf_counter() - t0 < 2.0
    assert job is not None and job.running() and w.onnx_job is job
    assert "Exporting ONNX" in w.statusBar().currentMessage()
    assert export_onnx(w, str(env / "other")) is None  # one at a time
    assert w.messages[-1][0] == "ONNX export running"
    ticks = _Ticks()
    qtbot.wait(1000)
    ticks.timer.stop()
    assert job.running() and ticks.count >= 5 and ticks.gap < 0.5, (ticks.count, ticks.gap)
    job.cancel()
    assert not job.running()
    assert w.export_onnx_action.isEnabled() == enabled and w.onnx_job is None


@pytest.mark.slow  # a child process that imports torch: seconds on the shared machine
@pytest.mark.timeout(300)
def test_the_window_stays_live_while_a_failing_export_runs(env: Path, qtbot) -> None:
    """Runs without the ONNX extra too: the child reports why it stopped (the extra missing, or
    the folder that cannot be written), and the window kept running meanwhile."""
    w = make_window(qtbot, mlp_project())
    enabled = w.export_onnx_action.isEnabled()  # greyed without the extra
    (env / "a_file").write_text("not a folder")
    started, ticks, total = _export(w, qtbot, env / "a_file" / "onnx")
    title, text = w.messages[-1]
    assert title == "ONNX not exported", text
    assert "cannot write to" in text or "pip install" in text, text
    assert started < 2.0, started
    assert ticks.count >= 20 and ticks.gap < max(0.5, total / 2), (ticks.count, ticks.gap, total)
    assert w.export_onnx_action.isEnabled() == enabled  # as it was before


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_export_in_the_background_writes_checked_files_per_network(env: Path, qtbot) -> None:
    pytest.importorskip("onnxruntime")
    project = mlp_project()
    g = add_network(project, "head")
    g.chain(("io.input", {"shape": ["N", 10]}, "z"),
            ("linear.linear", {"out_features": 3}, "out"), ("io.output", {}, "y"))
    w = make_window(qtbot, project)
    statuses: list[str] = []
    w.statusBar().messageChanged.connect(statuses.append)
    started, ticks, total = _export(w, qtbot, env / "onnx")
    title, text = w.messages[-1]
    assert title == "ONNX exported", text
    assert (env / "onnx" / "net.onnx").is_file() and (env / "onnx" / "head.onnx").is_file()
    assert text.count("max |diff|") == 2 and "network 'head'" in text
    assert any("network 'head' (2 of 2)" in s for s in statuses), statuses
    assert started < 2.0, started
    assert ticks.count >= 20 and ticks.gap < max(0.5, total / 2), (ticks.count, ticks.gap, total)
    assert w.export_onnx_action.isEnabled()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_export_that_fails_says_where(env: Path, qtbot) -> None:
    """Weights the graph has outgrown are left out, and the status bar says so; a node ONNX
    cannot express stops the export in the child, and the dialog names its network and node."""
    pytest.importorskip("onnxruntime")
    import torch

    w = make_window(qtbot, mlp_project())
    statuses: list[str] = []
    w.statusBar().messageChanged.connect(statuses.append)
    w.loaded_weights = {"net": {"fc1.weight": torch.zeros(3, 3)}}  # an edit outgrew them
    _export(w, qtbot, env / "onnx")
    assert w.messages[-1][0] == "ONNX exported", w.messages[-1]
    assert any("no longer fit net" in s and "initial weights" in s for s in statuses), statuses
    project = mlp_project()
    add_network(project, "pooled").chain(
        ("io.input", {"shape": ["N", 3, 9, 9]}, "x"),
        ("conv.conv2d", {"out_channels": 4, "kernel_size": 3}, "conv"),
        ("pool.adaptive_max_pool2d", {"output_size": [4, 4]}, "squeeze"), ("io.output", {}, "y"))
    w = make_window(qtbot, project)
    _export(w, qtbot, env / "onnx2")
    title, text = w.messages[-1]
    assert title == "ONNX not exported" and "network 'pooled'" in text, text
    assert "squeeze" in text and "adaptive_max_pool2d" in text, text
