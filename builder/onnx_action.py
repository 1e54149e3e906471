"""File ▸ Export ▸ ONNX… off the window thread: the export runs in a child process
(:mod:`builder.onnx_child`), the window stays live, progress goes to the status bar, and the end
is one dialog: per network its file and max |diff| against torch, or the reason with the node
that stopped it.

The project is snapshotted (saved to a temporary ``.loom``) when the export starts, so edits made
while it runs change nothing in it and no lock on the document is needed; the session's loaded
weights go along as one safetensors file. One export at a time: the menu item is greyed while one
runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping

from PySide6.QtCore import QObject, QProcess, Signal
from PySide6.QtWidgets import QMainWindow

from builder.child import decode_event, python_child, start_python

#: The main window (its document, dialogs and status bar); not imported, so no cycle.
MainWindow = QMainWindow


class OnnxExportJob(QObject):
    """One export in a child process; ``done`` (ok) when it has ended and the dialog is shown."""

    done = Signal(bool)

    def __init__(self, w: MainWindow, folder: str | Path, project: Any,
                 weights: Mapping[str, Mapping[str, Any]] | None) -> None:
        super().__init__(w)
        from compiler.project import save
        from compiler.project_weights import write_safetensors

        self.w, self.folder = w, Path(folder)
        self.results: list[dict[str, Any]] = []
        self.failure: dict[str, Any] | None = None
        self.log: list[str] = []
        self._buffer = b""
        self._tmp = tempfile.TemporaryDirectory(prefix="layerloom-onnx-")
        snapshot = Path(self._tmp.name) / "project.loom"
        save(project, snapshot)
        self.args = ["-m", "builder.onnx_child", "--project", str(snapshot),
                     "--out", str(self.folder)]
        if weights:
            file = Path(self._tmp.name) / "weights.safetensors"
            write_safetensors({k: dict(v) for k, v in weights.items()}, file)
            self.args += ["--weights", str(file)]
        self.proc = python_child(self)
        self.proc.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        self.proc.readyReadStandardOutput.connect(self._read)
        self.proc.readyReadStandardError.connect(self._read_errors)
        self.proc.finished.connect(self._finished)
        self.proc.errorOccurred.connect(self._error)
        self._ended = False

    def start(self) -> None:
        start_python(self.proc, self.args)

    def running(self) -> bool:
        return self.proc.state() != QProcess.ProcessState.NotRunning

    def cancel(self) -> None:
        """Stop the child (the window is closing, or the user gave up); no dialog."""
        if self._ended:
            return
        self._ended = True
        if self.running():
            self.proc.kill()
            self.proc.waitForFinished(3000)
        self._tmp.cleanup()
        self.done.emit(False)

    # -- the child's output -----------------------------------------------------------------
    def _read(self) -> None:
        self._buffer += bytes(self.proc.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            ev = decode_event(line)
            if isinstance(ev, bytes):
                self._keep(ev.decode(errors="replace"))
            elif ev is not None:
                self._event(ev)

    def _read_errors(self) -> None:
        text = bytes(self.proc.readAllStandardError().data()).decode(errors="replace")
        for line in text.splitlines():
            self._keep(line)

    def _keep(self, line: str) -> None:
        self.log.append(line)
        del self.log[:-40]

    def _event(self, ev: dict[str, Any]) -> None:
        kind = ev["event"]
        if kind == "network":
            self.w.show_status(f"Exporting ONNX: network '{ev['network']}' ({ev['index']} of "
                               f"{ev['of']}), tracing and checking in onnxruntime…")
        elif kind == "exported":
            self.results.append(ev)
            self.w.show_status(f"ONNX: wrote {ev['path']} (max |diff| "
                               f"{ev['max_abs_diff']:.2e})")
        elif kind == "failed":
            self.failure = ev

    # -- the end --------------------------------------------------------------------------
    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._end(False, f"the export process did not start: {self.proc.errorString()}")

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read()
        if self._buffer:
            self._buffer += b"\n"
            self._read()
        if self.failure is not None:
            self._end(False, self.failure.get("message") or "the export failed")
        elif code != 0 or status != QProcess.ExitStatus.NormalExit:
            tail = "\n".join(self.log[-8:])
            self._end(False, f"the export process stopped (exit code {code})"
                      + (f":\n{tail}" if tail else ""))
        else:
            self._end(True, "")

    def _end(self, ok: bool, message: str) -> None:
        if self._ended:
            return
        self._ended = True
        lines = [r["line"] + "".join(f"\n  note: {n}" for n in r["notes"]) for r in self.results]
        if ok:
            self.w.inform("ONNX exported", "\n".join(lines))
            self.w.show_status("Exported " + ", ".join(r["path"] for r in self.results))
        else:
            done = ("\n\nWritten before it stopped:\n" + "\n".join(lines)) if lines else ""
            self.w.inform("ONNX not exported", message + done)
            self.w.show_status("ONNX export failed")
        self._tmp.cleanup()
        self.done.emit(ok)


def start_export(w: MainWindow, folder: str | Path, project: Any,
                 weights: Mapping[str, Mapping[str, Any]] | None) -> OnnxExportJob:
    """Start an export of ``project`` into ``folder``; the action is greyed till it ends."""
    job = OnnxExportJob(w, folder, project, weights)
    action = getattr(w, "export_onnx_action", None)
    was = action.isEnabled() if action is not None else False
    if action is not None:
        action.setEnabled(False)

    def ended(_ok: bool) -> None:
        if action is not None:
            action.setEnabled(was)
        if getattr(w, "onnx_job", None) is job:
            w.onnx_job = None
        job.deleteLater()

    job.done.connect(ended)
    w.onnx_job = job
    w.show_status("Exporting ONNX (in the background: tracing and checking in onnxruntime)…")
    job.start()
    return job


__all__ = ["OnnxExportJob", "start_export"]
