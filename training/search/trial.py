"""One trial's training: an ordinary run of the runner on the resolved project.

By default the run is a child process, followed through its ``events.jsonl`` (polled, as the
dashboard does, so the parent never wakes per line). On Linux that child is forked from a
*forkserver* that imported torch and the runner once (:func:`_context`): a fresh process per
trial, as isolated as ``python -m training.runner``, but without its ~4 s of imports (torch,
``torch._dynamo`` that the first optimizer pulls in, the compiler) on every trial, which was a
third of a small trial's time. Elsewhere (no forkserver, or ``LAYERLOOM_TRIAL_START=exec``) it is
``python -m training.runner``, exactly as the app starts one. ``inline=True`` calls
:func:`training.runner.run` in this process instead: the same runner and events, without a
process start (tests; a notebook). A trial is stopped by the runner's own ``stop`` command,
which saves a checkpoint first.

As with any multiprocessing start other than fork, a forked trial imports the parent's main
module again (as ``__mp_main__``): a script that runs a search must keep its work under
``if __name__ == "__main__":`` (the CLI, the app's ``python -m builder.cli`` and pytest do).
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import subprocess
import sys
import threading
import time
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import IO, Any, Callable

from .. import runner

Event = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
#: Seconds between reads of a child's events.jsonl (the child's exit ends a wait at once).
POLL_S = 0.25
#: What the forkserver imports before it forks a trial: everything a run imports.
PRELOAD = ["torch", "torch._dynamo", "training.runner", "training.search.trial"]
_ctx_lock = threading.Lock()
_ctx: BaseContext | None = None


def forked_start() -> bool:
    """Whether trials fork from the warm forkserver (Linux), rather than exec a new Python."""
    if os.environ.get("LAYERLOOM_TRIAL_START", "").lower() == "exec":
        return False
    return sys.platform.startswith("linux") and \
        "forkserver" in multiprocessing.get_all_start_methods()


def _context() -> BaseContext:
    """The forkserver context, its preload set once per process. The server starts with the
    first trial and imports :data:`PRELOAD` (a few seconds, once per search); it exits with this
    process. It is a clean process of its own, so forking it is safe although this one runs
    threads (the workers, SQLite)."""
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _ctx = ctx
        return _ctx


def warm_up() -> None:
    """Start the forkserver now (it imports torch while the search sets itself up)."""
    if forked_start():
        from multiprocessing import forkserver

        _context()
        forkserver.ensure_running()


class TrialRun:
    """A training run that can be told to stop from another thread (pruning, a stopped search)."""

    def __init__(self, project_file: Path, run_dir: Path, *, steps: int | None,
                 threads: int | None = None, device: str | None = None, resume: bool = False,
                 inline: bool = False) -> None:
        # absolute: the child's working folder is the repository, not ours
        self.project_file, self.run_dir = Path(project_file).resolve(), Path(run_dir).resolve()
        self.steps, self.threads, self.device = steps, threads, device
        self.resume, self.inline = resume, inline
        self._control = runner.Control()
        self._proc: subprocess.Popen | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._lock = threading.Lock()
        self._stop_sent = False

    def stop(self) -> None:
        """Ask the run to stop at its next step (it checkpoints first); safe from any thread."""
        with self._lock:
            self._stop_sent = True
            self._control.stop()
            proc, conn = self._proc, self._conn
            if proc is not None and proc.poll() is None and proc.stdin is not None:
                try:
                    proc.stdin.write("stop\n")
                    proc.stdin.flush()
                except (OSError, ValueError):
                    pass
            if conn is not None:
                try:
                    conn.send("stop")
                except (OSError, ValueError):
                    pass

    def run(self, on_event: Callable[[Event], None]) -> Event:
        """Train; call ``on_event`` for each runner event; return the terminal event."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.inline:
            return runner.run(self.project_file, self.run_dir, steps=self.steps,
                              device=self.device, resume=self.resume, on_event=on_event,
                              control=self._control)
        return self._forked(on_event) if forked_start() else self._child(on_event)

    def _forked(self, on_event: Callable[[Event], None]) -> Event:
        """The run in a process forked from the warm forkserver; commands go down a pipe."""
        ctx = _context()
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=_serve, name=f"layerloom-trial {self.run_dir.parent.name}",
                           args=(str(self.project_file), str(self.run_dir), self.steps,
                                 self.threads, self.device, self.resume, theirs))
        follow = _Follower(self.run_dir / "events.jsonl", self.resume, on_event)
        try:
            proc.start()  # the first waits for the forkserver's imports: not under the lock
            theirs.close()
            with self._lock:
                self._conn = ours
                if self._stop_sent:
                    ours.send("stop")
            while True:
                done = proc.exitcode is not None
                follow.read()
                if done:
                    break
                multiprocessing.connection.wait([proc.sentinel], POLL_S)
        finally:
            with self._lock:
                self._conn = None
            ours.close()  # the child stops (with a checkpoint) when this end closes
            proc.join()
        code = proc.exitcode
        proc.close()
        return runner.outcome(follow.seen, code)

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
        follow = _Follower(self.run_dir / "events.jsonl", self.resume, on_event)
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
                follow.read()
                if done:
                    break
                time.sleep(POLL_S)
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
        return runner.outcome(follow.seen, proc.returncode)


class _Follower:
    """Reads the events a run appends to its events.jsonl (from where a resumed one begins)."""

    def __init__(self, path: Path, resume: bool, on_event: Callable[[Event], None]) -> None:
        self.path, self.on_event = path, on_event
        self.offset = path.stat().st_size if resume and path.exists() else 0
        self.buf = b""
        self.seen: list[Event] = []

    def read(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            chunk = b""
        self.offset += len(chunk)
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for raw in lines:
            ev = _parse(raw)
            if ev is not None:
                self.seen.append(ev)
                self.on_event(ev)


def _serve(project_file: str, run_dir: str, steps: int | None, threads: int | None,
           device: str | None, resume: bool, conn: multiprocessing.connection.Connection) -> None:
    """A forked trial: what ``python -m training.runner ... --stop-on-eof`` does, with the
    commands read from ``conn`` instead of stdin (its closing, the search gone, stops the run)."""
    out = _redirect(1, Path(run_dir) / "stdout.log")
    _redirect(2, Path(run_dir) / "runner.log")
    if threads:
        import torch

        torch.set_num_threads(max(1, threads))
    control = runner.Control()

    def listen() -> None:
        while True:
            try:
                control.command(str(conn.recv()))
            except (EOFError, OSError):
                control.stop()
                return

    threading.Thread(target=listen, daemon=True).start()
    ev = runner.run(project_file, run_dir, steps=steps, device=device, resume=resume,
                    echo=out, control=control)
    out.flush()
    sys.exit(1 if ev["event"] == "failed" else 0)


def _redirect(fd: int, path: Path) -> IO[str]:
    """Point file descriptor ``fd`` (and sys.stdout / sys.stderr) at ``path``, appending."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, fd)
    os.close(target)
    stream = open(fd, "w", encoding="utf-8", buffering=1, closefd=False)
    if fd == 1:
        sys.stdout = stream
    else:
        sys.stderr = stream
    return stream


def _parse(raw: bytes) -> Event | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        ev = json.loads(raw)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) and isinstance(ev.get("event"), str) else None
