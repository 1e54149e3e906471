"""The node palette (types by category, searchable, draggable) and the quick-add popup."""

from __future__ import annotations

import re

from PySide6.QtCore import QMimeData, QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nodes import registry

from . import assets
from .canvas import MIME_NODE

TYPE_ROLE = Qt.ItemDataRole.UserRole + 1
HIDDEN = {"block.block", "opaque.module"}  # placed through blocks / made by an import


def placeable_types() -> list:
    return [t for t in registry.all_types() if t.id not in HIDDEN]


def matches(cls, text: str) -> bool:
    text = text.strip().lower()
    hay = f"{cls.name} {cls.id} {cls.category} {cls.description}".lower()
    return all(word in hay for word in text.split())


def rank(cls, text: str) -> int | None:
    """How well a type answers a search (lower is better; None: no match). An exact name comes
    first, then a prefix, a word prefix, a substring of the name, and last a hit anywhere in the
    description: ``relu`` finds ReLU before LeakyReLU, ``add`` finds Add before Graph Add..."""
    t = text.strip().lower()
    if not t:
        return 50
    name, tail = cls.name.lower(), cls.id.rsplit(".", 1)[-1].lower()
    if t in (name, tail):
        return 0
    if name.startswith(t) or tail.startswith(t):
        return 1
    if any(w.startswith(t) for w in re.split(r"[^a-z0-9]+", name)):
        return 2
    if t in name or t in cls.id.lower():
        return 3
    return 4 if matches(cls, text) else None


def tooltip(cls) -> str:
    """What a palette entry says on hover: the name a user reads, then what the layer does."""
    return f"<b>{cls.name}</b> · {cls.category}<br>{cls.description}" if cls.description \
        else f"<b>{cls.name}</b> · {cls.category}"


def ranked(text: str) -> list:
    """The placeable types matching ``text``, best first (ties alphabetically)."""
    hits = [(rank(c, text), c.name.lower(), c) for c in placeable_types()]
    return [c for r, _n, c in sorted((h for h in hits if h[0] is not None),
                                     key=lambda h: (h[0], h[1]))]


class _Tree(QTreeWidget):
    def supportedDropActions(self):  # noqa: N802 - drags from here copy, never move
        return Qt.DropAction.CopyAction

    def mimeData(self, items):  # noqa: N802
        mime = QMimeData()
        type_id = items[0].data(0, TYPE_ROLE) if items else None
        if type_id:
            mime.setData(MIME_NODE, type_id.encode())
        return mime

    def mimeTypes(self):  # noqa: N802
        return [MIME_NODE]


class Palette(QWidget):
    """Drag a type onto the canvas, or double-click it to add it at the view's centre."""

    activated = Signal(str)  # type id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit(placeholderText="Search nodes…  (Ctrl+F, Enter adds the first)")
        self.search.setObjectName("palette_search")
        self.search.setClearButtonEnabled(True)
        self.tree = _Tree()
        self.tree.setObjectName("palette")
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QTreeWidget.DragDropMode.DragOnly)
        self.tree.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.tree.setIndentation(12)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.search)
        lay.addWidget(self.tree)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._activate_best)
        self.tree.itemDoubleClicked.connect(self._activate)
        self.populate()

    def populate(self) -> None:
        self.tree.clear()
        groups: dict[str, list] = {}
        for cls in placeable_types():
            groups.setdefault(cls.category, []).append(cls)
        for cat in sorted(groups):
            top = QTreeWidgetItem([cat])
            top.setIcon(0, assets.category_icon(cat))
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(top)
            for cls in sorted(groups[cat], key=lambda c: c.name):
                item = QTreeWidgetItem([cls.name])
                item.setData(0, TYPE_ROLE, cls.id)
                item.setToolTip(0, tooltip(cls))
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
                top.addChild(item)
        self.tree.expandAll()

    def filter(self, text: str) -> None:
        """Show the matching types, best matches first (categories by their best entry); the
        best one is highlighted, and Enter adds it."""
        tree = self.tree
        tops = [tree.takeTopLevelItem(0) for _ in range(tree.topLevelItemCount())]
        best_of: dict[int, tuple] = {}
        for top in tops:
            children = top.takeChildren()
            keyed = [(rank(registry.get(c.data(0, TYPE_ROLE)), text), c.text(0).lower(), c)
                     for c in children]
            keyed.sort(key=lambda k: (99 if k[0] is None else k[0], k[1]))
            top.addChildren([k[2] for k in keyed])
            best_of[id(top)] = (min((k[0] for k in keyed if k[0] is not None), default=99),
                                top.text(0))
        tops.sort(key=lambda t: best_of[id(t)] if text.strip() else (0, t.text(0)))
        tree.addTopLevelItems(tops)
        tree.expandAll()
        first = None
        for top in tops:
            shown = 0
            for j in range(top.childCount()):
                child = top.child(j)
                ok = rank(registry.get(child.data(0, TYPE_ROLE)), text) is not None
                child.setHidden(not ok)
                shown += ok
                if ok and first is None:
                    first = child
            top.setHidden(shown == 0)
        if text.strip() and first is not None:
            tree.setCurrentItem(first)
        else:
            tree.clearSelection()

    def _activate_best(self) -> None:
        """Enter in the search box adds the highlighted (best) match."""
        item = self.tree.currentItem()
        if item is not None and not item.isHidden() and self.search.text().strip():
            self._activate(item)

    def _activate(self, item: QTreeWidgetItem) -> None:
        type_id = item.data(0, TYPE_ROLE)
        if type_id:
            self.activated.emit(type_id)


class QuickAdd(QFrame):
    """A search box with results that pops up at the cursor (Tab or double-click on the canvas)."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.edit = QLineEdit(placeholderText="Add node…")
        self.list = QListWidget()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.edit)
        lay.addWidget(self.list)
        self.resize(280, 320)
        self.edit.textChanged.connect(self.refresh)
        self.edit.returnPressed.connect(self.accept_current)
        self.list.itemActivated.connect(lambda _i: self.accept_current())
        self.edit.installEventFilter(self)
        self.refresh("")

    def refresh(self, text: str) -> None:
        self.list.clear()
        types = ranked(text) if text.strip() else \
            sorted(placeable_types(), key=lambda c: (c.category, c.name))
        for cls in types:
            item = QListWidgetItem(assets.category_icon(cls.category),
                                   f"{cls.name}    ·  {cls.category}")
            item.setData(TYPE_ROLE, cls.id)
            item.setToolTip(tooltip(cls))
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        from PySide6.QtCore import QEvent

        if obj is self.edit and event.type() == QEvent.Type.KeyPress:
            if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                row = self.list.currentRow() + (1 if event.key() == Qt.Key.Key_Down else -1)
                self.list.setCurrentRow(max(0, min(self.list.count() - 1, row)))
                return True
        return super().eventFilter(obj, event)

    def accept_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.chosen.emit(item.data(TYPE_ROLE))
        self.hide()

    def popup(self, global_pos: QPoint) -> None:
        self.edit.clear()
        self.move(global_pos)
        self.show()
        self.edit.setFocus()
