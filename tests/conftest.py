"""Test set-up shared by every test: Qt runs offscreen, torch stays on few threads."""

from __future__ import annotations

import gc
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


#: Live widgets after a test's deletions above which the teardown collects cycles at once: the
#: pyqtgraph menus of a dead dashboard (about 250 widgets a window) sit in reference cycles, and
#: a full collection costs a few tenths of a second, so it runs every several window tests.
_LIVE_WIDGETS_BEFORE_A_COLLECTION = 2000


def pytest_collection_finish(session) -> None:
    """Move what the imports made (torch, Qt, the app) out of the collector's sight: every full
    collection of the session (the app's GUI-thread timer, the teardown below) then scans only
    what the tests made, instead of seconds' worth of long-lived objects under load."""
    gc.collect()
    gc.freeze()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    """Delete the widgets the test's qtbot closed. pytest-qt closes them and calls deleteLater,
    but a deferred delete happens only inside an event loop, which most tests never run: without
    this every window of the session stayed alive (about 800 widgets each), each later
    ``make_app`` re-styled all of them and their timers kept firing, so a window test's set-up
    grew to several seconds by the end of the run."""
    result = yield
    if "PySide6.QtWidgets" in sys.modules:
        from PySide6.QtCore import QCoreApplication, QEvent
        from PySide6.QtWidgets import QApplication

        if isinstance(QCoreApplication.instance(), QApplication):
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            if len(QApplication.allWidgets()) > _LIVE_WIDGETS_BEFORE_A_COLLECTION:
                gc.collect()
                QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return result


@pytest.fixture(autouse=True)
def _collect_garbage_in_the_main_thread():
    """The app collects cycles on a GUI-thread timer (builder.app.make_app), which runs only while
    an event loop does; collect after each test too, on this thread, so garbage never piles up
    and never meets a worker thread."""
    yield
    from builder import app

    if app._GC is not None:  # automatic collection is off: do what it would do, here
        app._GC.check()
