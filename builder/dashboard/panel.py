"""The Train panel: set up a run, start/pause/stop it, watch it, and browse earlier runs.

Training happens in a child process (``python -m training.runner``) on a snapshot of the project
saved into the run folder, so the editor stays responsive and editing the graph mid-run can never
change the model being trained; the run folder then documents exactly what was trained.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from compiler import Project
from compiler.project import TrainingModel, save

from .form import TrainForm
from .plots import PlotArea
from .process import RunnerProcess, runner_threads
from .runs import RunData, format_duration, list_runs, new_run_dir, runs_root
from .samples import SamplesView

HINTS = {"nan": "lower the learning rate, turn on grad_clip, or check the data for NaN values",
         "oom": "lower the batch size, use amp bf16/fp16, or make the model smaller",
         "data": "check the dataset file and the options in the Train form",
         "crash": "see runner.log in the run folder; resume from the last checkpoint or start "
                  "again",
         "setup": "fix the settings above and press Start again",
         "checkpoint": "resume from an earlier checkpoint, or start a new run",
         "codegen": "this is a Layerloom bug: please report it with the project file"}
STATUS_TEXT = {"starting": "starting…", "running": "running", "paused": "paused",
               "finished": "finished", "stopped": "stopped", "failed": "failed"}


def graph_fingerprint(project: Project) -> str:
    """Hash of what the runner would compile (networks and blocks), not layout or settings."""
    data = project.model_dump(include={"networks", "blocks"}, mode="json")
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()


FRAME_MS = 250  # dashboard refresh period while training (4 frames a second)


def expected_metrics(project: Project) -> list[str]:
    """The recipe's headline metric, if it has one, so its plot can be laid out in advance."""
    from training import recipes

    try:
        name = recipes.get(project.training.recipe or "").metric[0]
    except (KeyError, AttributeError, IndexError, TypeError):
        return []
    return [name] if name and name != "loss" else []


