"""What the app's child processes share (the training runner and the search): a Python child
that imports this checkout and writes unbuffered, and the JSON-lines events it speaks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment

#: The checkout (or installed tree) the child must import: the same code the window runs.
ROOT = str(Path(__file__).resolve().parents[1])


#: The thread-pool sizes of the libraries a child may load (torch's OpenMP and MKL, NumPy's
#: OpenBLAS), all set alike when the child's torch threads are chosen.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def python_child(parent: QObject, threads: int | None = None) -> QProcess:
    """A QProcess set up to run ``python -m ...`` of this checkout, unbuffered; start it with
    :func:`start_python`.

    ``threads``: the child's CPU threads, also set in its environment (``OMP_NUM_THREADS``
    and the like), so every thread pool the child starts, not only torch's, has that size,
    exactly as ``OMP_NUM_THREADS=N layerloom train`` has: a NumPy or MKL pool of the default
    size (every core) spins beside a 1-thread run on a 2-core machine."""
    proc = QProcess(parent)
    env = QProcessEnvironment.systemEnvironment()
    env.insert("PYTHONUNBUFFERED", "1")
    env.insert("PYTHONPATH", ROOT + (":" + env.value("PYTHONPATH")
                                     if env.contains("PYTHONPATH") else ""))
    if threads:
        for name in THREAD_VARS:
            env.insert(name, str(max(1, threads)))
    proc.setProcessEnvironment(env)
    proc.setWorkingDirectory(ROOT)
    return proc


def start_python(proc: QProcess, args: Sequence[str]) -> None:
    proc.start(sys.executable, list(args))


def decode_event(raw: bytes) -> dict[str, Any] | None | bytes:
    """One line of a child's output: the event (a dict with an ``event`` key), ``None`` for a
    blank line or JSON that is not an event, or the raw bytes back when the line is not JSON (a
    ``print`` of user code: the caller keeps it in its log)."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        ev = json.loads(raw)
    except ValueError:
        return raw
    return ev if isinstance(ev, dict) and "event" in ev else None
