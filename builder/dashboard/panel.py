"""The Train panel: set up a run, start/pause/stop it, watch it, and browse earlier runs.

Training happens in a child process (``python -m training.runner``) on a snapshot of the project
saved into the run folder, so the editor stays responsive and editing the graph mid-run can never
change the model being trained; the run folder then documents exactly what was trained.

Runs belong to the project that made them: each project (an unsaved one too) has its own runs
folder (:class:`.home.RunsHome`), the panel shows that project's runs only, and a live run of a
project that is replaced is stopped (checkpointed) and let go, never shown under another one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QGroupBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from compiler import Project
from compiler.graph import Graph, ProjectEdits
from compiler.project import TrainingModel, save

from .controls import RunControls, make_actions
from .datafit import Misfit, check_fit
from .datafit import pending as fit_pending
from .form import TrainForm
from .home import RunsHome
from .imported import confirm_user_code, confirm_weights_fit, imported_weights, runner_args
from .naming import next_number, previous_snapshot, read_meta, what_changed, write_meta
from .notices import Notices
from .plots import PlotArea
from .process import RunnerProcess, runner_threads
from .runlist import RunList, export_code, export_weights
from .runs import RunData, list_runs, new_run_dir
from .status import HINTS, expected_metrics, graph_fingerprint

FRAME_MS = 250  # dashboard refresh period while training (4 frames a second)


class TrainingPanel(QWidget):
    run_started = Signal(str)
    run_finished = Signal(str, str)
    #: F5 refused (bad data, graph errors): why, in one line, for the status bar.
    start_refused = Signal(str)

    def __init__(self, get_project: Callable[[], Project],
                 get_project_path: Callable[[], Path | None], parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self.get_project, self.get_project_path = get_project, get_project_path
        self.trusted_code: set[str] = set()  # files the user allowed opaque nodes to import
        self._partial_weights = False  # the user agreed to start from the weights that fit
        self.pending_weights: Path | None = None  # an unsaved project's loaded weights
        # The editor sets these to push undoable commands; None writes the project directly.
        self.apply_training: Callable[[TrainingModel], None] | None = None
        self.apply_fit: Callable[[str, list[tuple[str, dict[str, Any]]]], None] | None = None
        self._storing = False  # True while our own write comes back as a document change
        self.proc: RunnerProcess | None = None
        self._background: list[RunnerProcess] = []  # let-go runs that are still exiting
        self.current: RunData | None = None
        self.runs: dict[str, RunData] = {}
        self.home = RunsHome()
        self._fingerprint: str | None = None
        self._fit_stale = True
        self._ticks = 0
        self._build()
        self.sync_project()
        self.ui_timer = QTimer(self)
        self.ui_timer.setInterval(FRAME_MS)
        self.ui_timer.timeout.connect(self._tick)
        self.ui_timer.start()
        self.actions_run = self._make_actions()
        self._update_buttons()

    def _make_actions(self) -> list[QAction]:
        """F5, F6 and Shift+F5 as actions the main window puts in its Run menu (one owner)."""
        acts = make_actions(self, self.start, self.pause, self.stop)
        self.start_action, self.pause_action, self.stop_action = acts
        return acts

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.form = TrainForm()
        self.form.changed.connect(self._form_changed)
        setup = QGroupBox("Train")
        QVBoxLayout(setup).addWidget(self.form)

        self.controls = RunControls()
        c = self.controls
        self.start_btn, self.pause_btn, self.resume_btn, self.stop_btn = (
            c.start_btn, c.pause_btn, c.resume_btn, c.stop_btn)
        self.device_label, self.progress, self.progress_label = (
            c.device_label, c.progress, c.progress_label)
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.pause)
        self.resume_btn.clicked.connect(self.resume)
        self.stop_btn.clicked.connect(self.stop)
        self.notices = Notices()
        self.notices.adapt_clicked.connect(self.adapt_to_data)
        self.banner, self.warning, self.failure = (self.notices.banner, self.notices.warning,
                                                   self.notices.failure)

        self.plots = PlotArea(interval_ms=0)  # refreshed from _tick
        from .samples import SamplesView

        self.samples = SamplesView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plots, "Plots")
        self.tabs.addTab(self.samples, "Samples")

        self.run_view = RunList()
        self.run_list = self.run_view.tree
        self.resume_run_btn = self.run_view.resume_btn
        self.run_view.selection_changed.connect(self._selection_changed)
        self.run_view.resume_requested.connect(self.resume_run)
        self.run_view.failed.connect(lambda title, why: self._show_failure(
            title, why, "choose another folder"))

        # Three columns, as a bottom dock wants them: set-up and run control | curves and
        # samples | run history. Each column keeps its height for what it shows.
        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(setup)
        col.addWidget(self.controls)
        col.addWidget(self.notices)
        col.addStretch(1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.addWidget(self.run_view)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 3)
        split.setStretchFactor(2, 1)
        split.setSizes([380, 700, 380])
        split.setChildrenCollapsible(False)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split, 1)

    # -- the shown project -----------------------------------------------------------------------
    def sync_project(self) -> None:
        """Follow the editor's project: another one (File ▸ New, Open, a template) shows its own
        settings and runs only; the first save of an unsaved one takes its runs along."""
        project, path = self.get_project(), self.get_project_path()
        change = self.home.follow(project, path)
        if change == "same":
            return
        if change == "other":
            if self.proc is not None:  # the previous project's run: checkpoint it, let it go
                self._let_go(stop=True)
            self.current = None
            self._fingerprint = None
            self.notices.clear_run()
            self.plots.set_runs([])
            self.samples.show_run(None)
            self.controls.reset()
            self.load_settings()
        elif change == "saved":
            self.home.take_runs(keep={self.current.run_id} if self.running() and self.current
                                else set())
            if self.current is not None and not self.running():
                self.current = None  # it moved: re-read from the new folder below
        self.reload_runs()
        self._fit_stale = True
        self._update_buttons()

    def load_settings(self) -> None:
        """Fill the form from the current project (call after opening another project)."""
        self.form.load(self.get_project())
        self.form.set_imported_weights(imported_weights(self.get_project_path(),
                                                        self.pending_weights))
        self._fit_stale = True

    def _form_changed(self) -> None:
        """Write the form into the project: through ``apply_training`` when the editor set it
        (an undoable command on the document), else through the project's own edit API (the
        panel on its own, as in scripts and benchmarks)."""
        project = self.get_project()
        training = self.form.training_from(project.training)
        self._fit_stale = True
        if training == project.training:
            return
        self._storing = True
        try:
            if self.apply_training is not None:
                self.apply_training(training)
            else:
                ProjectEdits(project).set_training(training)
        finally:
            self._storing = False

    def training_changed(self) -> None:
        """The document's training settings changed elsewhere (undo, another file): refill."""
        self._fit_stale = True
        if not self._storing and not self.running():
            self.load_settings()

    # -- data against model ----------------------------------------------------------------------
    def check_fit(self, wait: bool = True) -> Misfit | None:
        """Compare the chosen data with the model; the notice shows the answer. The frame tick
        asks without waiting (the data loads in a worker) and asks again until it has one."""
        try:
            misfit = check_fit(self.get_project(), wait=wait)
        except Exception:  # a half-edited graph: the Start check names its problems
            misfit = None
        self._fit_stale = not wait and fit_pending()
        self.notices.show_misfit(misfit)
        return misfit

    def adapt_to_data(self) -> None:
        """The notice's one click: the Input shape and output width set to the data's."""
        misfit = self.check_fit()
        if misfit is None or not misfit.changes:
            return
        if self.apply_fit is not None:
            self.apply_fit(misfit.network, misfit.changes)
        else:
            g = Graph(self.get_project(), misfit.network)
            for node_id, params in misfit.changes:
                g.set_params(node_id, **params)
        self.check_fit()

    # -- run control ---------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self.current.status if self.current else "idle"

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def start(self) -> None:
        """F5: resume a paused run, otherwise start a new one (only when it can succeed)."""
        if self.running():
            if self.current and self.current.status == "paused":
                self.resume()
            return
        self.sync_project()
        self._form_changed()  # what the form shows is what trains
        project = self.get_project()
        if not confirm_user_code(self, project, self.trusted_code):
            return  # opaque nodes import the user's code: not without their yes
        problem = self.check(project)
        if problem:
            self._show_failure("Cannot start", problem[0], problem[1] or HINTS["setup"])
            self.start_refused.emit(f"Cannot train: {problem[0]}")
            return
        partial = confirm_weights_fit(self, project, self.form.start_weights(),
                                      self.trusted_code)
        if partial is None:
            return  # the weights no longer fit everywhere and the user said no
        self._partial_weights = partial
        root = self.home.root()
        before = list_runs(root)
        run_dir = new_run_dir(root)
        snapshot = project.model_copy(deep=True)
        save(snapshot, run_dir / "project.loom")
        write_meta(run_dir, next_number(before), what_changed(previous_snapshot(before), snapshot))
        self._launch(run_dir, resume=False, fingerprint=graph_fingerprint(project))

    def check(self, project: Project) -> tuple[str, str] | None:
        """(what is wrong, what to do) when the run could not start, before starting it."""
        from training.data import FILES, DataError, load
        from training.plan import PlanError, prepare

        try:
            prepare(project, load_data=False, trust=tuple(self.trusted_code))
        except PlanError as err:
            return err.reason, err.hint
        t = project.training
        if not t.dataset:
            return "no dataset is chosen", "pick a built-in dataset or your own file"
        if t.dataset in FILES:
            try:
                load(t.dataset, t.dataset_options, 0)
            except DataError as err:
                return str(err), (f"expected {err.expected}" if err.expected else "") + \
                    "; choose another file with Choose…"
        misfit = self.check_fit()
        if misfit is not None and misfit.blocking:
            return misfit.reason, ("press “Adapt the model to the data”" if misfit.changes
                                   else "change the Input shape or the last layer's width")
        return None

    def _launch(self, run_dir: Path, *, resume: bool, fingerprint: str | None) -> None:
        run = RunData.load(run_dir) if resume else RunData(run_dir, meta=read_meta(run_dir))
        run.status = "starting"
        run.failure = None
        self.current = run
        self.runs[run.run_id] = run
        self._fingerprint = fingerprint
        self.notices.clear_run()
        weights = None if resume else self.form.start_weights()
        self.proc = RunnerProcess(run_dir / "project.loom", run_dir, resume=resume, poll_ms=0,
                                  threads=runner_threads(), parent=self,
                                  extra_args=runner_args(self.get_project(), self.trusted_code,
                                                         weights, self._partial_weights))
        self.proc.event.connect(self._on_event)
        self.proc.ended.connect(self._on_ended)
        self.run_view.show_runs(self.runs, select=run.run_id)
        self.plots.set_runs([run])
        self.plots.prepare(["loss", *expected_metrics(self.get_project()), "lr"])
        self.samples.show_run(run)
        self._update_buttons()
        self.run_started.emit(run.run_id)

    def pause(self) -> None:
        if self.running() and self.current and self.current.status == "running":
            self.proc.send("pause")
            self.progress_label.setText("pausing after this step…")

    def resume(self) -> None:
        if self.running():
            self.proc.send("resume")
        elif self.current and self.current.resumable:
            self.resume_run(self.current.run_id)

    def stop(self) -> None:
        if self.running():
            self.proc.send("stop")
            self.progress_label.setText("stopping: saving a checkpoint…")

    def resume_run(self, run_id: str) -> None:
        """Continue a stopped (or killed) run from its last checkpoint, in the same folder."""
        run = self.runs.get(run_id)
        if self.running() or run is None or not run.resumable:
            return
        self._launch(run.run_dir, resume=True, fingerprint=None)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop a live run (checkpointed) before the app quits; kill it if it does not listen."""
        if self.running():
            self.proc.send("stop")
            if not self.proc.proc.waitForFinished(timeout_ms):
                self.proc.kill()
                self.proc.proc.waitForFinished(2000)
        for proc in list(self._background):
            if proc.running() and not proc.proc.waitForFinished(timeout_ms):
                proc.kill()
                proc.proc.waitForFinished(2000)

    def _let_go(self, stop: bool) -> None:
        """Detach the live process: a run that ended (its process may take a moment to exit)
        or one of a project no longer shown. Its events file stays its record."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.event.disconnect(self._on_event)
        proc.ended.disconnect(self._on_ended)
        if stop and proc.running():
            proc.send("stop")
        if proc.running():
            self._background.append(proc)
            proc.ended.connect(lambda _ev, p=proc: self._exited(p))

    def _exited(self, proc: RunnerProcess) -> None:
        if proc in self._background:
            self._background.remove(proc)
        self._move_after_save()

    def _move_after_save(self) -> None:
        """A run that was live when its unsaved project was first saved joins the others in
        ``<project>.runs/`` once its process has exited (never while it still writes)."""
        if self.running() or any(self.home.pending_move(p.run_dir) for p in self._background):
            return
        if self.home.take_runs(keep=set()):
            self.reload_runs()

    def _on_event(self, ev: dict) -> None:
        if self.current is None:
            return
        self.current.apply(ev)
        kind = ev.get("event")
        if kind == "warning":
            self.notices.show_warning(ev)
        if kind == "started":
            name = ev.get("device_name") or ev.get("device")
            why = ev.get("device_reason")
            self.device_label.setText(f"Device: {name}" + (f" — {why}" if why else ""))
            if self._fingerprint is None:  # a resumed run trains its own snapshot
                from compiler import load
                try:
                    self._fingerprint = graph_fingerprint(load(self.current.run_dir /
                                                               "project.loom"))
                except Exception:
                    self._fingerprint = None
        if self.current.terminal:
            self._ended()
        elif kind in ("started", "paused", "resumed"):
            self._update_buttons()
            self._update_progress()
            self.run_view.refresh(self.current)

    def _on_ended(self, ev: dict) -> None:
        """The process exited before its run said it ended (killed): the run ends now."""
        if self.current is not None and not self.current.terminal:
            self.current.apply(ev)
        self._ended()

    def _ended(self) -> None:
        """The run reached its end (finished, stopped, failed): from this moment the status,
        the buttons and the list agree, even while the process is still exiting."""
        run = self.current
        self._let_go(stop=False)
        if run is None:
            return
        if run.status == "failed" and run.failure:
            f = run.failure
            self._show_failure("The run failed", f.reason, f.hint or HINTS.get(f.kind, ""),
                               run.run_dir / "runner.log")
        self.banner.hide()
        self._update_buttons()
        self._update_progress()
        self.run_view.refresh(run)
        self.samples.show_run(run)
        self.plots.refresh()
        self.run_finished.emit(run.run_id, run.status)
        self._move_after_save()

    def _show_failure(self, title: str, reason: str, hint: str, log: Path | None = None) -> None:
        self.notices.show_failure(title, reason, hint, log)

    # -- periodic UI -------------------------------------------------------------------------
    def _tick(self) -> None:
        """The dashboard's one frame: read new events, then draw. One wake-up per frame matters
        on small machines, where each wake-up of this process stalls the runner's threads."""
        if self.proc is not None and self.running():
            self.proc.poll()
        if self.running():
            self.plots.refresh()
        self.sync_project()
        if self._fit_stale and not self.running():
            self.check_fit(wait=False)
        if self.current is None:
            return
        if self.running():
            self._update_progress()
            self.run_view.refresh(self.current)
            self._ticks += 1
            if self._ticks % 4 == 0:  # hashing the project each second is plenty for a banner
                self.graph_changed()
        shown = self.plots.runs[0] if self.plots.runs else self.current
        self.samples.show_run(shown)

    def apply_theme(self) -> None:
        self.plots.apply_theme()
        self.samples.update()

    def graph_changed(self) -> None:
        """Show the banner when the edited graph no longer matches the running snapshot.
        The editor may also call this on each document change for an immediate update."""
        if self.notices.misfit is not None:  # re-check only a shown notice: analysis costs
            self._fit_stale = True  # up to ~0.3 s on a big graph, too much for every edit
        if not self.running() or self._fingerprint is None:
            return
        try:
            changed = graph_fingerprint(self.get_project()) != self._fingerprint
        except Exception:
            return
        self.banner.setVisible(changed)

    def _update_progress(self) -> None:
        self.controls.show_progress(self.current)

    def _update_buttons(self) -> None:
        live = self.running()
        self.controls.show_buttons(self.current, live)
        if hasattr(self, "start_action"):
            self.start_action.setEnabled(self.start_btn.isEnabled() or self.resume_btn.isEnabled())
            self.pause_action.setEnabled(self.pause_btn.isEnabled())
            self.stop_action.setEnabled(live)
        self.form.setEnabled(not live)
        self.run_view.busy = live
        self.run_view.update_buttons()

    # -- runs list -----------------------------------------------------------------------------
    def reload_runs(self) -> None:
        """Read the runs folder of the current project (history survives restarts)."""
        live = self.current if self.running() else None
        self.runs = {}
        for d in list_runs(self.home.root()):
            self.runs[d.name] = live if live and live.run_id == d.name else RunData.load(d)
        if live is not None:
            self.runs[live.run_id] = live
        elif self.current is not None and self.current.run_id in self.runs:
            self.current = self.runs[self.current.run_id]
        else:
            self.current = None
        self.run_view.show_runs(self.runs)

    def run_name(self, run_id: str) -> str:
        """The name people read ('#3 lr 0.01 · 14:02'), for the status bar."""
        run = self.runs.get(run_id)
        return run.name if run is not None else run_id

    def selected_runs(self) -> list[RunData]:
        return self.run_view.selected()

    def select_runs(self, run_ids: list[str]) -> None:
        self.run_view.select(run_ids)

    def _selection_changed(self) -> None:
        shown = list(self.selected_runs())
        if self.running() and self.current and self.current not in shown:
            shown.insert(0, self.current)
        if not shown and self.current:
            shown = [self.current]
        self.plots.set_runs(shown)
        self.samples.show_run(shown[0] if shown else None)

    # -- export --------------------------------------------------------------------------------
    def export_code(self, run_id: str, dest: Path) -> Path:
        """The exact generated source the run trained (not the graph as edited since)."""
        return export_code(self.runs[run_id], dest)

    def export_weights(self, run_id: str, dest: Path) -> Path:
        """State dicts keyed by network name: ``NETWORKS[name]().load_state_dict(w[name])``."""
        return export_weights(self.runs[run_id], dest)

