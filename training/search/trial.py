"""One trial's training: an ordinary run of the runner on the resolved project.

By default the run is a child process (``python -m training.runner``, exactly as the app starts
one), followed through its ``events.jsonl`` (polled, as the dashboard does, so the parent never
wakes per line). ``inline=True`` calls :func:`training.runner.run` in this process instead: the
same runner and events, without a process start (tests; a notebook). A trial is stopped by the
runner's own ``stop`` command, which saves a checkpoint first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .. import runner

Event = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]


class TrialRun:
    """A training run that can be told to stop from another thread (pruning, a stopped search)."""

    def __init__(self, project_file: Path, run_dir: Path, *, steps: int | None,
                 threads: int | None = None, device: str | None = None, resume: bool = False,
                 inline: bool = False) -> None:
        self.project_file, self.run_dir = project_file, run_dir
        self.steps, self.threads, self.device = steps, threads, device
        self.resume, self.inline = resume, inline
        self._control = runner.Control()
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stop_sent = False

    def stop(self) -> None:
        """Ask the run to stop at its next step (it checkpoints first); safe from any thread."""
        with self._lock:
            self._stop_sent = True
            self._control.stop()
            proc = self._proc
            if proc is not None and proc.poll() is None and proc.stdin is not None:
                try:
                    proc.stdin.write("stop\n")
                    proc.stdin.flush()
                except (OSError, ValueError):
                    pass

    def run(self, on_event: Callable[[Event], None]) -> Event:
        """Train; call ``on_event`` for each runner event; return the terminal event."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.inline:
            return runner.run(self.project_file, self.run_dir, steps=self.steps,
                              device=self.device, resume=self.resume, on_event=on_event,
                              control=self._control)
        return self._child(on_event)

    def _child(self, on_event: Callable[[Event], None]) -> Event:
        args = [sys.executable, "-m", "training.runner", "--project", str(self.project_file),
                "--run-dir", str(self.run_dir), "--stop-on-eof"]
        if self.steps:
            args += ["--steps", str(self.steps)]
        if self.threads:
            args += ["--threads", str(self.threads)]
        if self.device:
            args += ["--device", self.device]
        if self.resume:
            args.append("--resume")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"]
                                         if env.get("PYTHONPATH") else "")
        events_path = self.run_dir / "events.jsonl"
        offset = events_path.stat().st_size if self.resume and events_path.exists() else 0
        seen: list[Event] = []
        buf = b""
        with open(self.run_dir / "stdout.log", "ab") as out, \
                open(self.run_dir / "runner.log", "ab") as err:
            with self._lock:
                self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=out,
                                              stderr=err, env=env, cwd=str(ROOT), text=True)
                if self._stop_sent:
                    self._proc.stdin.write("stop\n")  # type: ignore[union-attr]
                    self._proc.stdin.flush()  # type: ignore[union-attr]
            proc = self._proc
            while True:
                done = proc.poll() is not None
                try:
                    with open(events_path, "rb") as fh:
                        fh.seek(offset)
                        chunk = fh.read()
                except OSError:
                    chunk = b""
                offset += len(chunk)
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    ev = _parse(raw)
                    if ev is not None:
                        seen.append(ev)
                        on_event(ev)
                if done:
                    break
                time.sleep(0.25)
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
        return runner.outcome(seen, proc.returncode)


def _parse(raw: bytes) -> Event | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        ev = json.loads(raw)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) and isinstance(ev.get("event"), str) else None
