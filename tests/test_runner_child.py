"""The runner child as the app starts it (``RunnerProcess``): its thread count reaches every
thread pool of the child through the environment, as ``OMP_NUM_THREADS=N layerloom train`` does,
and the events arrive through the polled events file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from builder.child import THREAD_VARS, python_child
from builder.dashboard.process import RunnerProcess
from compiler.project import save


@pytest.mark.timeout(10)
def test_the_thread_count_goes_into_the_environment(qtbot) -> None:
    from PySide6.QtCore import QObject

    owner = QObject()
    env = python_child(owner, threads=1).processEnvironment()
    assert all(env.value(name) == "1" for name in THREAD_VARS)
    plain = python_child(owner).processEnvironment()
    import os

    assert plain.value("OMP_NUM_THREADS") == os.environ.get("OMP_NUM_THREADS", "")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_child_run_has_the_threads_it_was_given(qtbot, tmp_path: Path) -> None:
    import templates

    p = templates.build("mlp-digits")
    p.training.hyper = {"steps": 1_000_000, "log_every": 10, "eval_every": 1_000_000,
                        "device": "cpu"}
    path = tmp_path / "digits.loom"
    save(p, path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = RunnerProcess(path, run_dir, threads=1, poll_ms=50)
    events: list[dict] = []
    proc.event.connect(events.append)
    ended: list[dict] = []
    proc.ended.connect(ended.append)
    qtbot.waitUntil(lambda: any(e["event"] == "metric" for e in events) or bool(ended),
                    timeout=200_000)
    assert not ended, ended
    started = next(e for e in events if e["event"] == "started")
    assert started["device_name"] == "CPU (1 thread)"
    if sys.platform.startswith("linux"):  # what the live child really got
        environ = Path(f"/proc/{proc.pid()}/environ").read_bytes().split(b"\0")
        assert b"OMP_NUM_THREADS=1" in environ and b"OPENBLAS_NUM_THREADS=1" in environ
    proc.send("stop")
    qtbot.waitUntil(lambda: bool(ended), timeout=60_000)
    assert ended[0]["event"] == "stopped"