class TrainingPanel(QWidget):
    run_started = Signal(str)
    run_finished = Signal(str, str)

    def __init__(self, get_project: Callable[[], Project],
                 get_project_path: Callable[[], Path | None], parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self.get_project, self.get_project_path = get_project, get_project_path
        # The editor sets this to push an undoable command; None writes the project directly.
        self.apply_training: Callable[[TrainingModel], None] | None = None
        self._storing = False  # True while our own write comes back as a document change
        self.proc: RunnerProcess | None = None
        self.current: RunData | None = None
        self.runs: dict[str, RunData] = {}
        self._root: Path | None = None
        self._fingerprint: str | None = None
        self._loaded_for: int | None = None
        self._ticks = 0
        self._build()
        self.load_settings()
        self.reload_runs()
        self.ui_timer = QTimer(self)
        self.ui_timer.setInterval(FRAME_MS)
        self.ui_timer.timeout.connect(self._tick)
        self.ui_timer.start()
        self.actions_run = self._make_actions()
        self._update_buttons()

    def _make_actions(self) -> list[QAction]:
        """Start/resume (F5), pause (F6) and stop (Shift+F5) as actions: the main window puts
        these very objects in its Run menu, so each key has one owner and no ambiguity."""
        acts = []
        for text, slot, key, tip in (
                ("&Train / Resume", self.start, "F5", "Start a run, or resume a paused one"),
                ("&Pause Training", self.pause, "F6", "Pause after the current step"),
                ("&Stop Training", self.stop, "Shift+F5",
                 "Stop after the current step and save a checkpoint")):
            act = QAction(text, self)
            act.setShortcut(QKeySequence(key))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            act.setStatusTip(tip)
            act.triggered.connect(slot)
            self.addAction(act)
            acts.append(act)
        self.start_action, self.pause_action, self.stop_action = acts
        return acts

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.form = TrainForm()
        self.form.changed.connect(self._form_changed)
        setup = QGroupBox("Train")
        QVBoxLayout(setup).addWidget(self.form)

        self.start_btn = QPushButton("Start")
        self.start_btn.setToolTip("Start a new run (F5; resumes when paused)")
        self.pause_btn = QPushButton("Pause")
        self.resume_btn = QPushButton("Resume")
        self.stop_btn = QPushButton("Stop")
        self.stop_btn.setToolTip("Stop after the current step and save a checkpoint (Shift+F5)")
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.pause)
        self.resume_btn.clicked.connect(self.resume)
        self.stop_btn.clicked.connect(self.stop)
        self.device_label = QLabel("Device: —")
        controls = QHBoxLayout()
        for b in (self.start_btn, self.pause_btn, self.resume_btn, self.stop_btn):
            controls.addWidget(b)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(14)
        self.progress_label = QLabel("No run yet.")

        self.banner = QLabel("The graph changed since this run started. The run keeps training "
                             "the model as it was; start a new run to train the edited graph.")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #fff4ce; border: 1px solid #e0c060; padding: 4px;"
                                  " color: #5a4500")
        self.banner.hide()
        # The runner's warnings (a diverging loss): the run goes on, the user should know why.
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(self.banner.styleSheet())
        self.warning.hide()
        self.failure = QLabel()
        self.failure.setWordWrap(True)
        self.failure.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.failure.setStyleSheet("background: #fde7e9; border: 1px solid #d9534f; padding: 4px;"
                                   " color: #6b1016")
        self.failure.hide()

        self.plots = PlotArea(interval_ms=0)  # refreshed from _tick
        self.samples = SamplesView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plots, "Plots")
        self.tabs.addTab(self.samples, "Samples")

        self.run_list = QTreeWidget()
        self.run_list.setHeaderLabels(["Run", "Status", "Duration", "Metrics (final or latest)"])
        self.run_list.setRootIsDecorated(False)
        self.run_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.run_list.setToolTip("Select several runs to overlay their curves")
        self.run_list.itemSelectionChanged.connect(self._selection_changed)
        self.run_list.setColumnWidth(0, 120)
        self.run_list.setColumnWidth(1, 62)
        self.run_list.setColumnWidth(2, 56)
        self.resume_run_btn = QPushButton("Resume run")
        self.resume_run_btn.setToolTip("Continue the selected stopped run from its checkpoint")
        self.export_code_btn = QPushButton("Export code…")
        self.export_weights_btn = QPushButton("Export weights…")
        self.resume_run_btn.clicked.connect(self._resume_selected)
        self.export_code_btn.clicked.connect(self._export_code_dialog)
        self.export_weights_btn.clicked.connect(self._export_weights_dialog)
        run_box = QWidget()
        rl = QVBoxLayout(run_box)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("Runs"))
        rl.addWidget(self.run_list, 1)
        rb = QHBoxLayout()
        rb.addWidget(self.resume_run_btn)
        rb.addWidget(self.export_code_btn)
        rb.addWidget(self.export_weights_btn)
        rl.addLayout(rb)

        # Three columns, as a bottom dock wants them: set-up and run control | curves and
        # samples | run history. Each column keeps its height for what it shows.
        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(setup)
        col.addLayout(controls)
        col.addWidget(self.device_label)
        col.addWidget(self.progress)
        col.addWidget(self.progress_label)
        col.addWidget(self.banner)
        col.addWidget(self.warning)
        col.addWidget(self.failure)
        col.addStretch(1)
        self.progress_label.setWordWrap(True)
        self.device_label.setWordWrap(True)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.addWidget(run_box)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 3)
        split.setStretchFactor(2, 1)
        split.setSizes([380, 700, 380])
        split.setChildrenCollapsible(False)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split, 1)
        self._update_buttons()

    # -- settings ------------------------------------------------------------------------------
    def load_settings(self) -> None:
        """Fill the form from the current project (call after opening another project)."""
        project = self.get_project()
        self._loaded_for = id(project)
        self.form.load(project)

    def _form_changed(self) -> None:
        """Write the form into the project: through ``apply_training`` when the editor set it
        (an undoable command on the document), else directly (the panel on its own)."""
        project = self.get_project()
        holder = SimpleNamespace(training=project.training.model_copy(deep=True))
        self.form.store(holder)  # type: ignore[arg-type]
        if holder.training == project.training:
            return
        self._storing = True
        try:
            if self.apply_training is not None:
                self.apply_training(holder.training)
            else:
                project.training = holder.training
        finally:
            self._storing = False

    def training_changed(self) -> None:
        """The document's training settings changed elsewhere (undo, another file): refill."""
        if not self._storing and not self.running():
            self.load_settings()

    # -- run control ---------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self.current.status if self.current else "idle"

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def start(self) -> None:
        """F5: resume a paused run, otherwise start a new one."""
        if self.running():
            if self.current and self.current.status == "paused":
                self.resume()
            return
        self._form_changed()  # what the form shows is what trains
        project = self.get_project()
        problem = self.check(project)
        if problem:
            self._show_failure("Cannot start", problem[0], problem[1] or HINTS["setup"])
            return
        run_dir = new_run_dir(runs_root(self.get_project_path()))
        snapshot = project.model_copy(deep=True)
        save(snapshot, run_dir / "project.loom")
        self._launch(run_dir, resume=False, fingerprint=graph_fingerprint(project))

    def check(self, project: Project) -> tuple[str, str] | None:
        """(what is wrong, what to do) when the run could not start, before starting it."""
        from training.data import FILES, DataError, load
        from training.plan import PlanError, prepare

        try:
            prepare(project, load_data=False)
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
        return None

    def _launch(self, run_dir: Path, *, resume: bool, fingerprint: str | None) -> None:
        run = RunData.load(run_dir) if resume else RunData(run_dir)
        run.status = "starting"
        run.failure = None
        self.current = run
        self.runs[run.run_id] = run
        self._fingerprint = fingerprint
        self.banner.hide()
        self.warning.hide()
        self.failure.hide()
        self.proc = RunnerProcess(run_dir / "project.loom", run_dir, resume=resume, poll_ms=0,
                                  threads=runner_threads(), parent=self)
        self.proc.event.connect(self._on_event)
        self.proc.ended.connect(self._on_ended)
        self._refresh_list(select=run.run_id)
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

    def _on_event(self, ev: dict) -> None:
        if self.current is None:
            return
        self.current.apply(ev)
        kind = ev.get("event")
        if kind == "warning":
            self._show_warning(ev)
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
        if kind in ("started", "paused", "resumed", "stopped", "finished", "failed"):
            self._update_buttons()
            self._update_progress()
            self._refresh_item(self.current)

    def _show_warning(self, ev: dict) -> None:
        text = str(ev.get("message") or ev.get("reason") or "The run reported a problem.")
        hint = str(ev.get("hint") or "")
        self.warning.setText(f"Warning at step {ev.get('step', '?')}: {text}"
                             + (f" — {hint}" if hint else ""))
        self.warning.show()

    def _on_ended(self, ev: dict) -> None:
        run = self.current
        self.proc = None
        if run is None:
            return
        if not run.terminal:
            run.apply(ev)
        if run.status == "failed" and run.failure:
            f = run.failure
            self._show_failure("The run failed", f.reason, f.hint or HINTS.get(f.kind, ""),
                               run.run_dir / "runner.log")
        self._update_buttons()
        self._update_progress()
        self._refresh_item(run)
        self.samples.show_run(run)
        self.plots.refresh()
        self.run_finished.emit(run.run_id, run.status)

    def _show_failure(self, title: str, reason: str, hint: str, log: Path | None = None) -> None:
        text = f"<b>{_esc(title)}:</b> {_esc(reason)}"
        if hint:
            text += f"<br><b>What to try:</b> {_esc(hint)}"
        if log is not None:
            text += f"<br><span style='color:#555'>Log kept in {_esc(str(log.parent))}</span>"
        self.failure.setText(text)
        self.failure.show()

    # -- periodic UI -------------------------------------------------------------------------
    def _tick(self) -> None:
        """The dashboard's one frame: read new events, then draw. One wake-up per frame matters
        on small machines, where each wake-up of this process stalls the runner's threads."""
        if self.proc is not None and self.running():
            self.proc.poll()
        if self.running():
            self.plots.refresh()
        if self._loaded_for != id(self.get_project()) and not self.running():
            self.load_settings()
            self.reload_runs()
        root = runs_root(self.get_project_path())
        if root != self._root and not self.running():
            self.reload_runs()
        if self.current is None:
            return
        if self.running():
            self._update_progress()
            self._refresh_item(self.current)
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
        if not self.running() or self._fingerprint is None:
            return
        try:
            changed = graph_fingerprint(self.get_project()) != self._fingerprint
        except Exception:
            return
        self.banner.setVisible(changed)

    def _update_progress(self) -> None:
        run = self.current
        if run is None:
            return
        total, step = run.total_steps, run.step
        if total:
            self.progress.setValue(int(1000 * min(step, total) / total))
        parts = [STATUS_TEXT.get(run.status, run.status)]
        spe = run.steps_per_epoch
        if spe:
            parts.append(f"epoch {step / spe:.1f}")
        parts.append(f"step {step}/{total or '?'}")
        if run.samples_per_s:
            parts.append(f"{run.samples_per_s:,.0f} samples/s")
        eta = self._eta(run)
        if eta is not None and run.status == "running":
            parts.append(f"ETA {format_duration(eta)}")
        if run.terminal:
            parts.append(f"took {format_duration(run.duration_s)}")
        self.progress_label.setText(" · ".join(parts))

    def _eta(self, run: RunData) -> float | None:
        s = run.started
        first = int(s.get("start_step") or 0)
        elapsed = (run.t_last or 0) - float(s.get("time") or 0)
        if not s or run.step <= first or elapsed <= 0:
            return None
        rate = (run.step - first) / elapsed
        return max(0.0, (run.total_steps - run.step) / rate) if rate > 0 else None

    def _update_buttons(self) -> None:
        live = self.running()
        st = self.current.status if self.current else "idle"
        self.start_btn.setEnabled(not live)
        self.pause_btn.setEnabled(live and st == "running")
        self.resume_btn.setEnabled((live and st == "paused") or
                                   (not live and bool(self.current and self.current.resumable)))
        self.stop_btn.setEnabled(live)
        if hasattr(self, "start_action"):
            self.start_action.setEnabled(self.start_btn.isEnabled() or self.resume_btn.isEnabled())
            self.pause_action.setEnabled(self.pause_btn.isEnabled())
            self.stop_action.setEnabled(live)
        self.form.setEnabled(not live)
        self._selection_changed_buttons()

    # -- runs list -----------------------------------------------------------------------------
    def reload_runs(self) -> None:
        """Read the runs folder of the current project (history survives restarts)."""
        self._root = runs_root(self.get_project_path())
        live = self.current if self.running() else None
        self.runs = {}
        for d in list_runs(self._root):
            self.runs[d.name] = live if live and live.run_id == d.name else RunData.load(d)
        if live is not None:
            self.runs[live.run_id] = live
        elif self.current is not None and self.current.run_id not in self.runs:
            self.current = None
        self._refresh_list()

    def _refresh_list(self, select: str | None = None) -> None:
        self.run_list.blockSignals(True)
        self.run_list.clear()
        for run_id in sorted(self.runs, reverse=True):
            item = QTreeWidgetItem()
            item.setData(0, Qt.ItemDataRole.UserRole, run_id)
            self.run_list.addTopLevelItem(item)
            self._fill_item(item, self.runs[run_id])
            if run_id == select:
                item.setSelected(True)
        self.run_list.blockSignals(False)
        self._selection_changed_buttons()

    def _item(self, run_id: str) -> QTreeWidgetItem | None:
        for i in range(self.run_list.topLevelItemCount()):
            item = self.run_list.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == run_id:
                return item
        return None

    def _refresh_item(self, run: RunData) -> None:
        item = self._item(run.run_id)
        if item is not None:
            self._fill_item(item, run)

    def _fill_item(self, item: QTreeWidgetItem, run: RunData) -> None:
        item.setText(0, run.run_id)
        item.setText(1, STATUS_TEXT.get(run.status, run.status))
        item.setText(2, format_duration(run.duration_s))
        item.setText(3, run.summary())
        colors = {"failed": "#b00020", "finished": "#1b7f3b", "running": "#1f5fbf"}
        item.setForeground(1, _brush(colors.get(run.status, "#555")))
        if run.failure:
            item.setToolTip(1, run.failure.reason)

    def selected_runs(self) -> list[RunData]:
        ids = [it.data(0, Qt.ItemDataRole.UserRole) for it in self.run_list.selectedItems()]
        return [self.runs[i] for i in sorted(ids) if i in self.runs]

    def select_runs(self, run_ids: list[str]) -> None:
        self.run_list.clearSelection()
        for rid in run_ids:
            item = self._item(rid)
            if item is not None:
                item.setSelected(True)

    def _selection_changed(self) -> None:
        chosen = self.selected_runs()
        shown = list(chosen)
        if self.running() and self.current and self.current not in shown:
            shown.insert(0, self.current)
        if not shown and self.current:
            shown = [self.current]
        self.plots.set_runs(shown)
        self.samples.show_run(shown[0] if shown else None)
        self._selection_changed_buttons()

    def _selection_changed_buttons(self) -> None:
        chosen = self.selected_runs()
        one = chosen[0] if len(chosen) == 1 else None
        self.resume_run_btn.setEnabled(bool(one and one.resumable and not self.running()))
        self.export_code_btn.setEnabled(bool(one and (one.run_dir / "model.py").exists()))
        self.export_weights_btn.setEnabled(bool(one and (one.run_dir / "checkpoints" /
                                                         "latest.pt").exists()))

    def _resume_selected(self) -> None:
        chosen = self.selected_runs()
        if len(chosen) == 1:
            self.resume_run(chosen[0].run_id)

    # -- export --------------------------------------------------------------------------------
    def export_code(self, run_id: str, dest: Path) -> Path:
        """The exact generated source the run trained (not the graph as edited since)."""
        shutil.copyfile(self.runs[run_id].run_dir / "model.py", dest)
        return Path(dest)

    def export_weights(self, run_id: str, dest: Path) -> Path:
        """State dicts keyed by network name: ``NETWORKS[name]().load_state_dict(w[name])``."""
        import torch

        run_dir = self.runs[run_id].run_dir
        ckpt = torch.load(run_dir / "checkpoints" / "latest.pt", map_location="cpu",
                          weights_only=True)
        try:
            roles = json.loads((run_dir / "config.json").read_text())["networks"]
        except (OSError, ValueError, KeyError):
            roles = {}
        weights = {roles.get(role, role): sd for role, sd in ckpt.get("nets", {}).items()}
        torch.save(weights, dest)
        return Path(dest)

    def _export_code_dialog(self) -> None:
        chosen = self.selected_runs()
        if len(chosen) != 1:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the run's code",
                                              f"{chosen[0].run_id}_model.py", "Python (*.py)")
        if path:
            self._export(lambda: self.export_code(chosen[0].run_id, Path(path)))

    def _export_weights_dialog(self) -> None:
        chosen = self.selected_runs()
        if len(chosen) != 1:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the run's weights",
                                              f"{chosen[0].run_id}_weights.pt",
                                              "PyTorch (*.pt)")
        if path:
            self._export(lambda: self.export_weights(chosen[0].run_id, Path(path)))

    def _export(self, do: Callable[[], Path]) -> None:
        try:
            do()
        except Exception as err:  # a full disk or a read-only folder: say so, keep going
            self._show_failure("Export failed", str(err), "choose another folder")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _brush(color: str):
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(color))


