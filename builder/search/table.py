"""The trial table: one row per trial, from ``trial_started`` (running) to ``trial_finished``
(complete, pruned, rejected or failed, with the reason), so a rejected or crashed trial is as
visible as a good one. Clicking a row emits its trial number."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from compiler.summary import human

from .. import theme

COLUMNS = ("#", "status", "metric", "params", "FLOPs", "time", "choices", "why")


def choices_text(choices: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in choices.items())


class TrialTable(QTableWidget):
    trial_clicked = Signal(int)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.verticalHeader().hide()
        head = self.horizontalHeader()
        for i in range(len(COLUMNS) - 2):
            head.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(len(COLUMNS) - 2, QHeaderView.ResizeMode.Interactive)
        head.setStretchLastSection(True)
        head.resizeSection(len(COLUMNS) - 2, 330)
        self.setWordWrap(False)
        self.rows: dict[int, int] = {}  # trial number -> row
        self.records: dict[int, dict[str, Any]] = {}
        self.cellClicked.connect(self._clicked)

    def clear_trials(self) -> None:
        self.setRowCount(0)
        self.rows.clear()
        self.records.clear()

    def _row(self, number: int) -> int:
        if number not in self.rows:
            self.rows[number] = self.rowCount()
            self.insertRow(self.rowCount())
        return self.rows[number]

    def trial_started(self, ev: dict[str, Any]) -> None:
        n = int(ev["number"])
        self.records.setdefault(n, {}).update(ev, state="running")
        self._fill(n)

    def trial_metric(self, ev: dict[str, Any]) -> None:
        """The running trial's latest validation metric, so a long trial shows progress."""
        n = int(ev["number"])
        rec = self.records.get(n)
        if rec is None or rec.get("state") != "running" or ev.get("split", "val") != "val" \
                or ev.get("metric") is None:
            return
        rec["metric"] = ev["metric"]
        rec["step"] = ev.get("step")
        self._fill(n)

    def trial_finished(self, ev: dict[str, Any]) -> None:
        n = int(ev["number"])
        self.records.setdefault(n, {}).update(ev)
        self._fill(n)

    def _fill(self, n: int) -> None:
        rec, t = self.records[n], theme.current()
        state = str(rec.get("state", ""))
        metric = rec.get("metric")
        running = state == "running"
        duration = rec.get("duration_s")
        values = (str(n), state + (f" (step {rec['step']})" if running and rec.get("step")
                                   else ""),
                  "—" if metric is None else f"{metric:.4f}",
                  "—" if rec.get("params") is None else human(rec["params"]),
                  "—" if rec.get("flops") is None else human(rec["flops"]),
                  "" if duration is None else f"{duration:.0f} s",
                  choices_text(rec.get("choices") or {}), str(rec.get("reason") or ""))
        row = self._row(n)
        color = {"complete": t.text, "running": t.accent, "failed": t.error,
                 "rejected": t.warning, "pruned": t.dim}.get(state, t.text)
        for col, text in enumerate(values):
            item = self.item(row, col)
            if item is None:
                item = QTableWidgetItem()
                item.setData(Qt.ItemDataRole.UserRole, n)
                self.setItem(row, col, item)
            item.setText(text)
            item.setToolTip(text if col >= 6 else "")
            if col == 1:
                item.setForeground(QColor(color))

    def _clicked(self, row: int, _col: int) -> None:
        item = self.item(row, 0)
        if item is not None:
            self.trial_clicked.emit(int(item.data(Qt.ItemDataRole.UserRole)))
