"""The Qt document: one open project, its file, its undo stack and its (debounced) analysis.

Everything the window shows is derived from here. Edits arrive as ``*Command`` objects pushed on
``undo_stack``; commands change the Qt-free ``Project`` through ``compiler.graph.Graph`` and then
call :meth:`Document.touch`, which emits ``changed`` and restarts the analysis timer. Analysis runs
on the timer so typing and dragging never wait for it; ``analyzed`` carries the result.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoStack

from compiler import Analysis, Graph, Project, analyze, generate, load, save
from compiler.codegen import CodegenError, PythonSource

ANALYSIS_DELAY_MS = 150


class Document(QObject):
    """Owns the project; the canvas and panels only read it and listen to its signals."""

    #: (event, info): "node_added", "node_removed", "node_changed", "edges_changed", "positions",
    #: "structure" (networks/blocks changed), "reset" (a new project was loaded).
    changed = Signal(str, dict)
    analyzed = Signal(object)  # Analysis
    dirty_changed = Signal(bool)
    path_changed = Signal(str)

    def __init__(self, project: Project | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project or _empty_project()
        self.path: Path | None = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(lambda clean: self.dirty_changed.emit(not clean))
        self.analysis: Analysis | None = None
        self.source: PythonSource | None = None
        self.source_error: str = ""
        self.last_analysis_ms: float = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(ANALYSIS_DELAY_MS)
        self._timer.timeout.connect(self.analyze_now)
        self._timer.start()

    # -- state ----------------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    @property
    def title(self) -> str:
        return self.path.name if self.path else f"{self.project.name} (unsaved)"

    def graph(self, network: str) -> Graph:
        return Graph(self.project, network)

    def positions(self, network: str) -> dict[str, list[float]]:
        """Node positions of a network or block, kept in ``project.ui`` so files carry layout."""
        return self.project.ui.setdefault("positions", {}).setdefault(network, {})

    def names(self) -> list[str]:
        return [n.name for n in self.project.networks]

    # -- change plumbing ------------------------------------------------------------------------
    def touch(self, event: str, info: dict | None = None) -> None:
        """Called by commands after each change: tell the views, schedule analysis."""
        self.changed.emit(event, info or {})
        self._timer.start()

    def analyze_now(self) -> Analysis:
        self._timer.stop()
        t0 = time.perf_counter()
        self.analysis = analyze(self.project)
        self.source, self.source_error = None, ""
        if self.analysis.ok:
            try:
                self.source = generate(self.analysis)
            except CodegenError as err:
                self.source_error = str(err)
            except Exception as err:  # a codegen bug must not take the editor down
                self.source_error = f"code generation failed: {type(err).__name__}: {err}"
        else:
            self.source_error = "\n".join(str(d) for d in self.analysis.errors)
        self.last_analysis_ms = (time.perf_counter() - t0) * 1000
        self.analyzed.emit(self.analysis)
        return self.analysis

    @property
    def analysis_pending(self) -> bool:
        return self._timer.isActive()

    # -- files ----------------------------------------------------------------------------------
    def set_project(self, project: Project, path: Path | None = None) -> None:
        """Replace the whole project (open, new, template). Not undoable: the stack is cleared."""
        self.project = project
        self.path = Path(path) if path else None
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.analysis = None
        self.changed.emit("reset", {})
        self.path_changed.emit(str(self.path or ""))
        self.dirty_changed.emit(False)
        self._timer.start()

    def open(self, path: str | Path) -> None:
        """Load a file; raises ProjectLoadError and leaves the current project untouched."""
        project = load(path)
        self.set_project(project, Path(path))

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path else self.path
        if target is None:
            raise ValueError("no file name yet; use Save As")
        if target.suffix != ".loom":
            target = target.with_suffix(".loom")
        save(self.project, target)
        self.path = target
        self.undo_stack.setClean()
        self.path_changed.emit(str(target))
        return target

    def snapshot(self) -> dict[str, Any]:
        """The editable parts of the project, deep-copied (for commands that reshape it)."""
        return {"networks": [n.model_copy(deep=True) for n in self.project.networks],
                "blocks": [b.model_copy(deep=True) for b in self.project.blocks],
                "ui": _deep(self.project.ui)}

    def restore(self, snap: dict[str, Any]) -> None:
        self.project.networks = [n.model_copy(deep=True) for n in snap["networks"]]
        self.project.blocks = [b.model_copy(deep=True) for b in snap["blocks"]]
        self.project.ui = _deep(snap["ui"])


def _deep(value: Any) -> Any:
    import copy

    return copy.deepcopy(value)


def _empty_project() -> Project:
    from compiler import add_network

    project = Project(name="Untitled")
    add_network(project, "net")
    return project
