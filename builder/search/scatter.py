"""The live scatter of a search: validation metric against cost, one point per finished trial,
the Pareto front drawn as a step line and redrawn whenever the search reports a new front.
Clicking a point emits its trial number (the panel opens that architecture)."""

from __future__ import annotations

import math
import os
from typing import Any

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")  # pyqtgraph binds Qt at import

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import Signal  # noqa: E402
from PySide6.QtWidgets import QVBoxLayout, QWidget  # noqa: E402

from .. import theme  # noqa: E402

COST_TITLES = {"params": "parameters", "flops": "FLOPs", "latency": "latency (ms)"}


def short(v: float) -> str:
    """A count as a tick label: 20, 500, 1k, 20k, 5M."""
    for exp, unit in ((12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if v >= 10 ** exp:
            return f"{v / 10 ** exp:g}{unit}"
    return f"{v:g}"


def pareto(points: dict[int, tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Trial numbers on the front of (cost, metric): no other trial is as cheap and at least as
    good with one strictly better. Used when the search has not sent its own front yet."""
    sign = 1 if higher_is_better else -1
    out = []
    for n, (c, m) in points.items():
        if not any((c2 <= c and sign * m2 >= sign * m) and (c2 < c or sign * m2 > sign * m)
                   for n2, (c2, m2) in points.items() if n2 != n):
            out.append(n)
    return sorted(out, key=lambda n: points[n][0])


class SearchScatter(QWidget):
    """Metric (y) against cost (x, log scale for counts) of every trial with both."""

    trial_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        t = theme.current()
        pg.setConfigOptions(antialias=True)
        self.plot = pg.PlotWidget(background=t.base)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setMinimumSize(220, 160)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # accuracy 0.93, not 930 × 0.001
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)
        self.points = pg.ScatterPlotItem(size=10, hoverable=True, tip=self._tip)
        self.points.sigClicked.connect(self._clicked)
        self.front_line = pg.PlotDataItem(pen=pg.mkPen(t.accent, width=2), stepMode=None)
        self.front_marks = pg.ScatterPlotItem(size=14, pen=pg.mkPen(t.accent, width=2),
                                              brush=None)
        self.plot.addItem(self.front_line)
        self.plot.addItem(self.points)
        self.plot.addItem(self.front_marks)
        self.trials: dict[int, dict[str, Any]] = {}
        self.front: list[int] = []
        self.higher_is_better = True
        self.set_axes("accuracy", "params")

    def set_axes(self, metric_name: str, objective: str) -> None:
        # counts span decades: x is drawn as log10 (the axis labels the powers). ScatterPlotItem
        # has no log mode of its own, so the transform is done here for every item alike.
        self.log_x = objective in ("params", "flops")
        self.plot.getAxis("bottom").setTicks(None)
        self.plot.setLabel("left", f"validation {metric_name}")
        self.plot.setLabel("bottom", COST_TITLES.get(objective, objective))

    def clear(self) -> None:
        self.trials.clear()
        self.front = []
        self._redraw()

    def add_trial(self, ev: dict[str, Any]) -> None:
        """A finished trial; drawn when it has both a metric and a cost."""
        if ev.get("metric") is not None and ev.get("cost") is not None:
            self.trials[int(ev["number"])] = ev
            self._redraw()

    def set_front(self, numbers: list[int]) -> None:
        self.front = [int(n) for n in numbers]
        self._redraw()

    def plotted(self) -> list[int]:
        return sorted(self.trials)

    def _xy(self, ev: dict[str, Any]) -> tuple[float, float]:
        """(cost, metric) as drawn: log10 of the cost for counts (nan when not positive)."""
        cost = float(ev["cost"])
        if self.log_x:
            cost = math.log10(cost) if cost > 0 else math.nan
        return cost, float(ev["metric"])

    def _redraw(self) -> None:
        t = theme.current()
        spots = []
        for n, ev in sorted(self.trials.items()):
            x, y = self._xy(ev)
            if not math.isfinite(x):
                continue
            done = ev.get("state") == "complete"
            spots.append({"pos": (x, y), "data": n,
                          "brush": pg.mkBrush(t.accent if done else t.dim),
                          "pen": pg.mkPen(t.text if done else t.dim, width=1),
                          "symbol": "o" if done else "t"})
        self.points.setData(spots)
        front = [n for n in self.front if n in self.trials] or (
            pareto({n: self._xy(e) for n, e in self.trials.items()
                    if e.get("state") == "complete"}, self.higher_is_better)
            if not self.front else [])
        xy = sorted(xy for xy in (self._xy(self.trials[n]) for n in front)
                    if math.isfinite(xy[0]))
        self._ticks(spots)
        self.front_line.setData([x for x, _ in xy], [y for _, y in xy])
        self.front_marks.setData([x for x, _ in xy], [y for _, y in xy])

    def _ticks(self, spots: list[dict[str, Any]]) -> None:
        """Decades labelled 1k, 10k, 100k (and 2-9 unlabelled between) for a log cost axis."""
        if not self.log_x or not spots:
            return
        xs = [s["pos"][0] for s in spots]
        lo, hi = math.floor(min(xs)) - 1, math.ceil(max(xs)) + 1
        major = [(float(k), short(10.0 ** k)) for k in range(lo, hi + 1)]
        minor = [(math.log10(m * 10.0 ** k), short(m * 10.0 ** k) if m in (2, 5) else "")
                 for k in range(lo, hi) for m in range(2, 10)]
        self.plot.getAxis("bottom").setTicks([major, minor])

    def _tip(self, x: float, y: float, data: Any) -> str:
        ev = self.trials.get(data, {})
        choices = ", ".join(f"{k}={v}" for k, v in (ev.get("choices") or {}).items())
        cost = 10 ** x if self.log_x and math.isfinite(x) else x
        return f"trial {data}: {y:.4f} at {cost:,.0f}\n{choices}"

    def _clicked(self, _item: Any, points: Any, _ev: Any = None) -> None:
        pts = list(points)
        if pts:
            self.trial_clicked.emit(int(pts[0].data()))
