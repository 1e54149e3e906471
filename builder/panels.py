"""Read-only views of the analysis: problems, generated code, summary figures."""

from __future__ import annotations

import keyword
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from compiler.shapes import Analysis
from compiler.summary import human

from . import theme
from .document import Document

NODE_ROLE = Qt.ItemDataRole.UserRole + 2


def shown(widget: QWidget) -> bool:
    """On screen now (a dock tabbed behind another is not): only then is a refresh worth it."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


class ProblemsPanel(QTreeWidget):
    """Diagnostics; activating one asks the window to show its node."""

    node_requested = Signal(str, str)  # network, node id

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["", "where", "problem", "how to fix"])
        self.setRootIsDecorated(False)
        self.setAlternatingRowColors(True)
        self.setColumnWidth(0, 70)
        self.setColumnWidth(1, 180)
        self.setColumnWidth(2, 420)
        doc.analyzed.connect(self.show_analysis)
        self.itemClicked.connect(self._clicked)
        self.itemActivated.connect(self._clicked)

    def show_analysis(self, analysis: Analysis) -> None:
        self.clear()
        t = theme.current()
        for d in analysis.diagnostics:
            item = QTreeWidgetItem([d.severity, d.where(), d.message, d.hint])
            item.setForeground(0, QColor(t.error if d.is_error else t.warning))
            item.setData(0, NODE_ROLE, (d.network, d.node_id or ""))
            for col, text in enumerate((d.severity, d.where(), d.message, d.hint)):
                item.setToolTip(col, text)
            self.addTopLevelItem(item)

    def _clicked(self, item: QTreeWidgetItem) -> None:
        network, node_id = item.data(0, NODE_ROLE)
        if node_id:
            self.node_requested.emit(network, node_id)


class PythonHighlighter(QSyntaxHighlighter):
    def __init__(self, doc) -> None:
        super().__init__(doc)
        self.set_colors()

    def set_colors(self) -> None:
        """(Re)build the rules from the current theme."""
        t = theme.current()
        dark = t.name == "dark"

        def fmt(color: str, bold: bool = False) -> QTextCharFormat:
            f = QTextCharFormat()
            f.setForeground(QColor(color))
            if bold:
                f.setFontWeight(QFont.Weight.Bold)
            return f

        kw = r"\b(" + "|".join(keyword.kwlist) + r")\b"
        self.rules = [
            (re.compile(kw), fmt("#c792ea" if dark else "#7a3e9d", True)),
            (re.compile(r"\b(self|nn|F|torch|Tensor)\b"), fmt("#82aaff" if dark else "#1f5fbf")),
            (re.compile(r"\b[0-9]+(\.[0-9]+)?\b"), fmt("#f78c6c" if dark else "#a45a00")),
            (re.compile(r"\bclass\s+(\w+)|\bdef\s+(\w+)"), fmt("#ffcb6b" if dark else "#8a6d00")),
            (re.compile(r"(\"[^\"\n]*\"|'[^'\n]*')"), fmt("#c3e88d" if dark else "#2e7d32")),
            (re.compile(r"#.*$"), fmt("#7f8c98" if dark else "#7a828c")),
        ]
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802
        for rx, f in self.rules:
            for m in rx.finditer(text):
                self.setFormat(m.start(), m.end() - m.start(), f)


class CodeView(QPlainTextEdit):
    """The generated module, live, read-only; text is selectable and copyable."""

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.setReadOnly(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(9.5)
        self.setFont(font)
        self.highlighter = PythonHighlighter(self.document())
        doc.analyzed.connect(lambda _a: self.doc.request_code() if shown(self) else None)
        doc.code_ready.connect(self.refresh)

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        self.doc.request_code()

    def follow(self, dock: QDockWidget) -> None:
        """Fill the view when its dock comes to the front: a dock tabbed behind another counts
        as visible to Qt, so no showEvent arrives when its tab is clicked."""
        dock.visibilityChanged.connect(lambda on: self.doc.request_code() if on else None)

    def refresh(self) -> None:
        if self.doc.source is not None:
            text = self.doc.source.text
        else:
            text = "# The code appears when the project has no errors.\n" + "\n".join(
                "# " + line for line in (self.doc.source_error or "").splitlines())
        if text != self.toPlainText():
            bar = self.verticalScrollBar().value()
            self.setPlainText(text)
            self.verticalScrollBar().setValue(bar)


class SummaryView(QWidget):
    """Per-node shapes, parameters and FLOPs, and totals per network."""

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["node", "type", "output shape", "params", "FLOPs"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.totals = QLabel()
        self.compute = QPushButton("Compute figures")
        self.compute.setToolTip("Large projects are summarised on request")
        self.compute.clicked.connect(lambda: self.doc.request_figures(force=True))
        top = QHBoxLayout()
        top.addWidget(self.totals, 1)
        top.addWidget(self.compute)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.table)
        doc.analyzed.connect(lambda _a: self.refresh() if shown(self) else None)
        doc.figures_ready.connect(lambda: self.refresh() if shown(self) else None)

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        self.refresh()

    def follow(self, dock: QDockWidget) -> None:
        """Refresh when the dock's tab comes to the front (see CodeView.follow)."""
        dock.visibilityChanged.connect(lambda on: self.refresh() if on else None)

    def refresh(self) -> None:
        a = self.doc.analysis
        if a is None:
            return
        sums = self.doc.summaries()
        self.compute.setVisible(not sums and a.ok and not self.doc.figures_pending)
        rows = []
        totals = []
        for name, res in a.networks.items():
            figs = {f.node_id: f for f in sums[name].nodes} if name in sums else {}
            for nid in res.order:
                nr = res.nodes[nid]
                f = figs.get(nid)
                rows.append((f"{name}/{nr.node.name}" if len(a.networks) > 1 else nr.node.name,
                             nr.cls.name, ", ".join(s.label() for s in nr.outs.values()) or "—",
                             f"{f.params:,}" if f else "—", human(f.flops) if f else "—"))
            if name in sums:
                s = sums[name]
                totals.append(f"<b>{name}</b>: {s.params:,} params, {human(s.flops)} FLOPs")
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                if c >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(
            2, self.table.horizontalHeader().ResizeMode.Stretch)
        if not a.ok:
            totals = [f"{len(a.errors)} error(s): figures appear when they are fixed"]
        self.totals.setText("   ".join(totals))
