"""The runs list of the Train panel: one row per run of the shown project, its buttons (resume,
export the exact code or weights a run produced) and the selection that overlays curves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .runs import RunData, format_duration

STATUS_TEXT = {"starting": "starting…", "running": "running", "paused": "paused",
               "finished": "finished", "stopped": "stopped", "failed": "failed"}
STATUS_COLORS = {"failed": "#e06c75", "finished": "#4caf50", "running": "#5b9bf0",
                 "stopped": "#d19a66"}


def export_code(run: RunData, dest: Path) -> Path:
    """The exact generated source the run trained (not the graph as edited since)."""
    shutil.copyfile(run.run_dir / "model.py", dest)
    return Path(dest)


def export_weights(run: RunData, dest: Path) -> Path:
    """State dicts keyed by network name: ``NETWORKS[name]().load_state_dict(w[name])``."""
    import torch

    ckpt = torch.load(run.run_dir / "checkpoints" / "latest.pt", map_location="cpu",
                      weights_only=True)
    try:
        roles = json.loads((run.run_dir / "config.json").read_text())["networks"]
    except (OSError, ValueError, KeyError):
        roles = {}
    weights = {roles.get(role, role): sd for role, sd in ckpt.get("nets", {}).items()}
    torch.save(weights, dest)
    return Path(dest)


class RunList(QWidget):
    """Rows of runs (newest first) with their status, duration and final metrics."""

    selection_changed = Signal()
    resume_requested = Signal(str)
    failed = Signal(str, str)  # what failed, why (an export to a full disk)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs: dict[str, RunData] = {}
        self.busy = False  # a run is live: no resuming another one
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Run", "Status", "Duration", "Metrics (final or latest)"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setToolTip("Select several runs to overlay their curves")
        self.tree.itemSelectionChanged.connect(self._changed)
        self.tree.setColumnWidth(0, 170)
        self.tree.setColumnWidth(1, 62)
        self.tree.setColumnWidth(2, 56)
        self.resume_btn = QPushButton("Resume run")
        self.resume_btn.setToolTip("Continue the selected stopped run from its checkpoint")
        self.export_code_btn = QPushButton("Export code…")
        self.export_weights_btn = QPushButton("Export weights…")
        self.resume_btn.clicked.connect(self._resume_selected)
        self.export_code_btn.clicked.connect(self._export_code_dialog)
        self.export_weights_btn.clicked.connect(self._export_weights_dialog)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Runs"))
        lay.addWidget(self.tree, 1)
        row = QHBoxLayout()
        for b in (self.resume_btn, self.export_code_btn, self.export_weights_btn):
            row.addWidget(b)
        lay.addLayout(row)

    def show_runs(self, runs: dict[str, RunData], select: str | None = None) -> None:
        self.runs = runs
        self.tree.blockSignals(True)
        self.tree.clear()
        for run_id in sorted(runs, reverse=True):
            item = QTreeWidgetItem()
            item.setData(0, Qt.ItemDataRole.UserRole, run_id)
            self.tree.addTopLevelItem(item)
            self._fill(item, runs[run_id])
            if run_id == select:
                item.setSelected(True)
        self.tree.blockSignals(False)
        self.update_buttons()

    def item(self, run_id: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == run_id:
                return item
        return None

    def refresh(self, run: RunData) -> None:
        item = self.item(run.run_id)
        if item is not None:
            self._fill(item, run)

    def _fill(self, item: QTreeWidgetItem, run: RunData) -> None:
        item.setText(0, run.name)
        item.setToolTip(0, f"{run.name}\nfolder {run.run_dir}")
        item.setText(1, STATUS_TEXT.get(run.status, run.status))
        item.setText(2, format_duration(run.duration_s))
        item.setText(3, run.summary())
        item.setForeground(1, QBrush(QColor(STATUS_COLORS.get(run.status, "#999"))))
        if run.failure:
            item.setToolTip(1, run.failure.reason)

    def selected(self) -> list[RunData]:
        ids = [it.data(0, Qt.ItemDataRole.UserRole) for it in self.tree.selectedItems()]
        return [self.runs[i] for i in sorted(ids) if i in self.runs]

    def select(self, run_ids: list[str]) -> None:
        self.tree.clearSelection()
        for rid in run_ids:
            item = self.item(rid)
            if item is not None:
                item.setSelected(True)

    def _changed(self) -> None:
        self.update_buttons()
        self.selection_changed.emit()

    def update_buttons(self) -> None:
        chosen = self.selected()
        one = chosen[0] if len(chosen) == 1 else None
        self.resume_btn.setEnabled(bool(one and one.resumable and not self.busy))
        self.export_code_btn.setEnabled(bool(one and (one.run_dir / "model.py").exists()))
        self.export_weights_btn.setEnabled(bool(one and (one.run_dir / "checkpoints" /
                                                         "latest.pt").exists()))

    def _resume_selected(self) -> None:
        chosen = self.selected()
        if len(chosen) == 1:
            self.resume_requested.emit(chosen[0].run_id)

    def _export_code_dialog(self) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the run's code",
                                              f"{chosen[0].run_id}_model.py", "Python (*.py)")
        if path:
            self._export(lambda: export_code(chosen[0], Path(path)))

    def _export_weights_dialog(self) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the run's weights",
                                              f"{chosen[0].run_id}_weights.pt",
                                              "PyTorch (*.pt)")
        if path:
            self._export(lambda: export_weights(chosen[0], Path(path)))

    def _export(self, do: Callable[[], Path]) -> None:
        try:
            do()
        except Exception as err:  # a full disk or a read-only folder: say so, keep going
            self.failed.emit("Export failed", str(err))
