"""Test set-up shared by every test: Qt runs offscreen, torch stays on few threads."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
os.environ.setdefault("LAYERLOOM_TEST", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SCREENSHOTS = ROOT / "tests" / "screenshots"


@pytest.fixture(autouse=True)
def _collect_garbage_in_the_main_thread():
    """The app collects cycles on a GUI-thread timer (builder.app.make_app), which runs only while
    an event loop does; collect after each test too, on this thread, so garbage never piles up
    and never meets a worker thread."""
    yield
    from builder import app

    if app._GC is not None:  # automatic collection is off: do what it would do, here
        app._GC.check()
