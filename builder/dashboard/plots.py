"""Live metric plots: one pyqtgraph plot per metric, all curves refreshed from one timer.

Events only append to numpy buffers; a single QTimer pushes changed buffers to the curves, so the
cost per event is constant and redraws are capped at the timer rate however fast steps arrive.
Auto-downsampling and clip-to-view keep 100,000-point curves cheap to draw.
"""

from __future__ import annotations

import os

# pyqtgraph picks its Qt binding at import; make it the one the app uses
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .runs import RunData  # noqa: E402

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf"]
TITLES = {"loss": "Loss", "accuracy": "Accuracy", "perplexity": "Perplexity", "kl": "KL",
          "d_loss": "Discriminator loss", "g_loss": "Generator loss",
          "probe_accuracy": "Linear-probe accuracy", "lr": "Learning rate"}
ORDER = ["loss", "accuracy", "perplexity", "kl", "d_loss", "g_loss", "probe_accuracy"]


MIN_PLOT_H = 170  # px: below this a plot's curves cannot be read; the area scrolls instead


class PlotArea(QWidget):
    """Curves of the current run plus any runs selected for overlay."""

    def __init__(self, parent: QWidget | None = None, interval_ms: int = 250) -> None:
        super().__init__(parent)
        self._colors()
        self.runs: list[RunData] = []
        self._plots: dict[str, pg.PlotItem] = {}
        self._curves: dict[tuple[str, str, str], pg.PlotDataItem] = {}
        self._seen: dict[tuple[str, str, str], tuple] = {}

        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setFixedWidth(120)
        self.smoothing.setToolTip("Exponential moving average of the curves (0 = raw)")
        self.smooth_label = QLabel()
        self.x_axis = QComboBox()
        self.x_axis.addItems(["step", "epoch", "time"])
        self.x_axis.setToolTip("x axis: optimizer step, epoch, or wall time in seconds")
        self.log_y = QCheckBox("Log scale")
        self.reset = QPushButton("Reset view")
        self.reset.setToolTip("Fit all curves again after panning or zooming")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Smoothing"))
        bar.addWidget(self.smoothing)
        bar.addWidget(self.smooth_label)
        bar.addSpacing(12)
        bar.addWidget(QLabel("x axis"))
        bar.addWidget(self.x_axis)
        bar.addWidget(self.log_y)
        bar.addStretch(1)
        bar.addWidget(self.reset)

        self.canvas = pg.GraphicsLayoutWidget()
        # Plots keep a readable height: when the panel is short, the plots scroll.
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.canvas)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        # One legend for all plots, outside them: it never covers a curve, lists every run
        # and split, and an empty plot has no empty legend box.
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.hide()
        self.empty = QLabel("Curves appear here when a run starts.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: #777")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(bar)
        lay.addWidget(self.legend)
        lay.addWidget(self.empty)
        lay.addWidget(self.scroll, 1)
        self.scroll.hide()
        self._entries: dict[str, tuple[str, str]] = {}  # legend text -> (colour, dash)

        self.smoothing.valueChanged.connect(self._settings_changed)
        self.x_axis.currentTextChanged.connect(self._settings_changed)
        self.log_y.toggled.connect(self._log_changed)
        self.reset.clicked.connect(self.reset_view)
        self._settings_changed()
        # Spare plots, made ahead: pyqtgraph's first PlotItem costs ~100 ms of one-time set-up and
        # each further one 50-100 ms, which would otherwise stall the UI just as a run's points
        # arrive. The first is made now, the rest one per idle turn of the event loop.
        self._spare: list[pg.PlotItem] = [self._new_plot("")]
        self._spare_timer = QTimer(self)  # a child: it dies with this widget, never fires after
        self._spare_timer.setSingleShot(True)
        self._spare_timer.setInterval(0)
        self._spare_timer.timeout.connect(self._grow_spares)
        self._spare_timer.start()
        self.timer = QTimer(self)  # interval_ms=0: the owner calls refresh() from its own tick
        self.timer.setInterval(max(1, interval_ms))
        self.timer.timeout.connect(self.refresh)
        if interval_ms:
            self.timer.start()

    # -- theme ---------------------------------------------------------------------------------
    @staticmethod
    def _colors() -> tuple[str, str, str]:
        """(background, foreground, legend fill) from the app's theme (dark by default)."""
        from builder import theme

        t = theme.current()
        pg.setConfigOptions(antialias=False, background=t.base, foreground=t.dim)
        return t.base, t.dim, t.alt

    def apply_theme(self) -> None:
        """Recolour after the user switched themes (new plots pick the colours up themselves)."""
        bg, fg, _ = self._colors()
        self.canvas.setBackground(bg)
        for plot in list(self._plots.values()) + self._spare:
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(fg)
                axis.setTextPen(fg)
            plot.setTitle(plot.titleLabel.text, color=fg)

    # -- what is shown -------------------------------------------------------------------------
    def set_runs(self, runs: list[RunData]) -> None:
        """Show these runs (the first is the current one; more overlay their curves)."""
        if [id(r) for r in runs] != [id(r) for r in self.runs]:
            self.clear()
        self.runs = list(runs)
        self.refresh()

    def curve_count(self) -> int:
        return len(self._curves)

    def points(self, run_id: str, split: str, metric: str) -> int:
        curve = self._curves.get((run_id, split, metric))
        if curve is None:
            return 0
        x, _ = curve.getOriginalDataset()
        return 0 if x is None else len(x)

    def plot_names(self) -> list[str]:
        return list(self._plots)

    # -- drawing -------------------------------------------------------------------------------
    def _settings_changed(self, *_: object) -> None:
        w = self.smoothing.value() / 100
        self.smooth_label.setText(f"{w:.2f}")
        self._seen.clear()
        for plot in self._plots.values():
            plot.setLabel("bottom", self.x_axis.currentText()
                          + (" (s)" if self.x_axis.currentText() == "time" else ""))
        self.refresh()

    def _log_changed(self, on: bool) -> None:
        for name, plot in self._plots.items():
            plot.setLogMode(y=on and name != "lr" and "accuracy" not in name)
        self._seen.clear()
        self.refresh()

    def reset_view(self) -> None:
        for plot in self._plots.values():
            plot.enableAutoRange()
            plot.autoRange()

    def _plot(self, metric: str) -> pg.PlotItem:
        plot = self._plots.get(metric)
        if plot is not None:
            return plot
        if self._spare:
            plot = self._spare.pop()
            plot.setTitle(TITLES.get(metric, metric))
            plot.setLogMode(y=self.log_y.isChecked() and metric != "lr"
                            and "accuracy" not in metric)
            self._spare_timer.start()
        else:
            plot = self._new_plot(metric)
        self._plots[metric] = plot
        self._relayout()
        return plot

    SPARES = 3

    def _grow_spares(self) -> None:
        if len(self._spare) < self.SPARES:
            self._spare.append(self._new_plot(""))
            self._spare_timer.start()

    def _new_plot(self, metric: str) -> pg.PlotItem:
        plot = pg.PlotItem(title=TITLES.get(metric, metric))
        # no grid: axis grids are replayed from a QPicture on every repaint (most of the GUI cost)
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setLabel("bottom", self.x_axis.currentText())
        plot.setLogMode(y=self.log_y.isChecked() and metric != "lr" and "accuracy" not in metric)
        plot.setMenuEnabled(False)
        return plot

    def _relayout(self) -> None:
        self.canvas.ci.clear()
        names = sorted(self._plots, key=lambda m: (m == "lr", ORDER.index(m) if m in ORDER
                                                   else len(ORDER), m))
        cols = 2 if len(names) > 1 else 1
        for i, name in enumerate(names):
            self.canvas.ci.addItem(self._plots[name], row=i // cols, col=i % cols)
        rows = (len(names) + cols - 1) // cols
        self.canvas.setMinimumHeight(rows * MIN_PLOT_H)
        self.empty.hide()
        self.scroll.show()

    def visible_plot_height(self) -> float:
        """Height of the shortest plot as drawn (tests hold it to the minimum)."""
        return min((p.boundingRect().height() for p in self._plots.values()), default=0.0)

    def legend_entries(self) -> list[str]:
        return list(self._entries)

    def _add_entry(self, text: str, color: str, dashed: bool) -> None:
        if text in self._entries:
            return
        self._entries[text] = (color, "dash" if dashed else "solid")
        _, fg, _ = self._colors()
        parts = []
        for name, (c, style) in self._entries.items():
            line = "╌╌" if style == "dash" else "━━"
            parts.append(f"<span style='color:{c}'><b>{line}</b></span>&nbsp;"
                         f"<span style='color:{fg}'>{_esc(name)}</span>")
        self.legend.setText("&nbsp;&nbsp; ".join(parts))
        self.legend.show()

    def refresh(self) -> None:
        """The one place curves are updated (called by the timer); a hidden panel costs nothing,
        since buffers keep growing and the first visible tick catches up."""
        if not self.isVisible():
            return
        weight = self.smoothing.value() / 100
        axis = self.x_axis.currentText()
        overlay = len(self.runs) > 1
        for run in self.runs:
            t0 = run.t_first or 0.0
            for (split, metric), series in list(run.series.items()):
                key = (run.run_id, split, metric)
                state = (series.version, series.n)
                if self._seen.get(key) == state or series.n == 0:
                    continue
                self._seen[key] = state
                curve = self._curves.get(key)
                if curve is None:
                    curve = self._new_curve(run, split, metric, overlay)
                y = series.smoothed(weight) if split == "train" and metric != "lr" \
                    else series.values
                curve.setData(series.x(axis, t0), y, skipFiniteCheck=False)
                mark = "o" if series.n <= 2 else None  # a lone point needs a mark to be seen
                if split == "train" and curve.opts.get("symbol") != mark:
                    curve.setSymbol(mark)
                if metric == "lr" and series.n:
                    self._flat_lr(series.values)

    def _flat_lr(self, values) -> None:
        """A constant learning rate would autorange to a band around zero; show it mid-plot."""
        lo, hi = float(values.min()), float(values.max())
        if lo == hi and lo > 0 and not self.log_y.isChecked():
            self._plots["lr"].setYRange(0, 2 * hi, padding=0.05)

    def _new_curve(self, run: RunData, split: str, metric: str, overlay: bool) -> pg.PlotDataItem:
        plot = self._plot(metric)
        if overlay:
            color = PALETTE[[r.run_id for r in self.runs].index(run.run_id) % len(PALETTE)]
        else:
            color = PALETTE[1] if split == "val" else PALETTE[0]
        style = Qt.PenStyle.DashLine if split == "val" and overlay else Qt.PenStyle.SolidLine
        pen = pg.mkPen(color, width=2 if split == "val" else 1.5, style=style)
        label = "lr" if metric == "lr" else split
        name = f"{run.name} {label}" if overlay else f"{run.name}: {label}"
        if metric != "lr":  # the learning rate has a plot of its own, titled so
            self._add_entry(name, color, style == Qt.PenStyle.DashLine)
        symbol = "o" if split == "val" else None
        curve = plot.plot(pen=pen, symbol=symbol, symbolSize=4,
                          symbolBrush=color, symbolPen=None)
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        self._curves[(run.run_id, split, metric)] = curve
        return curve

    def prepare(self, metrics: list[str]) -> None:
        """Lay out (and draw once) the plots a run will need before its first point arrives:
        called as a run starts, while the runner is still importing torch, so the first
        points do not arrive together with a 50 ms layout-and-first-paint stall."""
        for m in metrics:
            self._plot(m)
        self.canvas.repaint()

    def clear(self) -> None:
        for key, curve in list(self._curves.items()):
            self._plots[key[2]].removeItem(curve)
        self._curves.clear()
        self._seen.clear()
        self._plots.clear()
        self.canvas.ci.clear()
        self.scroll.hide()
        self.empty.show()
        self._entries.clear()
        self.legend.clear()
        self.legend.hide()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
