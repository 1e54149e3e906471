"""Start the desktop app: ``run_app`` is what ``layerloom [FILE.loom | --template NAME]`` calls."""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication, QSettings, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from . import theme

ORG = "Layerloom"
APP = "Layerloom"
_GC = None  # see make_app


def make_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), with names for QSettings and the saved theme applied."""
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv if argv is not None else sys.argv[:1])
    if not QCoreApplication.organizationName():
        QCoreApplication.setOrganizationName(ORG)
    QCoreApplication.setApplicationName(APP)
    theme.apply(app, str(QSettings().value("theme", "dark")))  # type: ignore[arg-type]
    global _GC
    if _GC is None:
        # Python's cycle collector runs in whichever thread happens to allocate; if that is one
        # of the document's analysis workers, it may destroy Qt objects (pyqtgraph items are full
        # of cycles) off the GUI thread and crash. pyqtgraph's remedy: collect on a GUI-thread
        # timer instead (seen here as a segfault in "Garbage-collecting" during the test suite).
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _GC = GarbageCollector(interval=1.0)
    return app  # type: ignore[return-value]


def run_app(path: str | None = None, template: str | None = None) -> int:
    app = make_app()
    from .main_window import MainWindow, first_template

    window = MainWindow()
    opened = False
    if path:
        opened = window.open_path(path)
    elif template:
        opened = window.open_template(template)
    if not opened and not path:
        name = first_template()
        if name and name != template:
            window.open_template(name)
    window.show()
    QTimer.singleShot(0, window.offer_recovery)
    QTimer.singleShot(0, lambda: window.view.fit(readable=True))
    return app.exec()
