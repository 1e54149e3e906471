"""Which runs folder belongs to the project on screen (Qt-free).

A saved project keeps its runs in ``<name>.runs/`` beside the file. An unsaved one gets a folder
of its own, made up when the project first appears, so File ▸ New (or a second template) never
shows the runs of another project. Saving an unsaved project for the first time moves its runs
into the new ``<name>.runs/`` folder; a run still training there moves once its process exits.
"""

from __future__ import annotations

from pathlib import Path

from compiler import Project

from .runs import move_runs, runs_root, unsaved_key


class RunsHome:
    """Follows (project object, path) and answers where that project's runs live."""

    def __init__(self) -> None:
        self._project: Project | None = None
        self._path: Path | None = None
        self._key: str | None = None
        self._from: Path | None = None  # an unsaved project's folder, still to be emptied

    def follow(self, project: Project, path: Path | None) -> str:
        """'other' (another project is shown), 'saved' (first save of an unsaved one),
        'moved' (saved under another name: its runs start afresh there) or 'same'."""
        path = Path(path) if path is not None else None
        if project is not self._project:
            self._project, self._path, self._from = project, path, None
            self._key = None if path is not None else unsaved_key()
            return "other"
        if path == self._path:
            return "same"
        was_unsaved = self._path is None
        old = self.root()
        self._path = path
        if was_unsaved and path is not None:
            self._from = old
            return "saved"
        return "moved"

    def root(self) -> Path:
        return runs_root(self._path, self._key)

    def take_runs(self, keep: set[str]) -> list[str]:
        """Move the unsaved folder's runs here (all but ``keep``, a live one)."""
        if self._from is None or self._path is None:
            return []
        moved = move_runs(self._from, self.root(), keep)
        if not keep:
            self._from = None
        return moved

    def pending_move(self, run_dir: Path) -> bool:
        """True when ``run_dir`` still lies in the folder of the unsaved project this became."""
        return self._from is not None and Path(run_dir).parent == self._from
