"""The Qt document: one open project, its file, its undo stack and its (debounced) analysis.

Everything the window shows is derived from here. Edits arrive as ``*Command`` objects pushed on
``undo_stack``; commands change the Qt-free ``Project`` through ``compiler.graph.Graph``, which
announces each change through :meth:`Document.announce`: it emits ``changed`` and restarts the
analysis timer. Analysis runs
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
from compiler.graph import ProjectEdits

ANALYSIS_DELAY_MS = 150
FIGURES_MAX_NODES = 250
CODE_SYNC_MAX_NODES = 150
#: Nesting deeper than this is what the JSON writer refuses ("Maximum serialization depth").
_DEEP = 500


class SaveError(Exception):
    """Why a project was not written. The save changed nothing: the document keeps its edits,
    its undo history and its unsaved mark, so the user can fix the cause and save again."""


def save_failure(err: BaseException, target: Path | str, project: Project) -> SaveError:
    """Turn whatever a save raised into one sentence the user can act on."""
    if isinstance(err, SaveError):
        return err
    if isinstance(err, OSError):
        reason = err.strerror or str(err) or type(err).__name__
        folder = Path(target).parent
        if isinstance(err, (FileExistsError, NotADirectoryError)) and not folder.is_dir():
            reason = f"{folder} is not a folder"  # mkdir's "File exists" would only puzzle
        return SaveError(f"Could not write {target}: {reason}. Nothing was changed on disk; "
                         "try another folder or free some space.")
    if isinstance(err, (ValueError, RecursionError)):  # incl. UnicodeEncodeError, pydantic's
        where = unwritable_value(project)
        at = f" The value at {where} cannot be stored." if where else ""
        return SaveError(f"The project cannot be written as JSON ({type(err).__name__}).{at} "
                         "Edit or remove that value and save again.")
    return SaveError(f"Saving failed unexpectedly: {type(err).__name__}: {err}")


def unwritable_value(project: Project) -> str:
    """The JSON path of the first value the writer refuses: a string that is not valid Unicode
    (a lone surrogate) or nesting too deep. Iterative, so deep nesting cannot overflow here."""
    try:
        root = project.model_dump()
    except (ValueError, RecursionError):
        return ""
    stack: list[tuple[Any, str, int]] = [(root, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > _DEEP:
            return f"{path[:60]}… (nested more than {_DEEP} levels deep)"
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path or "(top level)"
        elif isinstance(value, dict):
            for k, v in reversed(list(value.items())):
                stack.append((v, f"{path}.{k}" if path else str(k), depth + 1))
                stack.append((k, f"{path} (a key)", depth + 1))  # keys are written too
        elif isinstance(value, (list, tuple)):
            for i in reversed(range(len(value))):
                stack.append((value[i], f"{path}[{i}]", depth + 1))
    return ""


class Document(QObject):
    """Owns the project; the canvas and panels only read it and listen to its signals."""

    #: (event, info): "node_added", "node_removed", "node_changed", "edges_changed", "positions",
    #: "structure" (networks/blocks changed), "reset" (a new project was loaded).
    changed = Signal(str, dict)
    analyzed = Signal(object)  # Analysis
    dirty_changed = Signal(bool)
    path_changed = Signal(str)
    figures_ready = Signal()  # params/FLOPs of the current analysis are in summaries()
    _figures_done = Signal(int, object)  # from the worker thread, queued to this one
    code_ready = Signal()  # ``source`` (or ``source_error``) is current
    _code_done = Signal(int, object)

    def __init__(self, project: Project | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project or _empty_project()
        self.path: Path | None = None
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self.analysis: Analysis | None = None
        self.source: PythonSource | None = None
        self.source_error: str = ""
        self.last_analysis_ms: float = 0.0
        self._summary: dict = {}
        self._summary_for: Analysis | None = None
        self._figures_gen = 0
        self._figures_future = None
        self.figures_error = ""
        self._figures_done.connect(self._on_figures)
        self._code_gen = 0
        self._code_done.connect(self._on_code)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(ANALYSIS_DELAY_MS)
        self._timer.timeout.connect(self.analyze_now)
        self._timer.start()

    def _clean_changed(self, clean: bool) -> None:
        self.dirty_changed.emit(not clean)

    # -- state ----------------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    @property
    def title(self) -> str:
        return self.path.name if self.path else f"{self.project.name} (unsaved)"

    def graph(self, network: str) -> Graph:
        """The editing API over one network or block; every change it makes is announced."""
        return Graph(self.project, network, notify=self.announce)

    def edits(self) -> ProjectEdits:
        """The project-wide editing API (training settings, snapshot restores), announced too."""
        return ProjectEdits(self.project, notify=self.announce)

    def positions(self, network: str) -> dict[str, list[float]]:
        """Node positions of a network or block (read-only; moves go through commands)."""
        return self.graph(network).positions()

    def layout_direction(self) -> str:
        return str(self.project.ui.get("layout", "LR"))

    def names(self) -> list[str]:
        return [n.name for n in self.project.networks]

    # -- change plumbing ------------------------------------------------------------------------
    def announce(self, event: str, info: dict | None = None) -> None:
        """The Graph API's change hook: tell the views, schedule analysis."""
        self.changed.emit(event, info or {})
        self._timer.start()

    def analyze_now(self) -> Analysis:
        """Check the project and infer every shape (fast: the canvas and problems need it).
        The generated code is made on demand (:meth:`code`, :meth:`request_code`)."""
        self._timer.stop()
        t0 = time.perf_counter()
        self.analysis = analyze(self.project)
        self.source = None
        self.source_error = "" if self.analysis.ok else "\n".join(
            str(d) for d in self.analysis.errors)
        self._code_gen += 1
        self.last_analysis_ms = (time.perf_counter() - t0) * 1000
        self.analyzed.emit(self.analysis)
        self.request_figures()
        return self.analysis

    def code(self) -> PythonSource | None:
        """The generated module for the current analysis (made now if needed); None on errors."""
        a = self.analysis if self.analysis is not None and not self.analysis_pending \
            else self.analyze_now()
        if self.source is None and a.ok:
            try:
                self.source = generate(a)
            except CodegenError as err:
                self.source_error = str(err)
            except Exception as err:  # a codegen bug must not take the editor down
                self.source_error = f"code generation failed: {type(err).__name__}: {err}"
        return self.source

    def request_code(self) -> None:
        """Make the code for the code view: at once for small projects, else in the worker
        thread (codegen of a 500-node graph takes a few hundred ms). Emits ``code_ready``."""
        a = self.analysis
        if a is None:
            return
        if self.source is not None or not a.ok or self.size() <= CODE_SYNC_MAX_NODES:
            self.code()
            self.code_ready.emit()
            return
        gen = self._code_gen
        try:
            project = self.project.model_dump_json()  # a consistent copy, cheaply
        except (ValueError, RecursionError):  # not JSON-writable: make the code here instead
            self.code()
            self.code_ready.emit()
            return
        future = _pool().submit(_generate_code, project)
        future.add_done_callback(lambda f: _emit(self._code_done, gen, f))

    def _on_code(self, gen: int, future) -> None:
        if gen != self._code_gen:
            return
        try:
            self.source = future.result()
        except Exception as err:
            self.source_error = f"code generation failed: {type(err).__name__}: {err}"
        self.code_ready.emit()

    def size(self) -> int:
        return sum(len(n.nodes) for n in self.project.networks)

    def summaries(self) -> dict:
        """Per-network figures (params, FLOPs) for the current analysis, or {} until computed."""
        return self._summary if self._summary_for is self.analysis else {}

    def figures(self) -> dict:
        """node id -> NodeFigures over every network (empty until the worker has finished)."""
        return {f.node_id: f for s in self.summaries().values() for f in s.nodes}

    @property
    def figures_pending(self) -> bool:
        return self._figures_future is not None and not self._figures_future.done()

    def request_figures(self, force: bool = False) -> bool:
        """Count params and FLOPs in a worker thread (torch on the meta device, on a copy of the
        project), so neither the first torch import nor a big model ever stalls the window.
        Large projects are only counted when asked (``force``). True if a count started."""
        a = self.analysis
        if a is None or not a.ok or self.summaries():
            return False
        size = sum(len(n.nodes) for n in self.project.networks)
        if size > FIGURES_MAX_NODES and not force:
            return False
        try:
            project = self.project.model_dump_json()  # a consistent copy, cheaply
        except (ValueError, RecursionError) as err:  # Save says which value, and why
            self.figures_error = ("figures unavailable: the project cannot be copied "
                                  f"({type(err).__name__})")
            return False
        self._figures_gen += 1
        gen, target = self._figures_gen, a
        future = _pool().submit(_count_figures, project)
        self._figures_future = future
        future.add_done_callback(lambda f: _emit(self._figures_done, gen, (target, f)))
        return True

    def _on_figures(self, gen: int, payload: tuple) -> None:
        target, future = payload
        if gen != self._figures_gen or target is not self.analysis:
            return  # an edit came in meanwhile; a newer count follows
        try:
            self._summary = future.result()
        except Exception as err:  # figures are a convenience; a failure must not break editing
            self._summary = {}
            self.figures_error = f"figures unavailable: {type(err).__name__}: {err}"
        self._summary_for = target
        self.figures_ready.emit()

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
        """Write the project; raises SaveError and then changes nothing (file, path, history)."""
        target = Path(path) if path else self.path
        if target is None:
            raise SaveError("The project has no file name yet; use Save As.")
        if target.suffix != ".loom":
            target = target.with_suffix(".loom")
        try:
            save(self.project, target)
        except Exception as err:  # every failure is the user's to hear about, never a crash
            raise save_failure(err, target, self.project) from err
        self.path = target
        self.undo_stack.setClean()
        self.path_changed.emit(str(target))
        return target



_POOL = None


def _emit(signal, *args) -> None:
    """Deliver a worker's result; the document may have been closed (deleted) meanwhile."""
    try:
        signal.emit(*args)
    except RuntimeError:
        pass


def _pool():
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layerloom-figures")
    return _POOL


def _generate_code(project_json: str) -> PythonSource:
    return generate(Project.model_validate_json(project_json))


def _count_figures(project_json: str) -> dict:
    from compiler.summary import summarize

    return summarize(Project.model_validate_json(project_json))


def _empty_project() -> Project:
    from compiler import add_network

    project = Project(name="Untitled")
    add_network(project, "net")
    return project
