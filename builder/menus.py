"""The main window's menu bar: every action with its shortcut, built in one place so a new feature
adds its menu item here (one hunk) rather than inside the window class. Also the two View/Help
actions that only read the menus: theme switching and the shortcuts window."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QColor, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu

from . import theme
from .import_dialog import add_import_actions
from .weights_actions import add_weights_actions

#: The main window. Typed loosely on purpose: importing ``MainWindow`` here, even for type checking,
#: would make an import cycle (the window builds its menus with this module).
MainWindow = Any

#: Actions of the Edit and View menus that the canvas's right-click menu repeats.
CONTEXT_ACTIONS = ("Duplicate", "Delete", "Copy", "Paste", "Make Block from Selection…",
                   "Expand Block", "Auto-Layout", "Fit to View")


def add_action(w: MainWindow, menu: QMenu, text: str, slot: Callable[[], object],
               shortcut: QKeySequence.StandardKey | str | None = None, tip: str = "") -> QAction:
    """One menu action; window-wide shortcut so it works whichever dock has focus."""
    act = QAction(text, w)
    if shortcut is not None:
        act.setShortcut(QKeySequence(shortcut))
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if tip:
        act.setStatusTip(tip)
    act.triggered.connect(lambda _checked=False: slot())
    menu.addAction(act)
    return act


def build_menus(w: MainWindow) -> None:
    """File, Edit, View, Run (filled by the training panel) and Help."""
    K = QKeySequence.StandardKey
    mb = w.menuBar()
    f = mb.addMenu("&File")
    add_action(w, f, "&New", w.new_project, K.New)
    add_action(w, f, "New from &Template…", w.show_gallery, "Ctrl+Shift+N")
    add_action(w, f, "&Open…", w.open_dialog, K.Open)
    w.recent_menu = f.addMenu("Open &Recent")
    w.import_menu = f.addMenu("&Import")
    add_import_actions(w, w.import_menu)  # File ▸ Import ▸ PyTorch module…
    f.addSeparator()
    add_action(w, f, "&Save", w.save, K.Save)
    add_action(w, f, "Save &As…", w.save_as, "Ctrl+Shift+S")
    ex = w.export_menu = f.addMenu("&Export")
    add_action(w, ex, "PyTorch &Code (model.py, train.py)…", w.export_code, "Ctrl+E")
    add_action(w, ex, "&Project File…", w.export_project)
    add_action(w, ex, "Graph Image (&PNG)…", lambda: w.export_image("png"))
    add_action(w, ex, "Graph Image (&SVG)…", lambda: w.export_image("svg"))
    f.addSeparator()
    add_action(w, f, "&Quit", w.close, K.Quit)
    w.file_menu = f
    add_weights_actions(w, f, ex)  # File ▸ Load Weights…, File ▸ Export ▸ ONNX…

    e = w.edit_menu = mb.addMenu("&Edit")
    undo = w.document.undo_stack.createUndoAction(w, "&Undo")
    undo.setShortcut(K.Undo)
    redo = w.document.undo_stack.createRedoAction(w, "&Redo")
    redo.setShortcuts([QKeySequence(K.Redo), QKeySequence("Ctrl+Y")])
    e.addAction(undo)
    e.addAction(redo)
    e.addSeparator()
    add_action(w, e, "Cu&t", w.cut, K.Cut)
    add_action(w, e, "&Copy", w.copy, K.Copy)
    add_action(w, e, "&Paste", w.paste, K.Paste)
    add_action(w, e, "&Duplicate", w.scene.duplicate, "Ctrl+D")
    add_action(w, e, "De&lete", w.scene.delete_selected, K.Delete)
    add_action(w, e, "Select &All", lambda: w.scene.select(list(w.scene.nodes)), K.SelectAll)
    e.addSeparator()
    add_action(w, e, "&Make Block from Selection…", w.make_block, "Ctrl+G")
    add_action(w, e, "E&xpand Block", w.expand_block, "Ctrl+Shift+G")
    add_action(w, e, "Find &Node…", lambda: (w.docks["Palette"].raise_(),
                                            w.palette.search.setFocus()), K.Find)
    al = e.addMenu("Ali&gn")
    for text, how, key in (("Left edges", "left", "Ctrl+Alt+L"),
                           ("Top edges", "top", "Ctrl+Alt+T"),
                           ("Centre vertically", "vcenter", None),
                           ("Centre horizontally", "hcenter", None),
                           ("Spread horizontally", "hspread", "Ctrl+Alt+H"),
                           ("Spread vertically", "vspread", "Ctrl+Alt+V")):
        add_action(w, al, text, lambda h=how: w.scene.align(h), key)

    v = w.view_menu = mb.addMenu("&View")
    add_action(w, v, "&Fit to View", w.view.fit, "F")
    add_action(w, v, "Zoom &In", lambda: w.view.zoom(1.25), K.ZoomIn)
    add_action(w, v, "Zoom &Out", lambda: w.view.zoom(0.8), K.ZoomOut)
    add_action(w, v, "&Actual Size", w.view.resetTransform, "Ctrl+0")
    add_action(w, v, "Auto-&Layout", w.auto_layout, "Ctrl+L")
    add_action(w, v, "&Back to Enclosing Graph", w.close_block, "Backspace")
    th = v.addMenu("&Theme")
    group = QActionGroup(w)
    w.theme_actions = {}
    for name in ("dark", "light"):
        act = QAction(name.title(), w, checkable=True)
        act.triggered.connect(lambda _c=False, n=name: w.set_theme(n))
        group.addAction(act)
        th.addAction(act)
        w.theme_actions[name] = act
    w.theme_actions[theme.current().name].setChecked(True)
    v.addSeparator()
    for dock in w.docks.values():
        v.addAction(dock.toggleViewAction())

    w.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
    for menu in (e, v):
        for act in menu.actions():
            if act.text().replace("&", "") in CONTEXT_ACTIONS:
                w.view.addAction(act)
    w.run_menu = mb.addMenu("&Run")
    h = w.help_menu = mb.addMenu("&Help")
    add_action(w, h, "&Keyboard Shortcuts", w.show_shortcuts, "F1")
    add_action(w, h, "&About Layerloom", lambda: w.inform(
        "About Layerloom", "Layerloom: draw deep-learning models, check their shapes, "
        "export plain PyTorch."))


def set_theme(w: MainWindow, name: str) -> None:
    """Switch theme app-wide, remember it, and repaint what caches colours."""
    app = QApplication.instance()
    theme.apply(app, name)  # type: ignore[arg-type]
    from .file_actions import settings

    settings().setValue("theme", name)
    if name in w.theme_actions:
        w.theme_actions[name].setChecked(True)
    w.scene.setBackgroundBrush(QColor(theme.current().canvas))
    for item in w.scene.items():
        item.update()
    w.inspector.show_node(w.inspector.network, w.inspector.node_id)
    w.view.viewport().update()
    w.code.highlighter.set_colors()
    w.training.apply_theme()


def show_shortcuts(w: MainWindow) -> None:
    """F1: the grouped, searchable shortcuts window (builder/shortcuts.py)."""
    from .shortcuts import show_shortcuts as show

    show(w)
