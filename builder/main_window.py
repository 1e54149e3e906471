"""The main window: canvas in the middle, palette left, inspector and code right, problems and
summary below; menus with the shortcuts. File, export and recovery actions live in
``file_actions.py`` (a mixin)."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from compiler.graph import GraphEditError
from compiler.project import Project

from . import assets, menus, recovery, theme
from .canvas import CanvasScene, CanvasView
from .commands import ExpandBlockCommand, LayoutCommand, MakeBlockCommand, push
from .document import Document
from .file_actions import FileActions
from .gallery import template_infos
from .inspector import Inspector
from .layout import layered_positions
from .palette import Palette, QuickAdd
from .panels import CodeView, ProblemsPanel, SummaryView

DEFAULT_TEMPLATE = "resnet18-small"
class MainWindow(FileActions, QMainWindow):
    def __init__(self, project: Project | None = None) -> None:
        super().__init__()
        self.setObjectName("MainWindow")
        self.document = Document(project, self)
        doc = self.document
        self.path_stack: list[str] = [doc.project.networks[0].name] if doc.project.networks \
            else ["net"]
        # Dialog hooks: tests and scripts replace these to answer without a modal dialog.
        self.ask: Callable[[str, str], bool] = self._ask
        #: Unsaved changes: "save", "discard" or "cancel" (File ▸ New/Open, gallery, close).
        self.ask_unsaved: Callable[[str], str] = self._ask_unsaved
        self.inform: Callable[[str, str], None] = self._inform
        self.ask_text: Callable[[str, str, str], str | None] = self._ask_text
        self.choose_file: Callable[[str, str, bool], str | None] = self._choose_file
        self.choose_dir: Callable[[str], str | None] = self._choose_dir
        self._clip = None

        self.scene = CanvasScene(doc, self.path_stack[0], self)
        self.view = CanvasView(self.scene)
        self.tabs = QTabBar()
        self.tabs.setDocumentMode(True)
        self.tabs.setExpanding(False)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.back = QToolButton(text="◀ Back")
        self.back.setToolTip("Back to the enclosing graph (Backspace)")
        self.back.clicked.connect(self.close_block)
        self.crumbs = QLabel()
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 2)
        bar.addWidget(self.tabs)
        bar.addWidget(self.back)
        bar.addWidget(self.crumbs, 1)
        central = QWidget()
        col = QVBoxLayout(central)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        col.addLayout(bar)
        col.addWidget(self.view, 1)
        self.setCentralWidget(central)

        self.palette = Palette()
        self.inspector = Inspector(doc)
        self.problems = ProblemsPanel(doc)
        self.code = CodeView(doc)
        self.summary = SummaryView(doc)
        self.quick = QuickAdd(self)
        self._quick_pos = QPointF()
        self.docks: dict[str, QDockWidget] = {}
        left, right, bottom = (Qt.DockWidgetArea.LeftDockWidgetArea,
                               Qt.DockWidgetArea.RightDockWidgetArea,
                               Qt.DockWidgetArea.BottomDockWidgetArea)
        self.add_dock(self.palette, "Palette", left)
        self.add_dock(self.inspector, "Inspector", right)
        self.add_dock(self.code, "Code", right)
        self.add_dock(self.problems, "Problems", bottom)
        self.add_dock(self.summary, "Summary", bottom)
        self.code.follow(self.docks["Code"])
        self.summary.follow(self.docks["Summary"])
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)

        self.state_label = QLabel()
        self.statusBar().addPermanentWidget(self.state_label)
        menus.build_menus(self)
        self._add_training(bottom)
        from .search.install import add_search  # the Search dock beside Training (issue 12)

        add_search(self, bottom)

        self.scene.status.connect(self.show_status)
        self.inspector.status.connect(self.show_status)
        self.scene.selection_ids.connect(self._selection)
        self.scene.open_block.connect(self.open_block)
        self.view.quick_add.connect(self._quick_add)
        self.quick.chosen.connect(lambda t: self.scene.add_node(t, self._quick_pos))
        self.palette.activated.connect(self._add_at_center)
        self.problems.node_requested.connect(self.show_node)
        doc.analyzed.connect(self._analyzed)
        doc.figures_ready.connect(self._figures_ready)
        self.setWindowIcon(assets.app_icon())
        doc.dirty_changed.connect(lambda _d: self._update_title())
        doc.path_changed.connect(lambda _p: self._update_title())
        doc.changed.connect(self._doc_changed)

        self.recovery_file = recovery.RecoveryFile()
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(recovery.AUTOSAVE_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()

        self._restore_settings()
        self._refresh_tabs()
        self._update_title()

    def showEvent(self, e) -> None:  # noqa: N802
        super().showEvent(e)
        if getattr(self, "_shown", False):
            return
        self._shown = True
        # Tabifying before the first show leaves a stray tab bar on some platforms.
        if not self._restored_state:
            self.tabifyDockWidget(self.docks["Inspector"], self.docks["Code"])
            self.tabifyDockWidget(self.docks["Problems"], self.docks["Summary"])
            self.tabifyDockWidget(self.docks["Problems"], self.docks["Training"])
            self.tabifyDockWidget(self.docks["Training"], self.docks["Search"])
            self.resizeDocks([self.docks["Palette"], self.docks["Inspector"]], [210, 330],
                             Qt.Orientation.Horizontal)
            self.resizeDocks([self.docks["Problems"]], [160], Qt.Orientation.Vertical)
        self.docks["Inspector"].raise_()
        self.docks["Problems"].raise_()
        QTimer.singleShot(0, lambda: self.view.fit(readable=True))

    # -- docks and menus -----------------------------------------------------------------------
    def add_dock(self, widget: QWidget, title: str,
                 area: Qt.DockWidgetArea = Qt.DockWidgetArea.BottomDockWidgetArea) -> QDockWidget:
        """Dock a panel (the training dashboard docks itself at the bottom this way)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[title] = dock
        if hasattr(self, "view_menu"):
            self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _add_training(self, area: Qt.DockWidgetArea) -> None:
        """The training dashboard: a dock at the bottom, its run actions in the Run menu.

        The panel reads the live project (it snapshots it when a run starts, so edits never reach
        a running model), writes its settings through an undoable command, and shows a banner
        when the graph changes during a run."""
        from .commands import AdaptToDataCommand, SetTrainingCommand, push
        from .dashboard import TrainingPanel

        doc = self.document
        self.training = TrainingPanel(lambda: doc.project, lambda: doc.path, self)
        self.training.apply_training = lambda t: push(doc, SetTrainingCommand(doc, t))
        self.training.apply_fit = lambda net, changes: push(doc, AdaptToDataCommand(doc, net,
                                                                                    changes))
        # a refused F5 is seen wherever the user is: the status bar says why, the panel shows
        self.training.start_refused.connect(lambda why: (self.show_training(),
                                                         self.show_status(why)))
        self.add_dock(self.training, "Training", area)
        for act in self.training.actions_run:
            self.run_menu.addAction(act)
        self.run_menu.addSeparator()
        menus.add_action(self, self.run_menu, "Show &Training Panel", self.show_training, "Ctrl+T")
        self.training.run_started.connect(self._run_started)
        self.training.run_finished.connect(
            lambda run_id, status: self.show_status(
                f"Run {self.training.run_name(run_id)} {status}"))

        def follow(event: str, _info: dict) -> None:
            if event == "reset":  # another project: its own runs, at once
                self.training.sync_project()
            if event in ("training", "reset"):
                self.training.training_changed()
            if event != "training":
                self.training.graph_changed()

        doc.changed.connect(follow)
        # a first save takes the unsaved project's runs along to <name>.runs/, at once
        doc.path_changed.connect(lambda _path: self.training.sync_project())

    def show_training(self) -> None:
        """Bring the dashboard forward, tall enough for its plots."""
        dock = self.docks["Training"]
        dock.show()
        dock.raise_()
        if not dock.isFloating() and dock.height() < self.height() * 0.4:
            self.resizeDocks([dock], [int(self.height() * 0.45)], Qt.Orientation.Vertical)

    def _run_started(self, run_id: str) -> None:
        self.show_training()
        self.show_status(f"Training run {self.training.run_name(run_id)} started")

    # -- title, status -------------------------------------------------------------------------
    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.document.title}[*] — Layerloom")
        self.setWindowModified(self.document.dirty)

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 10_000)

    def _analyzed(self, analysis) -> None:
        n_err, n_warn = len(analysis.errors), len(analysis.warnings)
        t = theme.current()
        if n_err:
            text = f"<span style='color:{t.error}'>● {n_err} error{'s' * (n_err != 1)}</span>"
        else:
            text = "● no errors"
        if n_warn:
            text += f"  <span style='color:{t.warning}'>{n_warn} warning(s)</span>"
        nodes = sum(len(n.nodes) for n in self.document.project.networks)
        text += f"  · {nodes} nodes" + self._totals_text()
        text += f" · analysed in {self.document.last_analysis_ms:.0f} ms"
        self.state_label.setText(text)
        from PySide6.QtGui import QTextDocumentFragment

        plain = QTextDocumentFragment.fromHtml(text).toPlainText()
        self.state_label.setMinimumWidth(self.state_label.fontMetrics().horizontalAdvance(plain)
                                         + 16)

    def _totals_text(self) -> str:
        """Parameters and FLOPs of the whole project, for the status bar (no Summary needed)."""
        from compiler.summary import human

        sums = self.document.summaries()
        if not sums:
            return " · counting parameters…" if self.document.figures_pending else ""
        params = sum(s.params for s in sums.values())
        flops = sum(s.flops for s in sums.values())
        return f" · <b>{params:,}</b> params ({human(params)}) · {human(flops)} FLOPs"

    def _figures_ready(self) -> None:
        if self.document.analysis is not None:
            self._analyzed(self.document.analysis)

    def _doc_changed(self, event: str, info: dict) -> None:
        if event in ("reset", "structure"):
            self._refresh_tabs()

    # -- networks, tabs, blocks ----------------------------------------------------------------
    def current_network(self) -> str:
        return self.scene.network

    def _refresh_tabs(self) -> None:
        names = self.document.names()
        root = self.path_stack[0] if self.path_stack else ""
        if root not in names and names:
            self.path_stack = [names[0]]
        if self.path_stack and not self._exists(self.path_stack[-1]):
            self.path_stack = self.path_stack[:1]
        self.tabs.blockSignals(True)
        while self.tabs.count():
            self.tabs.removeTab(0)
        for n in names:
            self.tabs.addTab(n)
        if self.path_stack and self.path_stack[0] in names:
            self.tabs.setCurrentIndex(names.index(self.path_stack[0]))
        self.tabs.blockSignals(False)
        self.tabs.setVisible(len(names) > 1)
        if self.path_stack and self.scene.network != self.path_stack[-1]:
            self.scene.set_network(self.path_stack[-1])
        self._crumbs()

    def _exists(self, name: str) -> bool:
        p = self.document.project
        return any(n.name == name for n in p.networks) or p.has_block(name)

    def _crumbs(self) -> None:
        self.back.setVisible(len(self.path_stack) > 1)
        parts = []
        for i, name in enumerate(self.path_stack):
            kind = "network" if i == 0 else "block"
            parts.append(f"<b>{name}</b>" if i == len(self.path_stack) - 1 else name)
            del kind
        self.crumbs.setText("  ›  ".join(parts) if len(self.path_stack) > 1 or
                            self.tabs.count() <= 1 else "")

    def _tab_changed(self, index: int) -> None:
        names = self.document.names()
        if 0 <= index < len(names):
            self.path_stack = [names[index]]
            self.scene.set_network(names[index])
            self._crumbs()
            self.inspector.show_node(self.scene.network, None)
            QTimer.singleShot(0, self.view.fit)

    def open_block(self, name: str) -> None:
        if not self.document.project.has_block(name):
            self.show_status(f"No block named '{name}'")
            return
        self.path_stack.append(name)
        self.scene.set_network(name)
        self._crumbs()
        self.inspector.show_node(name, None)
        self.view.fit()
        self.show_status(f"Inside block {name}: edits change every use of it. Backspace goes back.")

    def close_block(self) -> None:
        if len(self.path_stack) > 1:
            self.path_stack.pop()
            self.scene.set_network(self.path_stack[-1])
            self._crumbs()
            self.inspector.show_node(self.scene.network, None)
            self.view.fit()

    def show_node(self, network: str, node_id: str) -> None:
        """Select and centre a node (from the problems list), switching graphs if needed."""
        if network and network != self.scene.network and self._exists(network):
            names = self.document.names()
            if network in names:
                self.path_stack = [network]
                self.tabs.setCurrentIndex(names.index(network))
            else:
                self.path_stack = self.path_stack[:1] + [network]
            self.scene.set_network(network)
            self._crumbs()
        self.view.center_on_node(node_id)

    def _selection(self, ids: list[str]) -> None:
        self.inspector.show_node(self.scene.network, ids[0] if len(ids) == 1 else None)

    # -- editing helpers -----------------------------------------------------------------------
    def _quick_add(self, scene_pos: QPointF) -> None:
        self._quick_pos = scene_pos
        self.quick.popup(self.view.mapToGlobal(self.view.mapFromScene(scene_pos)))

    def _add_at_center(self, type_id: str) -> None:
        center = self.view.mapToScene(self.view.viewport().rect().center())
        self.scene.add_node(type_id, center)

    def copy(self) -> None:
        mime = self.scene.copy_selection()
        if mime is not None:
            self._clip = self.scene.copy_selection()
            QApplication.clipboard().setMimeData(mime)

    def cut(self) -> None:
        self.copy()
        self.scene.delete_selected()

    def paste(self) -> None:
        from .canvas import MIME_CLIP

        mime = QApplication.clipboard().mimeData()
        if mime is None or not mime.hasFormat(MIME_CLIP):
            mime = self._clip
        self.scene.paste(mime)

    def make_block(self) -> None:
        ids = self.scene.selected_ids()
        if not ids:
            self.show_status("Select the nodes to turn into a block first")
            return
        name = self.ask_text("Make block", "Block name:", "Block")
        if not name:
            return
        try:
            push(self.document, MakeBlockCommand(self.document, self.scene.network, ids, name))
        except GraphEditError as err:
            self.show_status(f"Refused: {err}")

    def expand_block(self) -> None:
        ids = [i for i in self.scene.selected_ids()
               if self.scene.nodes[i].node.type == "block.block"]
        if not ids:
            self.show_status("Select a block node to expand")
            return
        try:
            push(self.document, ExpandBlockCommand(self.document, self.scene.network, ids[0]))
        except GraphEditError as err:
            self.show_status(f"Refused: {err}")

    def auto_layout(self) -> None:
        net = self.scene.graph.net
        direction = str(self.document.project.ui.get("layout", "LR"))
        push(self.document, LayoutCommand(self.document, self.scene.network,
                                          layered_positions(net, direction)))
        self.view.fit()

    def set_theme(self, name: str) -> None:
        menus.set_theme(self, name)

    def show_shortcuts(self) -> None:
        menus.show_shortcuts(self)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._may_discard():
            event.ignore()
            return
        if self.training.running() and not self.ask(
                "Training is running", "Stop the run (a checkpoint is saved) and close?"):
            event.ignore()
            return
        self.training.shutdown()
        self.search_panel.shutdown()  # the running trial checkpoints; the study is kept
        self.save_settings()
        self.autosave_timer.stop()
        self.recovery_file.remove()
        event.accept()

    # -- default dialogs -----------------------------------------------------------------------
    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _ask_unsaved(self, text: str) -> str:
        if self.ask != self._ask:  # a script answered yes/no through ``ask``: keep honouring it
            return "discard" if self.ask("Unsaved changes", text) else "cancel"
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes", text,
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(
                    QMessageBox.StandardButton(answer), "cancel")

    def _inform(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    def _ask_text(self, title: str, label: str, default: str) -> str | None:
        text, ok = QInputDialog.getText(self, title, label, text=default)
        return text.strip() if ok and text.strip() else None

    def _choose_file(self, caption: str, filt: str, save: bool) -> str | None:
        if save:
            path, _ = QFileDialog.getSaveFileName(self, caption, "", filt)
        else:
            path, _ = QFileDialog.getOpenFileName(self, caption, "", filt)
        return path or None

    def _choose_dir(self, caption: str) -> str | None:
        return QFileDialog.getExistingDirectory(self, caption) or None


def first_template() -> str | None:
    infos = template_infos()
    names = [i.name for i in infos]
    if DEFAULT_TEMPLATE in names:
        return DEFAULT_TEMPLATE
    return names[0] if names else None
