"""Help ▸ Keyboard Shortcuts (F1): every menu action with a shortcut, grouped by menu, plus the
canvas gestures, in a window that filters as you type. Read from the live menus, so a feature
that adds a menu item with a shortcut appears here without a change to this file."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLineEdit,
    QMainWindow,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import assets

MainWindow = QMainWindow  # any window with a menu bar (no import of main_window: no cycle)

#: Gestures that are not menu actions (mouse and canvas keys).
CANVAS_GESTURES = (
    ("Quick-add a node at the cursor", "Tab / double-click empty canvas"),
    ("Wire two ports", "Drag from an output port to an input port"),
    ("Zoom", "Mouse wheel"),
    ("Pan", "Middle-drag"),
    ("Select several nodes", "Drag on empty canvas / Shift+click"),
    ("Open a block", "Double-click the block"),
    ("Add the best palette match", "Type in the palette search, Enter"),
)


def menu_shortcuts(w: MainWindow) -> list[tuple[str, list[tuple[str, str]]]]:
    """(menu title, [(action, shortcut)]) for every menu and submenu with shortcuts."""
    groups: list[tuple[str, list[tuple[str, str]]]] = []

    def walk(menu: QMenu, title: str) -> None:
        rows = []
        for act in menu.actions():
            if act.menu() is not None:
                walk(act.menu(), f"{title} ▸ {act.text().replace('&', '')}")
                continue
            keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText)
                             for s in act.shortcuts() if not s.isEmpty())
            if keys and act.text():
                rows.append((act.text().replace("&", ""), keys))
        if rows:
            groups.append((title, rows))

    for top in w.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), top.text().replace("&", ""))
    return groups


class ShortcutsDialog(QDialog):
    """Grouped, searchable list of shortcuts; non-modal, so it can stay open beside the work."""

    def __init__(self, w: MainWindow, parent: QWidget | None = None) -> None:
        super().__init__(parent or w)
        self.setWindowTitle("Keyboard shortcuts")
        self.setWindowIcon(assets.app_icon())
        self.resize(560, 620)
        self.filter = QLineEdit(placeholderText="Filter shortcuts…  (e.g. undo, Ctrl+L, zoom)")
        self.filter.setObjectName("shortcut_filter")
        self.filter.setClearButtonEnabled(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["action", "shortcut"])
        self.tree.setRootIsDecorated(False)
        self.tree.setColumnWidth(0, 280)
        for title, rows in menu_shortcuts(w) + [("Canvas", list(CANVAS_GESTURES))]:
            top = QTreeWidgetItem([title])
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for action, keys in rows:
                top.addChild(QTreeWidgetItem([action, keys]))
            self.tree.addTopLevelItem(top)
        self.tree.expandAll()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.filter)
        lay.addWidget(self.tree, 1)
        lay.addWidget(buttons)
        self.filter.textChanged.connect(self.apply_filter)
        self.filter.setFocus()

    def apply_filter(self, text: str) -> None:
        """Keep the rows whose action, shortcut or group contains every typed word."""
        words = text.lower().split()
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            shown = 0
            for j in range(top.childCount()):
                child = top.child(j)
                hay = f"{top.text(0)} {child.text(0)} {child.text(1)}".lower()
                ok = all(word in hay for word in words)
                child.setHidden(not ok)
                shown += ok
            top.setHidden(shown == 0)

    def visible_actions(self) -> list[str]:
        return [self.tree.topLevelItem(i).child(j).text(0)
                for i in range(self.tree.topLevelItemCount())
                for j in range(self.tree.topLevelItem(i).childCount())
                if not self.tree.topLevelItem(i).child(j).isHidden()
                and not self.tree.topLevelItem(i).isHidden()]


def show_shortcuts(w: MainWindow) -> ShortcutsDialog:
    """Open (or bring forward) the shortcuts window."""
    dlg = getattr(w, "shortcuts_dialog", None)
    if dlg is None:
        dlg = w.shortcuts_dialog = ShortcutsDialog(w)
    dlg.filter.clear()
    dlg.show()
    dlg.raise_()
    dlg.activateWindow()
    dlg.filter.setFocus()
    return dlg
