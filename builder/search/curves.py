"""The running trials' curves: validation metric by step for each trial as it trains (the last
few trials kept, older ones dropped), so a user sees a trial learning before it lands on the
scatter."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")  # pyqtgraph binds Qt at import

import pyqtgraph as pg  # noqa: E402
from PySide6.QtWidgets import QVBoxLayout, QWidget  # noqa: E402

from .. import theme  # noqa: E402

KEEP = 6  # curves shown at once
PALETTE = ("#4f9cf7", "#f2b84b", "#5bbf9a", "#e86f9a", "#a98bf5", "#f08a4b")


class TrialCurves(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background=theme.current().base)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "validation metric")
        self.plot.setMinimumSize(160, 120)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.addLegend(offset=(-4, 4))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)
        self.data: dict[int, tuple[list[float], list[float]]] = {}
        self.items: dict[int, pg.PlotDataItem] = {}

    def clear(self) -> None:
        for item in self.items.values():
            self.plot.removeItem(item)
        self.items.clear()
        self.data.clear()

    def metric(self, ev: dict[str, Any]) -> None:
        """One ``trial_metric`` event; only validation points with a metric are drawn."""
        if ev.get("split", "val") != "val" or ev.get("metric") is None:
            return
        n = int(ev["number"])
        if n not in self.items:
            while len(self.items) >= KEEP:
                old = min(self.items)
                self.plot.removeItem(self.items.pop(old))
                self.data.pop(old, None)
            color = PALETTE[n % len(PALETTE)]
            self.items[n] = self.plot.plot([], [], pen=pg.mkPen(color, width=2),
                                           name=f"trial {n}")
            self.data[n] = ([], [])
        xs, ys = self.data[n]
        xs.append(float(ev.get("step") or len(xs)))
        ys.append(float(ev["metric"]))
        self.items[n].setData(xs, ys)
