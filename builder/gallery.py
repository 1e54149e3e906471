"""The template gallery: every preset with family, variant, description and parameter count."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from compiler.summary import human

from . import assets

NAME_ROLE = Qt.ItemDataRole.UserRole + 3


def template_infos() -> list[Any]:
    """The templates that exist now; an empty list while the package is still being written."""
    try:
        import templates

        return list(templates.all_templates())
    except (ImportError, AttributeError):
        return []


def build_template(name: str):
    import templates

    return templates.build(name)


def param_count(name: str) -> int | None:
    """Total parameters of a template, counted on torch's meta device (no memory used)."""
    import torch

    from compiler import analyze, build, generate

    try:
        project = build_template(name)
        analysis = analyze(project)
        if not analysis.ok:
            return None
        built = build(generate(analysis))
        total = 0
        with torch.device("meta"):
            for cls in built.networks.values():
                total += sum(p.numel() for p in cls().parameters())
        return total
    except Exception:
        return None


class Gallery(QDialog):
    counted = Signal(int, object)  # row, parameter count (from the worker thread)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New from template")
        self.setWindowIcon(assets.app_icon())
        self.resize(900, 520)
        self.infos = template_infos()
        self.search = QLineEdit(placeholderText="Filter templates…")
        self.table = QTableWidget(len(self.infos), 4)
        self.table.setObjectName("gallery_table")
        self.table.setHorizontalHeaderLabels(["template", "family", "variant", "parameters"])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        for r, info in enumerate(self.infos):
            for c, text in enumerate((info.name, info.family, info.variant, "…")):
                item = QTableWidgetItem(str(text))
                item.setData(NAME_ROLE, info.name)
                if c == 0:
                    item.setIcon(assets.icon("icons", "template.svg"))
                if c == 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.details.setMinimumWidth(260)
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.search)
        lay.addWidget(split, 1)
        lay.addWidget(buttons)
        if not self.infos:
            self.details.setText("No templates are installed yet.")
        self.search.textChanged.connect(self._filter)
        self.search.installEventFilter(self)  # Up/Down in the filter move the highlighted row
        self.table.itemSelectionChanged.connect(self._describe)
        self.table.itemDoubleClicked.connect(lambda _i: self.accept())
        if self.infos:
            self.table.selectRow(0)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gallery-counts")
        self.counted.connect(self._show_count)
        for r, info in enumerate(self.infos):  # counted in a worker: the dialog never stalls
            fut = self._pool.submit(param_count, info.name)
            fut.add_done_callback(lambda f, row=r: self._deliver(row, f))

    def _deliver(self, row: int, future) -> None:
        try:
            self.counted.emit(row, None if future.cancelled() else future.result())
        except RuntimeError:  # the dialog was closed and deleted meanwhile
            pass

    def _show_count(self, row: int, n: object) -> None:
        item = self.table.item(row, 3)
        if item is not None:
            item.setText(f"{n:,}  ({human(n)})" if isinstance(n, int) else "—")

    def done(self, result: int) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        super().done(result)

    def _filter(self, text: str) -> None:
        words = text.lower().split()
        for r, info in enumerate(self.infos):
            hay = f"{info.name} {info.family} {info.variant} {info.description}".lower()
            self.table.setRowHidden(r, not all(w in hay for w in words))
        row = self._row()
        if row is None or self.table.isRowHidden(row):  # the highlight follows the filter
            visible = self._visible_rows()
            if visible:
                self.table.selectRow(visible[0])
            else:
                self.table.clearSelection()
                self.details.setText("No template matches the filter.")

    def _visible_rows(self) -> list[int]:
        return [r for r in range(self.table.rowCount()) if not self.table.isRowHidden(r)]

    def _row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        from PySide6.QtCore import QEvent

        if obj is self.search and event.type() == QEvent.Type.KeyPress and \
                event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up):
            visible = self._visible_rows()
            if visible:
                row = self._row()
                i = visible.index(row) if row in visible else -1
                i = i + 1 if event.key() == Qt.Key.Key_Down else max(0, i - 1)
                self.table.selectRow(visible[min(i, len(visible) - 1)])
            return True
        return super().eventFilter(obj, event)

    def _describe(self) -> None:
        info = self.current()
        if info is None:
            return
        extra = []
        if getattr(info, "recipe", None):
            extra.append(f"recipe: {info.recipe}")
        if getattr(info, "dataset", None):
            extra.append(f"dataset: {info.dataset}")
        self.details.setText(f"<h3>{info.name}</h3><p>{info.family} · {info.variant}</p>"
                             f"<p>{info.description}</p><p>{'<br>'.join(extra)}</p>")

    def current(self) -> Any:
        """The highlighted template, never one the filter hides."""
        row = self._row()
        if row is None or self.table.isRowHidden(row):
            return None
        return self.infos[row]

    def selected_name(self) -> str | None:
        info = self.current()
        return info.name if info is not None else None
