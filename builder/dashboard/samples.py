"""What the model produces during a run: image grids, generated text, a confusion matrix."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QPlainTextEdit,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .runs import Event, RunData


class ConfusionView(QWidget):
    """Heat map of true (rows) against predicted (columns) classes, with counts in the cells."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix: list[list[float]] = []
        self.labels: list[str] = []
        self.setMinimumSize(220, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_matrix(self, matrix: list[list[float]], labels: list[str] | None) -> None:
        self.matrix = [list(map(float, row)) for row in matrix]
        n = len(self.matrix)
        # a model with more outputs than the data has labels: the extra classes are numbered
        given = [str(x) for x in (labels or [])][:n]
        self.labels = given + [str(i) for i in range(len(given), n)]
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(320, 320)

    def paintEvent(self, _event) -> None:
        n = len(self.matrix)
        if not n:
            return
        text = self.palette().color(QPalette.ColorRole.WindowText)  # readable on either theme
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        font = QFont(self.font())
        font.setPointSizeF(max(5.0, min(9.0, (min(self.width(), self.height()) / n) * 0.32)))
        p.setFont(font)
        # the row labels' column fits the longest name (up to 8 letters), never clips it
        margin = max(36, max(p.fontMetrics().horizontalAdvance(s[:8]) for s in self.labels) + 8)
        side = max(10.0, min(self.width() - margin - 8, self.height() - 36 - 20))
        cell = side / n
        x0, y0 = float(margin), 18.0
        # normalise per true class so rare classes are as readable as common ones
        p.setPen(text)
        p.drawText(QRectF(x0, 0, side, 16), Qt.AlignmentFlag.AlignCenter, "predicted")
        for i, row in enumerate(self.matrix):
            total = sum(row) or 1.0
            for j, v in enumerate(row):
                frac = v / total
                color = QColor.fromRgbF(1 - 0.85 * frac, 1 - 0.55 * frac, 1 - 0.1 * frac)
                rect = QRectF(x0 + j * cell, y0 + i * cell, cell, cell)
                p.fillRect(rect, color)
                if cell >= 14 and v:
                    p.setPen(QColor("white" if frac > 0.55 else "#222"))
                    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"{v:g}")
            p.setPen(text)
            p.drawText(QRectF(0, y0 + i * cell, margin - 4, cell),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       self.labels[i][:8])
        for j in range(n):
            p.drawText(QRectF(x0 + j * cell, y0 + n * cell, cell, 14),
                       Qt.AlignmentFlag.AlignCenter, self.labels[j][:4] if cell >= 14 else "")
        p.setPen(QColor("#999"))
        p.drawRect(QRectF(x0, y0, side, side))
        p.end()


class SamplesView(QScrollArea):
    """Latest sample of each kind for the shown run, replaced in place as new ones arrive."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        body = QWidget()
        self.grid = QGridLayout(body)
        self.setWidget(body)
        self.placeholder = QLabel("Samples (images, generated text, a confusion matrix) appear "
                                  "here during a run.")
        self.placeholder.setStyleSheet("color: #777")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.grid.addWidget(self.placeholder, 0, 0)
        self._slots: dict[str, tuple[QWidget, QLabel, QWidget]] = {}
        self._shown: dict[str, Event] = {}

    def shown_kinds(self) -> list[str]:
        return list(self._slots)

    def show_run(self, run: RunData | None) -> None:
        for key in list(self._slots):
            if run is None or key not in run.samples:
                box, _, _ = self._slots.pop(key)
                box.deleteLater()
                self._shown.pop(key, None)
        if run is not None:
            for key, ev in sorted(run.samples.items()):
                if self._shown.get(key) is not ev:
                    self._update(key, ev)
        self.placeholder.setVisible(not self._slots)

    def _slot(self, key: str, ev: Event) -> tuple[QWidget, QLabel, QWidget]:
        if key in self._slots:
            return self._slots[key]
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(4, 4, 4, 4)
        title = QLabel()
        title.setStyleSheet("font-weight: bold")
        kind = ev.get("kind")
        if kind == "confusion":
            content: QWidget = ConfusionView()
        elif kind == "text":
            content = QPlainTextEdit()
            content.setReadOnly(True)
            content.setFont(QFont("monospace"))
            content.setMinimumHeight(160)
        else:
            content = QLabel()
            content.setAlignment(Qt.AlignmentFlag.AlignCenter)
            content.setMinimumSize(160, 160)
        lay.addWidget(title)
        lay.addWidget(content, 1)
        n = len(self._slots)
        self.grid.addWidget(box, n // 2, n % 2)
        self._slots[key] = (box, title, content)
        return self._slots[key]

    def _update(self, key: str, ev: Event) -> None:
        _, title, content = self._slot(key, ev)
        self._shown[key] = ev
        kind = ev.get("kind")
        step = ev.get("step", "?")
        if isinstance(content, ConfusionView):
            title.setText(f"Confusion matrix (validation) — step {step}")
            content.set_matrix(ev.get("matrix") or [], ev.get("labels"))
        elif isinstance(content, QPlainTextEdit):
            title.setText(f"Generated text — step {step}")
            content.setPlainText(str(ev.get("text") or ""))
        elif kind == "image":
            path = Path(str(ev.get("path") or ""))
            name = str(ev.get("title") or key.split(":", 1)[-1].replace("_", " ").capitalize())
            title.setText(f"{name} — step {step}")
            pix = QPixmap(str(path))
            if pix.isNull():
                content.setText(f"(cannot read {path.name})")
            else:
                if pix.width() < 384:  # small grids are scaled up crisply, not blurred
                    pix = pix.scaled(pix.width() * (384 // pix.width() or 1),
                                     pix.height() * (384 // pix.width() or 1),
                                     Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.FastTransformation)
                rows = ev.get("rows")
                if isinstance(rows, list) and rows:
                    pix = self._label_rows(pix, [str(r) for r in rows])
                content.setPixmap(pix)
                content.setToolTip(", ".join(map(str, rows)) if isinstance(rows, list) else "")

    def _label_rows(self, pix: QPixmap, rows: list[str]) -> QPixmap:
        """The grid with each row's name to its left ("data", "model", "prior")."""
        gutter = 64
        out = QPixmap(pix.width() + gutter, pix.height())
        out.fill(self.palette().color(QPalette.ColorRole.Window))
        p = QPainter(out)
        p.drawPixmap(gutter, 0, pix)
        p.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        h = pix.height() / len(rows)
        for i, label in enumerate(rows):
            p.drawText(QRectF(0, i * h, gutter - 6, h),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
        p.end()
        return out
