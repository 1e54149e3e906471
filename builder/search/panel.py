"""The Search dock, beside Training: the space (choices, domains, size), the settings (strategy,
budgets, objective, constraints) and Start / Stop / Resume; while a search runs, the live scatter
of metric against cost with its Pareto front, and the trial table.

The panel only edits the document through undo commands and only searches through the child
process (``layerloom search --events``): the search is the CLI's, run on a snapshot of the
project written into the study folder (``<project>.search/``), so edits during a search never
reach it. Each event is also appended to ``app-events.jsonl`` there, which Resume replays so the
scatter and table show the whole study, not only the trials of this session.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from compiler.graph import GraphEditError
from compiler.project import Project, save

from ..commands import push
from ..document import Document
from .commands import RemoveChoiceCommand, SetSearchCommand
from .curves import TrialCurves
from .process import SearchProcess, search_args
from .scatter import SearchScatter
from .space_view import SpaceView
from .table import TrialTable

STRATEGIES = (("evolution", "Aging evolution"), ("rl", "REINFORCE controller"),
              ("tpe", "TPE (Bayesian)"), ("nsga2", "NSGA-II (two objectives)"),
              ("random", "Random (baseline)"))
OBJECTIVES = (("params", "parameters"), ("flops", "FLOPs"), ("latency", "latency"))
EVENTS_FILE = "app-events.jsonl"


def study_dir(path: str | None, project: Project) -> Path:
    """``<project stem>.search/`` beside a saved project (as the CLI puts it); for an unsaved
    one a folder in the app's data folder."""
    if path:
        p = Path(path)
        return p.with_name(p.stem + ".search")
    base = os.environ.get("LAYERLOOM_DATA_DIR") or str(Path(tempfile.gettempdir()) / "layerloom")
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in project.name) or "search"
    return Path(base) / "unsaved" / f"{stem}.search"


