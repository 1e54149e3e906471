"""File ▸ Load Weights… and File ▸ Export ▸ ONNX…: weights in, ONNX out, from the window
(the export itself runs in a child process, :mod:`builder.onnx_action`).

Both work on the networks the generated code makes (``compiler.build``), so the weights loaded
are those of the very modules that train and export. Loading translates a published layout by
its key map (``compiler.keymaps``; the report names the map), matches by name, then by order and
shape (``compiler.weights``), shows the report, and asks before a partial load; the accepted
state_dicts are kept for the session (the ONNX export uses them) and written at once: for a
saved project into its weights folder, ``<project>.weights/<network>.safetensors``
(``compiler.project_weights``, where an import's weights go too), for an unsaved one into a
folder beside the window's recovery file, which its first save copies into
``<project>.weights/`` (Save As copies a saved project's weights along too). Either way the
Training panel offers to start from them, an unsaved project counts as unsaved work while it
holds such weights, and crash recovery takes them back. The ONNX item is greyed out, with the
install hint as its tip, when onnx, onnxscript or onnxruntime is missing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMenu

if TYPE_CHECKING:
    from builder.onnx_action import OnnxExportJob
    from compiler.weights import WeightsReport

#: The main window (its document, dialogs and menus); not imported, so no cycle with main_window.
MainWindow = QMainWindow

WEIGHTS_FILTER = "Weights (*.safetensors *.pt *.pth *.bin *.ckpt);;All files (*)"


def add_weights_actions(w: MainWindow, file_menu: QMenu, export_menu: QMenu) -> None:
    """Adds the two actions; File ▸ Load Weights… goes right after the Import submenu."""
    from compiler.onnx_export import INSTALL_HINT, missing_packages

    w.loaded_weights = {}
    w.pending_weights = None  # an unsaved project's loaded weights, on disk until it is saved
    w.weights_owner = _Owner(w.document.project, w.document.path)
    w.document.path_changed.connect(lambda _path: follow_project(w))
    load = QAction("Load &Weights…", w)
    load.setStatusTip("load a state_dict file (torchvision, Hugging Face, a Layerloom export) "
                      "into the networks, matching by name, then by order and shape")
    load.triggered.connect(lambda _checked=False: load_weights(w))
    anchor = _action_after(file_menu, getattr(w, "import_menu", None))
    if anchor is not None:
        file_menu.insertAction(anchor, load)
    else:
        file_menu.addAction(load)
    w.load_weights_action = load

    onnx = QAction("&ONNX (model.onnx)…", w)
    missing = missing_packages()
    if missing:
        onnx.setEnabled(False)
        onnx.setText(f"ONNX (needs {', '.join(missing)})…")
        tip = f"ONNX export needs {', '.join(missing)}: {INSTALL_HINT}"
    else:
        tip = ("write model.onnx per network (dynamic batch and sequence dims), checked in "
               "onnxruntime against torch")
    onnx.setStatusTip(tip)
    onnx.setToolTip(tip)
    export_menu.setToolTipsVisible(True)
    onnx.triggered.connect(lambda _checked=False: export_onnx(w))
    export_menu.addAction(onnx)
    w.export_onnx_action = onnx


def _action_after(menu: QMenu, submenu: QMenu | None) -> QAction | None:
    actions = menu.actions()
    if submenu is None:
        return None
    for i, act in enumerate(actions):
        if act is submenu.menuAction() and i + 1 < len(actions):
            return actions[i + 1]
    return None


@dataclass
class _Owner:
    """The project (object) and path the window's loaded weights belong to."""

    project: Any
    path: Path | None


def pending_dir(w: MainWindow) -> Path:
    """Where an unsaved project's loaded weights wait for its first save: beside the window's
    recovery file (``<recovery>.weights/``), so a crash leaves them where recovery looks."""
    from compiler.project_weights import weights_dir

    return weights_dir(w.recovery_file.path)


