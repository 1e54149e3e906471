"""The search as a child process: ``python -m builder.cli search FILE --events ...``, the same
command a user runs headless, followed through its JSON-lines stdout.

Like the training runner (builder/dashboard/process.py) the search runs outside the GUI process,
so nothing it does can block or crash the editor. Its trials are themselves child processes of
the search, so the pipe carries only a few events a second and is read directly. Stop writes
``{"command": "stop"}`` on stdin (the search marks the running trial and saves the study); a
search that has not exited a while later is terminated, and killed last.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from ..child import decode_event, python_child, start_python

#: How long a stopped search may take to checkpoint its running trial before it is terminated.
STOP_GRACE_MS = 20_000


def search_args(project_file: Path, out_dir: Path, *, strategy: str | None = None,
                trials: int | None = None, steps: int | None = None,
                objective: str | None = None, max_params: int | None = None,
                max_flops: int | None = None, workers: int = 1,
                extra: Sequence[str] = ()) -> list[str]:
    """The command line after ``python``: the CLI's own options, so the app and the headless
    search are one path."""
    args = ["-m", "builder.cli", "search", str(project_file), "--events", "--out", str(out_dir),
            "--workers", str(workers)]
    for flag, value in (("--strategy", strategy), ("--trials", trials), ("--steps", steps),
                        ("--objective", objective), ("--max-params", max_params),
                        ("--max-flops", max_flops)):
        if value is not None:
            args += [flag, str(value)]
    return args + list(extra)


class SearchProcess(QObject):
    """One running search. ``event`` carries each JSON event; ``ended`` the last one
    (``search_finished``, or an ``error`` synthesised when the process died without one)."""

    event = Signal(dict)
    ended = Signal(dict)

    def __init__(self, args: Sequence[str], log_file: Path,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._buf = b""
        self._last: dict[str, Any] | None = None
        self._done = False
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_file, "ab")
        self.proc = python_child(self)
        self.proc.readyReadStandardOutput.connect(self._read_out)
        self.proc.readyReadStandardError.connect(self._read_err)
        self.proc.finished.connect(self._finished)
        self.proc.errorOccurred.connect(self._error)
        self.grace = QTimer(self)
        self.grace.setSingleShot(True)
        self.grace.timeout.connect(self._escalate)
        start_python(self.proc, args)

    def running(self) -> bool:
        return self.proc.state() != QProcess.ProcessState.NotRunning

    def stop(self, grace_ms: int = STOP_GRACE_MS) -> None:
        """Ask the search to stop (it checkpoints the running trial); terminate it if it has
        not exited after ``grace_ms``."""
        if not self.running():
            return
        self.proc.write(b'{"command": "stop"}\n')
        if not self.grace.isActive():
            self.grace.start(grace_ms)

    def _escalate(self) -> None:
        if self.running():
            self.proc.terminate()
            QTimer.singleShot(3000, lambda: self.proc.kill() if self.running() else None)

    def wait(self, ms: int) -> bool:
        """Block up to ``ms`` for the exit (only for closing the app, where nothing is drawn)."""
        return self.proc.waitForFinished(ms)

    def _read_out(self) -> None:
        self._buf += bytes(self.proc.readAllStandardOutput().data())
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            self._line(raw)

    def _line(self, raw: bytes) -> None:
        ev = decode_event(raw)
        if isinstance(ev, bytes):
            self._log.write(ev + b"\n")  # a print() that is not an event: keep it in the log
            return
        if ev is None:
            return
        if ev["event"] in ("search_finished", "error"):
            self._last = ev
        self.event.emit(ev)

    def _read_err(self) -> None:
        self._log.write(bytes(self.proc.readAllStandardError().data()))
        self._log.flush()

    def _error(self, err: QProcess.ProcessError) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self._finish(f"the search process could not start ({self.proc.errorString()})")

    def _finished(self, code: int, _status: QProcess.ExitStatus) -> None:
        self._read_out()
        self._read_err()
        if self._buf.strip():
            self._line(self._buf)
            self._buf = b""
        self._finish(None if self._last is not None else
                     f"the search process ended without finishing (exit code {code}); "
                     "see search.log in the study folder, then Resume")

    def _finish(self, why: str | None) -> None:
        if self._done:
            return
        self._done = True
        self.grace.stop()
        self._log.close()
        ev = self._last
        if why is not None and (ev is None or ev["event"] != "search_finished"):
            ev = {"event": "error", "message": why, "time": time.time()}
            self.event.emit(ev)
        self.ended.emit(ev or {"event": "search_finished", "best": None, "front": [],
                               "stopped": True})
