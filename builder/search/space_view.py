"""The space half of the Search panel: every choice (its label, where it is, its domain), the
choices whose node is gone (inactive until an undo brings it back) and the size of the space."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from compiler.loading import choice_target
from compiler.project import Domain, Project

from .. import theme


def domain_text(d: Domain) -> str:
    """A domain as a user reads it: ``[16, 32, 64]``, ``1..3``, ``8..256 log``, ``0.1..0.5``."""
    if d.kind == "values":
        return "[" + ", ".join(str(v) for v in d.values or []) + "]"
    text = f"{d.low:g}..{d.high:g}" if d.kind == "float" else f"{d.low}..{d.high}"
    if d.step and d.step != 1:
        text += f" step {d.step}"
    return text + (" log" if d.log else "")


def size_text(project: Project) -> str:
    from training.search.space import decisions, space_size

    decs = decisions(project)
    if not decs:
        return "no choices: right-click a parameter in the Inspector › Search over…"
    size = space_size(project)
    count = f"{size:,} architectures" if size is not None else "a continuous space"
    return f"{count} · {len(decs)} decision{'s' * (len(decs) != 1)}"


class SpaceView(QWidget):
    """Lists the choices; ``remove_requested(scope, node, param)`` for the Remove button."""

    remove_requested = Signal(str, str, str)
    show_requested = Signal(str, str)  # scope, node: select it on the canvas

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["label", "where", "domain"])
        self.tree.setRootIsDecorated(False)
        self.tree.setMinimumHeight(70)
        self.tree.itemDoubleClicked.connect(self._show)
        self.size = QLabel()
        self.size.setWordWrap(True)
        self.remove = QPushButton("Remove choice")
        self.remove.setToolTip("Stop searching the selected parameter (undoable)")
        self.remove.clicked.connect(self._remove)
        row = QHBoxLayout()
        row.addWidget(self.size, 1)
        row.addWidget(self.remove)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.tree, 1)
        lay.addLayout(row)

    def refresh(self, project: Project) -> None:
        t = theme.current()
        self.tree.clear()
        for c in project.search.choices:
            target = choice_target(project, c)
            where = f"{c.scope}/{target[1].name}.{c.param}" if target else \
                f"{c.scope}/{c.node}.{c.param} (node gone: inactive)"
            item = QTreeWidgetItem([c.label, where, domain_text(c.domain)])
            item.setData(0, Qt.ItemDataRole.UserRole, (c.scope, c.node, c.param))
            if target is None:
                for col in range(3):
                    item.setForeground(col, QColor(t.dim))
            self.tree.addTopLevelItem(item)
        for col in range(3):
            self.tree.resizeColumnToContents(col)
        self.size.setText(size_text(project))
        self.remove.setEnabled(bool(project.search.choices))

    def _key(self) -> Any:
        item = self.tree.currentItem() or self.tree.topLevelItem(0)
        return None if item is None else item.data(0, Qt.ItemDataRole.UserRole)

    def _remove(self) -> None:
        key = self._key()
        if key:
            self.remove_requested.emit(*key)

    def _show(self, item: QTreeWidgetItem, _col: int) -> None:
        scope, node, _param = item.data(0, Qt.ItemDataRole.UserRole)
        self.show_requested.emit(scope, node)
