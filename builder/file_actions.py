"""The window's file side: new, open, templates, save, export (project, code, image), recent
files, settings, autosave and recovery. A mixin of :class:`builder.main_window.MainWindow`, kept
apart so the window file holds the layout and the editing actions only."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, QSettings, QSize, QTimer
from PySide6.QtGui import QImage, QPainter

from compiler.codegen import CodegenError
from compiler.project import Project, ProjectLoadError

from . import recovery, theme
from .document import Document, SaveError, save_failure
from .gallery import Gallery, build_template
from .layout import layered_positions

MAX_RECENT = 8


def settings() -> QSettings:
    return QSettings()


def lay_out_all(project: Project) -> None:
    """Fresh layered positions for every network and block (template open, imported files)."""
    pos = project.ui.setdefault("positions", {})
    direction = str(project.ui.get("layout", "LR"))
    for net in list(project.networks) + list(project.blocks):
        pos[net.name] = layered_positions(net, direction)


class FileActions:
    """File, export and recovery actions; expects the MainWindow's document, scene and views."""

    def _replace(self, project: Project, path: Path | None = None) -> None:
        self.path_stack = [project.networks[0].name] if project.networks else ["net"]
        self.document.set_project(project, path)  # the scene rebuilds on "reset"
        self._refresh_tabs()
        self.inspector.show_node(self.scene.network, None)
        QTimer.singleShot(0, lambda: self.view.fit(readable=True))
        self.view.fit(readable=True)

    def _may_discard(self) -> bool:
        """Before the project is replaced or closed: Save, Discard or Cancel, as every desktop
        editor asks. True when the caller may go on (saved, or discarded on purpose)."""
        if not self.document.dirty and getattr(self, "pending_weights", None) is None:
            return True  # (weights loaded into an unsaved project are unsaved work too)
        answer = self.ask_unsaved(f"{self.document.title} has unsaved changes. Save them "
                                  "first?")
        if answer == "save":
            return self.save()  # a cancelled or failed save keeps the project open
        return answer == "discard"

    def new_project(self) -> None:
        if self._may_discard():
            self._replace(Document(None).project)

    def open_path(self, path: str | Path) -> bool:
        """Open a file; a file that fails to load is reported and changes nothing."""
        from compiler import load

        try:
            project = load(path)
            if not isinstance(project.ui.get("positions", {}), dict):
                project.ui["positions"] = {}  # layout is a convenience: lay it out afresh
            positions = project.ui.get("positions", {})
            if not all(n.name in positions for n in project.networks):
                lay_out_all(project)
        except Exception as err:  # a file is data: whatever is wrong with it, refuse and say why
            reason = str(err) if isinstance(err, ProjectLoadError) else \
                f"{path}: the file could not be read ({type(err).__name__}: {err})"
            self.inform("Cannot open the file", reason)
            self.show_status(f"Not opened: {reason}")
            return False
        self._replace(project, Path(path))
        self._add_recent(str(Path(path).resolve()))
        self.show_status(f"Opened {path}")
        return True

    def open_template(self, name: str) -> bool:
        try:
            project = build_template(name)
        except KeyError:
            self.inform("No such template", f"There is no template named '{name}'.")
            return False
        except Exception as err:  # a broken template must not close the app
            self.inform("Template failed", f"Template '{name}' could not be built: {err}")
            return False
        lay_out_all(project)
        self._replace(project, None)
        self.show_status(f"New project from template {name}")
        return True

    def open_dialog(self) -> None:
        if not self._may_discard():
            return
        path = self.choose_file("Open project", "Layerloom project (*.loom)", False)
        if path:
            self.open_path(path)

    def show_gallery(self) -> None:
        if not self._may_discard():
            return
        dlg = Gallery(self)
        if dlg.exec() and dlg.selected_name():
            self.open_template(dlg.selected_name())

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self) -> bool:
        path = self.choose_file("Save project", "Layerloom project (*.loom)", True)
        return bool(path) and self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        try:
            saved = self.document.save(path)
        except SaveError as err:  # nothing changed: the edits, history and unsaved mark stay
            self.inform("Cannot save", f"{err}\n\nYour changes are still open and unsaved.")
            self.show_status(f"Not saved: {err}")
            return False
        self.recovery_file.remove()
        self._add_recent(str(saved.resolve()))
        self.show_status(f"Saved {saved}")
        return True

    def export_project(self) -> bool:
        path = self.choose_file("Export project file", "Layerloom project (*.loom)", True)
        if not path:
            return False
        from compiler.project import save

        target = Path(path).with_suffix(".loom")
        try:
            save(self.document.project, target)
        except Exception as err:  # disk, permissions or an unwritable value: say which
            self.inform("Cannot export", str(save_failure(err, target, self.document.project)))
            return False
        self.show_status(f"Exported {path}")
        return True

    def export_code(self, folder: str | None = None) -> list[Path]:
        """model.py (and train.py when the training package is there) into a folder."""
        folder = folder or self.choose_dir("Export PyTorch code to folder")
        if not folder:
            return []
        from compiler.export import export_model

        analysis = self.document.analyze_now()
        if not analysis.ok:
            self.inform("Cannot export", "Fix these errors first:\n"
                        + "\n".join(str(d) for d in analysis.errors[:10]))
            return []
        project, code = self.document.project, self.document.code()
        try:
            try:
                from training.export import export_project
            except ImportError:  # training export not installed: model.py only
                written = [export_model(code or project, folder)]
            else:  # the one export service (the CLI's too): model.py, train.py, README, sbatch
                from training.export import TrainExportError

                try:
                    written = export_project(project, folder, source=code or None)
                except TrainExportError as err:  # model.py is written; say what failed
                    self.inform("train.py not written", str(err))
                    written = err.written
        except (CodegenError, OSError) as err:
            self.inform("Cannot export", str(err))
            return []
        except Exception as err:  # e.g. text the file system cannot encode; never a crash
            self.inform("Cannot export", f"nothing was written: {type(err).__name__}: {err}")
            return []
        self.show_status("Exported " + ", ".join(str(p) for p in written))
        return written

    def export_image(self, kind: str, path: str | None = None) -> Path | None:
        path = path or self.choose_file(f"Export graph image ({kind.upper()})",
                                        f"{kind.upper()} image (*.{kind})", True)
        if not path:
            return None
        out = Path(path).with_suffix(f".{kind}")
        rect = self.scene.itemsBoundingRect().adjusted(-30, -30, 30, 30)
        selected = self.scene.selectedItems()
        self.scene.clearSelection()
        try:
            if kind == "svg":
                from PySide6.QtSvg import QSvgGenerator

                gen = QSvgGenerator()
                gen.setFileName(str(out))
                gen.setSize(rect.size().toSize())
                gen.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
                gen.setTitle(self.document.project.name)
                painter = QPainter(gen)
                painter.fillRect(QRectF(0, 0, rect.width(), rect.height()),
                                 self.scene.backgroundBrush())
                self.scene.render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
                painter.end()
            else:
                scale = 2.0 if rect.width() * rect.height() < 4e7 else 1.0
                img = QImage((rect.size() * scale).toSize(), QImage.Format.Format_ARGB32)
                img.fill(theme.current().canvas)
                painter = QPainter(img)
                painter.setRenderHint(QPainter.RenderHint.Antialiasing)
                painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
                self.scene.render(painter, QRectF(0, 0, img.width(), img.height()), rect)
                painter.end()
                if not img.save(str(out)):
                    raise OSError(f"could not write {out}")
        except (OSError, ValueError, RuntimeError) as err:
            self.inform("Cannot export image", str(err))
            return None
        finally:
            for item in selected:
                item.setSelected(True)
        self.show_status(f"Exported {out}")
        return out

    # -- recent files, settings ----------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = settings().value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [v for v in (value or []) if isinstance(v, str)]

    def _add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.recent_files() if p != path]
        settings().setValue("recent", items[:MAX_RECENT])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        for i, p in enumerate(self.recent_files()):
            act = self.recent_menu.addAction(f"&{i + 1} {Path(p).name}")
            act.setToolTip(p)
            act.triggered.connect(lambda _c=False, path=p: self._may_discard()
                                  and self.open_path(path))
        self.recent_menu.setEnabled(bool(self.recent_files()))

    def _restore_settings(self) -> None:
        s = settings()
        geo = s.value("geometry")
        if isinstance(geo, QByteArray):
            self.restoreGeometry(geo)
        else:
            self.resize(QSize(1400, 880))
        state = s.value("state")
        self._restored_state = isinstance(state, QByteArray) and self.restoreState(state)
        self._rebuild_recent()

    def save_settings(self) -> None:
        s = settings()
        s.setValue("geometry", self.saveGeometry())
        s.setValue("state", self.saveState())
        s.sync()

    # -- autosave and recovery -----------------------------------------------------------------
    def autosave(self) -> Path | None:
        if not self.document.dirty and getattr(self, "pending_weights", None) is None:
            self.recovery_file.remove()  # back at the saved state (undo): nothing to recover
            return None
        try:
            written = self.recovery_file.write(self.document.project,
                                               str(self.document.path or ""))
        except SaveError as err:
            self.show_status(f"Autosave failed: {err}")
            if not getattr(self, "_autosave_warned", False):  # once per run of failures
                self._autosave_warned = True
                self.inform("Autosave failed", f"{err}\n\nYour changes are still open here, "
                            "but a crash now would lose them.")
            return None
        self._autosave_warned = False
        return written

    def offer_recovery(self) -> bool:
        """After a crash: offer the newest recovery file left behind; True if one was opened."""
        left = recovery.pending(exclude=self.recovery_file.path)
        if not left:
            return False
        r = left[0]
        where = r.original or "an unsaved project"
        if not self.ask("Recover unsaved work?",
                        f"Layerloom did not close cleanly. Recover the unsaved changes to {where} "
                        f"('{r.title}')?"):
            for item in left:
                item.discard()
            return False
        try:
            project = r.load()
        except (ProjectLoadError, OSError, ValueError) as err:
            self.inform("Recovery failed", f"The recovery file could not be read: {err}")
            r.discard()
            return False
        self._replace(project, Path(r.original) if r.original else None)
        from .weights_actions import adopt_recovered

        adopt_recovered(self, r.file)  # weights it had loaded while unsaved
        # The recovered state differs from the file on disk: mark it unsaved.
        self.document.undo_stack.resetClean()
        self._update_title()
        for item in left:
            item.discard()
        self.autosave()
        return True

