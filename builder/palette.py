"""The node palette (types by category, searchable, draggable) and the quick-add popup."""

from __future__ import annotations

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

from .canvas import MIME_NODE

TYPE_ROLE = Qt.ItemDataRole.UserRole + 1
HIDDEN = {"block.block"}  # placed through blocks, not from the palette


def placeable_types() -> list:
    return [t for t in registry.all_types() if t.id not in HIDDEN]


def matches(cls, text: str) -> bool:
    text = text.strip().lower()
    hay = f"{cls.name} {cls.id} {cls.category} {cls.description}".lower()
    return all(word in hay for word in text.split())


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
        self.search = QLineEdit(placeholderText="Search nodes…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.tree = _Tree()
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
        self.tree.itemDoubleClicked.connect(self._activate)
        self.populate()

    def populate(self) -> None:
        self.tree.clear()
        groups: dict[str, list] = {}
        for cls in placeable_types():
            groups.setdefault(cls.category, []).append(cls)
        for cat in sorted(groups):
            top = QTreeWidgetItem([cat])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(top)
            for cls in sorted(groups[cat], key=lambda c: c.name):
                item = QTreeWidgetItem([cls.name])
                item.setData(0, TYPE_ROLE, cls.id)
                item.setToolTip(0, f"{cls.id}\n{cls.description}")
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                              | Qt.ItemFlag.ItemIsDragEnabled)
                top.addChild(item)
        self.tree.expandAll()

    def filter(self, text: str) -> None:
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            shown = 0
            for j in range(top.childCount()):
                child = top.child(j)
                ok = matches(registry.get(child.data(0, TYPE_ROLE)), text) if text else True
                child.setHidden(not ok)
                shown += ok
            top.setHidden(shown == 0)

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
        for cls in sorted(placeable_types(), key=lambda c: (c.category, c.name)):
            if not text or matches(cls, text):
                item = QListWidgetItem(f"{cls.name}    ·  {cls.category}")
                item.setData(TYPE_ROLE, cls.id)
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