def follow_project(w: MainWindow) -> None:
    """The document's path changed. Another project: the loaded weights were the old one's
    (its unsaved ones were discarded on purpose: the window asked). The first save of an
    unsaved one: its waiting weights go into ``<project>.weights/``. Save As: the old
    folder's weights are copied beside the new file. Nothing is lost on the way."""
    from compiler.project_weights import ProjectWeightsError, copy_project_weights

    owner, doc = w.weights_owner, w.document
    if doc.project is not owner.project:
        w.loaded_weights = {}
        _drop_pending(w)
        owner.project, owner.path = doc.project, doc.path
        return
    if doc.path is None or doc.path == owner.path:
        return
    source = w.pending_weights or owner.path
    try:
        copied = copy_project_weights(source, doc.path) if source is not None else []
    except (OSError, ProjectWeightsError) as err:  # the project is saved; say what is not
        w.inform("Weights not saved", f"The project was saved, but its weights could not be "
                 f"written beside it ({getattr(err, 'strerror', None) or err}). They are still "
                 f"in {source}; save again to retry.")
        return
    owner.path = doc.path
    if w.pending_weights is not None:
        _drop_pending(w)
    if copied:
        w.show_status(f"Weights of {', '.join(copied)} saved beside {doc.path.name}")
    _offer_in_training(w)


def _drop_pending(w: MainWindow) -> None:
    folder, w.pending_weights = w.pending_weights, None
    panel = getattr(w, "training", None)
    if panel is not None:
        panel.pending_weights = None
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def adopt_recovered(w: MainWindow, recovery_file: Path) -> None:
    """After crash recovery of an unsaved project: the weights it had loaded (beside the
    recovery file) wait in this window's folder for its first save again."""
    from compiler.project_weights import stored_weights, weights_dir

    left = weights_dir(recovery_file)
    w.weights_owner.project, w.weights_owner.path = w.document.project, w.document.path
    if w.document.path is not None or not stored_weights(left):
        shutil.rmtree(left, ignore_errors=True)
        return
    target = pending_dir(w)
    shutil.rmtree(target, ignore_errors=True)
    shutil.move(str(left), str(target))
    w.pending_weights = target
    _offer_in_training(w)


def load_weights(w: MainWindow, path: str | None = None) -> dict[str, WeightsReport]:
    """Load a weights file into the project's networks; the report per network loaded (empty
    when nothing was loaded: refused, cancelled, or a file that is no weights)."""
    from compiler.build import build
    from compiler.weights import (
        WeightsError,
        load_into,
        match,
        migrate_legacy,
        pick_state_dict,
        read_weights,
        save_project_weights,
        translate,
    )

    path = path or w.choose_file("Load weights", WEIGHTS_FILTER, False)
    if not path:
        return {}
    source = w.document.code()
    if source is None:
        w.inform("Cannot load weights", "Fix the project's errors first: the weights go into "
                 "the networks its code builds.\n" + (w.document.source_error or ""))
        return {}
    try:
        found = read_weights(path)
    except WeightsError as err:
        w.inform("Weights not loaded", f"{err.message}\n\n{err.hint}")
        return {}
    built = build(source)
    names = list(built.networks)
    plans = []
    for name in names:
        state = pick_state_dict(name, names, found)
        if state is None:
            continue
        model = built.instantiate(name)
        state, keymap = translate(model.state_dict(), state)  # a published layout, our keys
        report = match(name, model.state_dict(), state)
        report.keymap = keymap
        plans.append((name, model, state, report))
    if not plans:
        w.inform("Weights not loaded", f"{path} holds state_dicts for "
                 f"{', '.join(repr(k) for k in found)}, none of which is a network of this "
                 f"project ({', '.join(names)}).")
        return {}
    text = "\n".join(line for *_, report in plans for line in report.lines())
    partial = [report.network for *_, report in plans if not report.complete]
    if partial and not w.ask("Load only what matches?",
                             f"{text}\n\nShapes disagree or tensors have no match in "
                             f"{', '.join(partial)}. Load only the tensors that match (the "
                             "others keep their initial values)?"):
        w.inform("Weights not loaded", text + "\n\nNothing was loaded.")
        return {}
    reports: dict[str, WeightsReport] = {}
    for name, model, state, planned in plans:
        reports[name] = load_into(model, name, state, allow_partial=bool(partial))
        reports[name].keymap = planned.keymap
        w.loaded_weights[name] = model.state_dict()
    w.weights_owner.project, w.weights_owner.path = w.document.project, w.document.path
    states = {name: w.loaded_weights[name] for name in reports}
    try:
        if w.document.path is not None:
            migrate_legacy(w.document.path)  # an older import's file: its networks stay
            folder = save_project_weights(w.document.path, states, {"source": Path(path).name})
            where = f"\n\nSaved as {folder}/<network>.safetensors."
        else:
            folder = save_project_weights(w.recovery_file.path, states,  # = pending_dir(w)
                                          {"source": Path(path).name})
            w.pending_weights = folder
            where = ("\n\nThe project is not saved yet: its first save writes these weights "
                     "into <project>.weights/ beside it; until then they are kept with the "
                     "window's recovery file, and training can start from them.")
    except (OSError, WeightsError) as err:
        where = (f"\n\nNot written to disk ({getattr(err, 'strerror', None) or err}): they "
                 "are in this window only; save the project and load them again.")
    _offer_in_training(w)
    w.inform("Weights loaded", "\n".join(line for r in reports.values() for line in r.lines())
             + where)
    w.show_status(f"Loaded weights from {Path(path).name} into {', '.join(reports)}")
    return reports


