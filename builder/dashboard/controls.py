"""The Train panel's run controls: Start, Pause, Resume, Stop, the device and the progress line.
:meth:`RunControls.show` sets all of them from one (run, live) state, so they always agree."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from .runs import RunData
from .status import progress_text


class RunControls(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.start_btn = QPushButton("Start")
        self.start_btn.setToolTip("Start a new run (F5; resumes when paused)")
        self.pause_btn = QPushButton("Pause")
        self.resume_btn = QPushButton("Resume")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Stop after the current step and save a checkpoint (Shift+F5)")
        self.device_label = QLabel("Device: —")
        self.device_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(14)
        self.progress_label = QLabel("No run yet.")
        self.progress_label.setWordWrap(True)
        row = QHBoxLayout()
        for b in (self.start_btn, self.pause_btn, self.resume_btn, self.stop_btn):
            row.addWidget(b)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        for w in (self.device_label, self.progress, self.progress_label):
            lay.addWidget(w)

    def reset(self) -> None:
        """No run shown (another project)."""
        self.progress.setValue(0)
        self.progress_label.setText("No run yet.")
        self.device_label.setText("Device: —")

    def show_buttons(self, run: RunData | None, live: bool) -> None:
        st = run.status if run else "idle"
        self.start_btn.setEnabled(not live)
        self.pause_btn.setEnabled(live and st == "running")
        self.resume_btn.setEnabled((live and st == "paused") or
                                   (not live and bool(run and run.resumable)))
        self.stop_btn.setEnabled(live)

    def show_progress(self, run: RunData | None) -> None:
        if run is None:
            return
        total, step = run.total_steps, run.step
        if total:
            self.progress.setValue(int(1000 * min(step, total) / total))
        self.progress_label.setText(progress_text(run))


def make_actions(owner: QWidget, start: Callable[[], None], pause: Callable[[], None],
                 stop: Callable[[], None]) -> list[QAction]:
    """Start/resume (F5), pause (F6) and stop (Shift+F5) as actions: the main window puts
    these very objects in its Run menu, so each key has one owner and no ambiguity."""
    acts = []
    for text, slot, key, tip in (
            ("&Train / Resume", start, "F5", "Start a run, or resume a paused one"),
            ("&Pause Training", pause, "F6", "Pause after the current step"),
            ("&Stop Training", stop, "Shift+F5",
             "Stop after the current step and save a checkpoint")):
        act = QAction(text, owner)
        act.setShortcut(QKeySequence(key))
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        act.setStatusTip(tip)
        act.triggered.connect(slot)
        owner.addAction(act)
        acts.append(act)
    return acts
