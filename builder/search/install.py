"""How the main window takes the Search dock: the dock beside Training, Run ▸ Search items, the
space size in the status bar and the window factory for opened trials. One call from the window
(``add_search``), so the window's own file gains two lines."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from compiler.project import Project

from .panel import SearchPanel
from .space_view import size_text


def open_window(w: Any, project: Project) -> Any:
    """A new window of the same class as ``w`` on ``project`` (an unsaved document), shown, with
    the same dialog hooks as its parent so scripts that answer for one answer for both."""
    from ..file_actions import lay_out_all

    lay_out_all(project)
    win = type(w)(project)
    win.ask, win.inform = w.ask, w.inform
    win.resize(w.size())
    win.show()
    return win


def add_search(w: Any, area: Qt.DockWidgetArea) -> SearchPanel:
    doc = w.document
    panel = SearchPanel(doc, lambda: doc.path, w)
    panel.ask = lambda title, text: w.ask(title, text)
    panel.open_window = lambda project: open_window(w, project)
    panel.status.connect(w.show_status)
    dock = w.add_dock(panel, "Search", area)
    panel.started.connect(lambda: (dock.show(), dock.raise_()))
    panel.finished.connect(lambda ev: w.show_status(
        "Search " + ("stopped" if ev.get("stopped") else "finished")
        + ("" if ev.get("best") is None else f": best trial {ev['best']}")
        if ev.get("event") == "search_finished" else f"Search failed: {ev.get('message')}"))

    def start() -> None:
        dock.show()
        dock.raise_()
        panel.start(resume=False)

    from ..menus import add_action

    w.run_menu.addSeparator()
    add_action(w, w.run_menu, "&Search Architectures", start,
               tip="Search the marked choices (right-click a parameter › Search over…)")
    add_action(w, w.run_menu, "Stop Searc&h", panel.stop)
    add_action(w, w.run_menu, "Show Search &Panel", lambda: (dock.show(), dock.raise_()))

    size = QLabel()
    size.setObjectName("search_space_size")
    w.statusBar().addPermanentWidget(size)

    def follow(event: str, _info: dict) -> None:
        if event in ("search", "reset", "structure") or event.startswith("node"):
            has = bool(doc.project.search.choices)
            size.setVisible(has)
            size.setText("search: " + size_text(doc.project) if has else "")

    doc.changed.connect(follow)
    doc.path_changed.connect(lambda _path: panel.refresh())  # Resume follows the study folder
    follow("search", {})
    w.search_panel = panel
    return panel