def _offer_in_training(w: MainWindow) -> None:
    """The Training panel offers "start from the project's weights" now that it has some
    (an unsaved project's: the folder they wait in)."""
    panel = getattr(w, "training", None)
    form = getattr(panel, "form", None)
    if form is None:
        return
    from builder.dashboard.imported import imported_weights

    panel.pending_weights = w.pending_weights
    form.set_imported_weights(imported_weights(w.document.path, w.pending_weights))


def _weights_for_export(w: MainWindow, networks: list[str]) -> dict[str, Any]:
    """The weights an ONNX export carries, per network: those loaded in this session, else the
    project's own (an import's), where they still fit the network. A network whose weights an
    edit has outgrown (a widened stage) is exported with its initial weights, and the status
    bar says so (a trained run's weights are the run list's to export)."""
    from compiler.project_weights import ProjectWeightsError, fit_of, read_project_weights

    found = {k: v for k, v in getattr(w, "loaded_weights", {}).items() if k in networks}
    location = w.document.path or w.pending_weights
    if location is not None and any(n not in found for n in networks):
        try:
            stored = read_project_weights(location)
        except (OSError, ProjectWeightsError):
            stored = {}  # none, or unreadable: those networks start from initial weights
        found.update({n: stored[n] for n in networks if n not in found and n in stored})
    if not found:
        return {}
    try:
        import torch

        from compiler.build import build

        built = build(w.document.code())  # refused for untrusted user code: no check then
        with torch.device("meta"):  # shapes only
            own = {n: built.instantiate(n).state_dict() for n in found}
    except Exception:  # noqa: BLE001 - the child's strict load then says what is wrong
        return found
    stale = [n for n, state in found.items() if not fit_of(own[n], n, state).complete]
    if stale:
        w.show_status(f"ONNX: the weights no longer fit {', '.join(stale)} (the graph "
                      "changed); exported with initial weights")
    return {n: state for n, state in found.items() if n not in stale}


def export_onnx(w: MainWindow, folder: str | None = None) -> OnnxExportJob | None:
    """Start writing and checking model.onnx per network (with the loaded weights, if any) in
    a child process (:mod:`builder.onnx_action`); the job, or None when nothing started. The
    window stays live; the status bar shows progress and a dialog the result."""
    from builder.onnx_action import start_export

    running = getattr(w, "onnx_job", None)
    if running is not None and running.running():
        w.inform("ONNX export running", "An ONNX export is still running; wait for its result.")
        return None
    folder = folder or w.choose_dir("Export ONNX to folder")
    if not folder:
        return None
    analysis = w.document.analyze_now()
    if not analysis.ok:
        w.inform("Cannot export", "Fix these errors first:\n"
                 + "\n".join(str(d) for d in analysis.errors[:10]))
        return None
    weights = _weights_for_export(w, list(analysis.networks))
    try:
        return start_export(w, folder, w.document.project, weights or None)
    except (OSError, ValueError, TypeError) as err:  # the snapshot could not be written
        w.inform("ONNX not exported", f"cannot prepare the export: {err}")
        return None


__all__ = ["add_weights_actions", "adopt_recovered", "export_onnx", "follow_project",
           "load_weights", "pending_dir"]
