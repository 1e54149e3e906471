"""What an opened trial window shows besides its graph: which trial it is, its figures and every
param that differs from the searched project (``training.search.space.differences``), as a
"Trial N" dock whose rows lead to their nodes (hover selects the node, a click shows it,
switching to its network or block), and on the canvas an outline and a "Δ N" pill on each node
the trial changed (``badge.paint_changed_*``, read by ``NodeItem`` from the scene)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from compiler.summary import human
from training.search.space import Difference

#: The row's (scope, node id), for the hover and click handlers.
NODE_ROLE = Qt.ItemDataRole.UserRole


def head_text(number: int, ev: dict[str, Any]) -> str:
    metric = ev.get("metric")
    return "<br>".join([
        f"<b>Trial {number}</b> of the search ({ev.get('state', '?')})",
        "validation metric: " + ("—" if metric is None else f"<b>{metric:.4f}</b>"),
        "parameters: " + ("—" if ev.get("params") is None else human(ev["params"])),
        "FLOPs: " + ("—" if ev.get("flops") is None else human(ev["flops"])),
        "", "<b>Differences from the base</b>"])


def changes_by_node(diffs: list[Difference]) -> dict[tuple[str, str], list[str]]:
    """{(scope, node id): ["param: old → new", ...]}: what the canvas marks."""
    out: dict[tuple[str, str], list[str]] = {}
    for d in diffs:
        out.setdefault((d.scope, d.node), []).append(d.change)
    return out


class TrialDifferences(QWidget):
    """The dock's body: the trial's figures, one row per changed param, the next steps."""

    def __init__(self, window: Any, number: int, ev: dict[str, Any], diffs: list[Difference],
                 note: str | None = None) -> None:
        super().__init__()
        self.setObjectName("trial_differences")
        self._window = window
        head = QLabel(head_text(number, ev))
        head.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rows = QListWidget()
        self.rows.setObjectName("trial_difference_rows")
        self.rows.setMouseTracking(True)  # itemEntered: hovering a row selects its node
        self.rows.setWordWrap(True)
        for d in diffs:
            item = QListWidgetItem(d.line)
            item.setData(NODE_ROLE, (d.scope, d.node))
            item.setToolTip(f"{d.line}<br>hover: select the node; click: show it")
            self.rows.addItem(item)
        if not diffs:
            item = QListWidgetItem(note or "the same as the searched project's values")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.rows.addItem(item)
        self.rows.itemEntered.connect(self.hover)
        self.rows.itemClicked.connect(self.reveal)
        foot = QLabel("Train it longer (F5) or export it (File ▸ Export).")
        foot.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(self.rows, 1)
        layout.addWidget(foot)

    def hover(self, item: QListWidgetItem) -> None:
        """Select the row's node when its graph is the one shown (no jump while the pointer
        passes over the list: a click does that)."""
        where = item.data(NODE_ROLE)
        scene = self._window.scene
        if where and where[0] == scene.network and where[1] in scene.nodes:
            scene.select([where[1]])

    def reveal(self, item: QListWidgetItem) -> None:
        """Select and centre the row's node, switching to its network or block."""
        where = item.data(NODE_ROLE)
        if where:
            self._window.show_node(*where)


def attach_differences(window: Any, number: int, ev: dict[str, Any], diffs: list[Difference],
                       note: str | None = None) -> TrialDifferences:
    """A "Trial N" dock on the new window listing the differences (the same in its status
    line), and their nodes marked on its canvas, in whichever graph the user opens."""
    body = TrialDifferences(window, number, ev, diffs, note)
    window.add_dock(body, f"Trial {number}", Qt.DockWidgetArea.RightDockWidgetArea)
    lines = [d.line for d in diffs]
    window.show_status(f"Trial {number}: " + ("; ".join(lines) or note or "no differences"))
    window.trial_differences = lines
    scene = window.scene
    scene.trial_changes = changes_by_node(diffs)
    for item in scene.nodes.values():
        item.refresh()
    return body
