"""Crash recovery: the open project is written to a recovery file every 30 s while it has unsaved
changes; a clean close removes it; the next start offers what is left.

The folder is QStandardPaths' AppDataLocation/recovery, or ``$LAYERLOOM_DATA_DIR/recovery`` when
that is set (tests point it at a temp folder).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QStandardPaths

from compiler import loads
from compiler.project import Project, ProjectLoadError, atomic_write_text

from .document import save_failure

AUTOSAVE_MS = 30_000


def data_dir() -> Path:
    env = os.environ.get("LAYERLOOM_DATA_DIR")
    if env:
        return Path(env)
    loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(loc or Path.home() / ".layerloom")


def recovery_dir() -> Path:
    return data_dir() / "recovery"


@dataclass
class Recovered:
    file: Path
    original: str  # the path the project was saved at, or ""
    saved_at: float
    title: str

    def load(self) -> Project:
        """The project kept in the file; any damage is a ProjectLoadError, like a project file."""
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
            text = json.dumps(data["project"])
        except OSError as err:
            raise ProjectLoadError(f"cannot read the recovery file: {err.strerror or err}",
                                   file=self.file) from None
        except (ValueError, KeyError, TypeError, RecursionError) as err:
            raise ProjectLoadError(f"the recovery file is damaged ({type(err).__name__})",
                                   file=self.file) from None
        return loads(text, source=str(self.file))

    def discard(self) -> None:
        try:
            self.file.unlink()
        except OSError:
            pass


class RecoveryFile:
    """One per window session: a stable file name, rewritten in place (atomically)."""

    def __init__(self) -> None:
        self.path = recovery_dir() / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json"

    def write(self, project: Project, original: str) -> Path:
        """Raises SaveError (and leaves the previous recovery file as it was) when the project
        cannot be serialised or the folder cannot be written."""
        try:
            payload = {"original": original, "saved_at": time.time(), "title": project.name,
                       "project": json.loads(project.to_json())}
            atomic_write_text(self.path, json.dumps(payload))
        except Exception as err:  # an autosave failure is reported, never raised into Qt
            raise save_failure(err, self.path, project) from err
        return self.path

    def remove(self) -> None:
        try:
            self.path.unlink()
        except OSError:
            pass


def _owner_alive(file: Path) -> bool:
    """A file of another Layerloom that is still running is its live autosave, not a leftover."""
    pid_text = file.stem.split("-", 1)[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def pending(exclude: Path | None = None) -> list[Recovered]:
    """Recovery files left by sessions that did not close cleanly, newest first."""
    folder = recovery_dir()
    out: list[Recovered] = []
    if not folder.is_dir():
        return out
    for f in folder.glob("*.json"):
        if (exclude is not None and f == exclude) or _owner_alive(f):
            continue
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
            out.append(Recovered(f, str(data.get("original") or ""),
                                 float(data.get("saved_at", 0)), str(data.get("title", f.stem))))
        except (OSError, ValueError, AttributeError):
            continue
    return sorted(out, key=lambda r: -r.saved_at)
