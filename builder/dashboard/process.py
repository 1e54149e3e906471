"""The training runner as a child process, followed through its events file.

A separate process keeps training off the GUI thread entirely, and a crash or out-of-memory kill
takes down the runner, never the editor. The runner writes each event both to stdout and to
``events.jsonl``; we poll the file on a timer instead of reading the pipe, because a pipe wakes
this process for every line, and on a machine with few cores each wake-up stalls the runner's
threads (measured: ~10% of training throughput on 2 cores). Polling costs a few reads a second.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from ..child import decode_event, python_child, start_python
from .runs import TERMINAL, Event, append_event


def runner_threads() -> int:
    """CPU threads for a run started from the app: every core but one, which the window
    keeps (measured on 2 cores: 2 threads reach 0.86 of the CLI's throughput with the dashboard
    drawing, 1 thread 0.97, because the UI thread stalls every op of a 2-thread runner)."""
    return max(1, (os.cpu_count() or 2) - 1)


class RunnerProcess(QObject):
    event = Signal(dict)
    ended = Signal(dict)  # the terminal event, synthesised when the process died without one

    def __init__(self, project_file: Path, run_dir: Path, *, resume: bool = False,
                 steps: int | None = None, epochs: int | None = None, device: str | None = None,
                 poll_ms: int = 200, threads: int | None = None,
                 parent: QObject | None = None, extra_args: Sequence[str] = ()) -> None:
        """``poll_ms=0``: no timer of its own; the owner calls :meth:`poll` from its frame tick
        (one wake-up a frame for reading, plotting and labels, not one each)."""
        super().__init__(parent)
        self.run_dir = run_dir
        self._buf = b""
        self._events_path = run_dir / "events.jsonl"
        # a resumed run appends to its file: follow only what this process writes
        self._offset = self._events_path.stat().st_size if resume and \
            self._events_path.exists() else 0
        self._terminal: Event | None = None
        self._done = False
        self._stderr = open(run_dir / "runner.log", "ab")
        args = ["-m", "training.runner", "--project", str(project_file), "--run-dir",
                str(run_dir), "--stop-on-eof"]
        if device:  # else the project's own setting applies
            args += ["--device", device]
        if resume:
            args.append("--resume")
        if threads:
            args += ["--threads", str(threads)]
        if steps:
            args += ["--steps", str(steps)]
        elif epochs:
            args += ["--epochs", str(epochs)]
        args += list(extra_args)  # --trust-code FILE, --init-weights FILE (imported models)
        self.proc = python_child(self, threads=threads)
        # stdout repeats the events; kept as a log (with any print() from user code)
        self.proc.setStandardOutputFile(str(run_dir / "stdout.log"), QProcess.OpenModeFlag.Append)
        self.proc.readyReadStandardError.connect(self._read_err)
        self.proc.finished.connect(self._finished)
        self.proc.errorOccurred.connect(self._error)
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(max(1, poll_ms))
        self.poll_timer.timeout.connect(self.poll)
        start_python(self.proc, args)
        if poll_ms:
            self.poll_timer.start()

    def pid(self) -> int:
        return int(self.proc.processId())

    def running(self) -> bool:
        return self.proc.state() != QProcess.ProcessState.NotRunning

    def send(self, command: str) -> None:
        if self.running():
            self.proc.write((command + "\n").encode())

    def kill(self) -> None:
        self.proc.kill()

    def poll(self) -> None:
        """Read what the runner appended to its events file and emit each new event."""
        if not self._done:
            self._read_out()

    def _read_out(self) -> None:
        try:
            with open(self._events_path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:  # not created yet
            return
        self._offset += len(chunk)
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            self._line(raw)

    def _line(self, raw: bytes) -> None:
        ev = decode_event(raw)
        if isinstance(ev, bytes):
            self._stderr.write(ev + b"\n")  # a line that is not an event: keep it in the log
            return
        if ev is None:
            return
        if ev.get("event") in TERMINAL:
            self._terminal = ev
        self.event.emit(ev)

    def _read_err(self) -> None:
        self._stderr.write(bytes(self.proc.readAllStandardError().data()))
        self._stderr.flush()

    def _error(self, err: QProcess.ProcessError) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self._finish(None, f"the training process could not start ({self.proc.errorString()})")

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self.poll_timer.stop()
        self._read_out()
        self._read_err()
        if self._buf.strip():
            self._line(self._buf)
            self._buf = b""
        self._finish(code, None)

    def _finish(self, code: int | None, why: str | None) -> None:
        if self._done:
            return
        self._done = True
        self.poll_timer.stop()
        self._stderr.close()
        ev = self._terminal
        if ev is None:
            ev = {"event": "failed", "kind": "crash",
                  "reason": why or f"the training process ended unexpectedly (exit code {code})",
                  "hint": "it was killed or crashed, e.g. out of memory; see runner.log in the "
                          "run folder, then resume from the last checkpoint or start again",
                  "time": time.time()}
            append_event(self.run_dir, ev)  # history must show it failed, not "running"
            self.event.emit(ev)
        self.ended.emit(ev)