def _spin(low: int, high: int, special: str = "", tip: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setKeyboardTracking(False)
    if special:
        box.setSpecialValueText(special)
    box.setToolTip(tip)
    return box


class SearchPanel(QWidget):
    """The dock's widget. ``open_window(project)`` (set by the main window) opens a project in a
    new window and returns it; ``ask(title, text)`` answers yes/no (tests replace both)."""

    started = Signal()
    finished = Signal(dict)
    status = Signal(str)

    def __init__(self, doc: Document, get_path: Callable[[], str | None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.get_path = get_path
        self.open_window: Callable[[Project], Any] | None = None
        self.ask: Callable[[str, str], bool] = lambda _t, _x: True
        self.proc: SearchProcess | None = None
        self.study: Path | None = None
        self.base: Project | None = None  # the snapshot being searched (for describe)
        self.opened: list[Any] = []  # windows of opened trials (kept alive)
        self._filling = False

        self.space = SpaceView()
        self.space.remove_requested.connect(self._remove_choice)
        self.strategy = QComboBox()
        for key, text in STRATEGIES:
            self.strategy.addItem(text, key)
        self.objective = QComboBox()
        for key, text in OBJECTIVES:
            self.objective.addItem(text, key)
        self.trials = _spin(1, 100_000, tip="Total trials of the study (Resume counts the "
                                            "finished ones)")
        self.steps = _spin(0, 10_000_000, "recipe default", "Training steps per trial")
        self.max_params = _spin(0, 2_000_000_000, "no limit", "Reject larger architectures "
                                                              "before training")
        self.max_flops = _spin(0, 2_000_000_000, "no limit", "Reject costlier architectures "
                                                             "before training")
        form = QFormLayout()
        form.addRow("strategy", self.strategy)
        form.addRow("cost", self.objective)
        form.addRow("trials", self.trials)
        form.addRow("steps / trial", self.steps)
        form.addRow("max params", self.max_params)
        form.addRow("max FLOPs", self.max_flops)
        for w in (self.strategy, self.objective):
            w.currentIndexChanged.connect(lambda _i: self._settings_edited())
        for w in (self.trials, self.steps, self.max_params, self.max_flops):
            w.valueChanged.connect(lambda _v: self._settings_edited())

        self.start_btn = QPushButton("Start")
        self.start_btn.setToolTip("Search from scratch (a previous study is replaced)")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Stop after checkpointing the running trial")
        self.resume_btn = QPushButton("Resume")
        self.resume_btn.setToolTip("Continue the study in the project's .search folder")
        self.start_btn.clicked.connect(lambda: self.start(resume=False))
        self.stop_btn.clicked.connect(self.stop)
        self.resume_btn.clicked.connect(lambda: self.start(resume=True))
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.stop_btn, self.resume_btn):
            buttons.addWidget(b)
        self.state = QLabel("")
        self.state.setWordWrap(True)

        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.space, 1)
        col.addLayout(form)
        col.addLayout(buttons)
        col.addWidget(self.state)
        self.scatter = SearchScatter()
        self.table = TrialTable()
        self.scatter.trial_clicked.connect(self.open_trial)
        self.table.trial_clicked.connect(self.open_trial)
        self.curves = TrialCurves()
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.scatter)
        plots.addWidget(self.curves)
        plots.setStretchFactor(0, 3)
        plots.setStretchFactor(1, 2)
        results = QSplitter(Qt.Orientation.Vertical)
        results.addWidget(plots)
        results.addWidget(self.table)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(results)
        split.setStretchFactor(1, 3)
        split.setSizes([330, 1000])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split)
        self.trials_seen: dict[int, dict[str, Any]] = {}
        doc.changed.connect(self._doc_changed)
        self.refresh()

    # -- the document --------------------------------------------------------------------------
    def _doc_changed(self, event: str, _info: dict) -> None:
        if event in ("search", "reset", "structure") or event.startswith("node"):
            self.refresh()

    def refresh(self) -> None:
        """Show the document's space and settings (without echoing them back as edits)."""
        project = self.doc.project
        s = project.search
        self.space.refresh(project)
        self._filling = True
        try:
            i = self.strategy.findData(s.strategy)
            self.strategy.setCurrentIndex(max(0, i))
            self.objective.setCurrentIndex(max(0, self.objective.findData(s.objective)))
            self.trials.setValue(s.trials)
            self.steps.setValue(s.steps or 0)
            self.max_params.setValue(min(s.max_params or 0, self.max_params.maximum()))
            self.max_flops.setValue(min(s.max_flops or 0, self.max_flops.maximum()))
        finally:
            self._filling = False
        self._buttons()

    def _settings_edited(self) -> None:
        if self._filling:
            return
        s = self.doc.project.search.model_copy(deep=True)
        s.strategy = str(self.strategy.currentData())
        s.objective = self.objective.currentData()
        s.trials = self.trials.value()
        s.steps = self.steps.value() or None
        s.max_params = self.max_params.value() or None
        s.max_flops = self.max_flops.value() or None
        if s != self.doc.project.search:
            push(self.doc, SetSearchCommand(self.doc, s))

    def _remove_choice(self, scope: str, node: str, param: str) -> None:
        try:
            push(self.doc, RemoveChoiceCommand(self.doc, scope, node, param))
        except GraphEditError as err:
            self.status.emit(f"Refused: {err}")

    def space_summary(self) -> str:
        return self.space.size.text()

    # -- running -------------------------------------------------------------------------------
    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def _buttons(self) -> None:
        busy = self.running()
        study = study_dir(self.get_path(), self.doc.project)
        has_space = bool(self.doc.project.search.choices)
        self.start_btn.setEnabled(not busy and has_space)
        self.stop_btn.setEnabled(busy)
        self.resume_btn.setEnabled(not busy and (study / "study.db").exists())

    def start(self, resume: bool = False) -> bool:
        """Run the search on a snapshot of the project; False (with the reason shown) when it
        cannot start."""
        if self.running():
            return False
        project = self.doc.project
        if not project.search.choices:
            return self._refuse("Nothing to search: right-click a parameter in the Inspector "
                                "and choose Search over…")
        study = study_dir(self.get_path(), project)
        if not resume and (study / "study.db").exists():
            if not self.ask("Start a new search", f"{study} holds a study already. Replace "
                            "it (its trials are deleted)? Resume continues it instead."):
                return False
            shutil.rmtree(study, ignore_errors=True)
        study.mkdir(parents=True, exist_ok=True)
        self.base = project.model_copy(deep=True)
        snapshot = study / "base.loom"
        save(self.base, snapshot)
        s = project.search
        args = search_args(snapshot, study, strategy=s.strategy, trials=s.trials, steps=s.steps,
                           objective=s.objective, max_params=s.max_params,
                           max_flops=s.max_flops)
        self.study = study
        self.scatter.clear()
        self.curves.clear()
        self.table.clear_trials()
        self.trials_seen.clear()
        if resume:
            self._replay(study / EVENTS_FILE)
        self.proc = SearchProcess(args, study / "search.log", self)
        self.proc.event.connect(self.on_event)
        self.proc.ended.connect(self._ended)
        self.state.setText("starting the search…")
        self._buttons()
        self.started.emit()
        return True

    def _refuse(self, why: str) -> bool:
        self.state.setText(why)
        self.status.emit(why)
        return False

    def stop(self) -> None:
        if self.running():
            self.state.setText("stopping: the running trial is checkpointed…")
            self.proc.stop()  # type: ignore[union-attr]

    def shutdown(self, timeout_ms: int = 20_000) -> None:
        """Closing the app: stop the search and wait (bounded) for its trial's checkpoint."""
        if self.running():
            self.proc.stop()  # type: ignore[union-attr]
            if not self.proc.wait(timeout_ms):  # type: ignore[union-attr]
                self.proc.proc.kill()  # type: ignore[union-attr]
                self.proc.wait(3000)  # type: ignore[union-attr]

    def _replay(self, path: Path) -> None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return
        for line in lines:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") in ("trial_finished", "front"):
                self._show(ev)

    def on_event(self, ev: dict[str, Any]) -> None:
        """One event of the child process (public: a test may feed recorded events)."""
        if self.study is not None and ev.get("event") != "trial_metric":
            with open(self.study / EVENTS_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(ev, default=str) + "\n")
        self._show(ev)

    def _show(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "search_started":
            self.scatter.higher_is_better = bool(ev.get("higher_is_better", True))
            self.scatter.set_axes(str(ev.get("metric_name", "metric")),
                                  str(ev.get("objective", "params")))
            size = ev.get("space_size")
            self.state.setText(f"searching {size or 'a continuous space of'} architectures "
                               f"with {ev.get('strategy')}: {ev.get('trials_done', 0)} of "
                               f"{ev.get('trials_planned')} trials done")
            self.trials_planned = int(ev.get("trials_planned") or 0)
        elif kind == "trial_started":
            self.table.trial_started(ev)
            self.state.setText(f"trial {ev['number']} training…")
        elif kind == "trial_metric":
            self.table.trial_metric(ev)
            self.curves.metric(ev)
        elif kind == "trial_finished":
            self.trials_seen[int(ev["number"])] = ev
            self.table.trial_finished(ev)
            self.scatter.add_trial(ev)
            done = sum(1 for t in self.trials_seen.values() if t.get("state") != "running")
            self.state.setText(f"{done} trial{'s' * (done != 1)} finished"
                               + (f" of {self.trials_planned}" if getattr(
                                   self, "trials_planned", 0) else ""))
        elif kind == "front":
            self.scatter.set_front(list(ev.get("numbers") or []))
        elif kind == "search_finished":
            self.scatter.set_front(list(ev.get("front") or []))
            best = ev.get("best")
            self.state.setText(("search stopped" if ev.get("stopped") else "search finished")
                               + ("" if best is None else f"; best: trial {best}")
                               + " (click a point or a row to open it)")
        elif kind == "error":
            self.state.setText(f"search error: {ev.get('message')}")
            self.status.emit(f"Search: {ev.get('message')}")

    def _ended(self, ev: dict[str, Any]) -> None:
        self._buttons()
        self.finished.emit(ev)

    # -- opening a trial -----------------------------------------------------------------------
    def open_trial(self, number: int) -> Any:
        """Open trial ``number``'s architecture (its resolved project) in a new window, with what
        differs from the base listed; None (and the reason shown) when it has none."""
        from compiler.loading import load
        from compiler.project import ProjectLoadError
        from training.search.space import differences

        ev = self.trials_seen.get(number) or self.table.records.get(number)
        path = (ev or {}).get("project")
        if not path or not Path(path).exists() or self.open_window is None:
            why = (ev or {}).get("reason") or "it has no architecture file yet"
            self.status.emit(f"Trial {number} cannot be opened: {why}")
            return None
        try:
            project = load(path)
        except (ProjectLoadError, OSError, ValueError) as err:
            self.status.emit(f"Trial {number}: {err}")
            return None
        base = self.base or self.doc.project
        note = None
        try:
            diffs = differences(base, dict(ev.get("choices") or {}))
        except ValueError as err:
            diffs, note = [], f"(differences unknown: {err})"
        project.name = f"{base.name} trial {number}"[:80]
        window = self.open_window(project)
        from .trial_view import attach_differences

        attach_differences(window, number, ev, diffs, note)
        self.opened.append(window)
        return window

