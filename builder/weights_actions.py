"""File ▸ Load Weights… and File ▸ Export ▸ ONNX…: weights in, ONNX out, from the window
(the export itself runs in a child process, :mod:`builder.onnx_action`).

Both work on the networks the generated code makes (``compiler.build``), so the weights loaded
are those of the very modules that train and export. Loading matches by name, then by order and
shape (``compiler.weights``), shows the report, and asks before a partial load; the accepted
state_dicts are kept for the session (the ONNX export uses them) and, for a saved project, written
into its weights folder, ``<project>.weights/<network>.safetensors`` (``compiler.project_weights``,
where an import's weights go too), which the Training panel then offers to start from. The ONNX
item is greyed out, with the install hint as its tip, when onnx, onnxscript or onnxruntime is
missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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


def load_weights(w: MainWindow, path: str | None = None) -> dict[str, WeightsReport]:
    """Load a weights file into the project's networks; the report per network loaded (empty
    when nothing was loaded: refused, cancelled, or a file that is no weights)."""
    from compiler.build import build
    from compiler.keymaps import adapt
    from compiler.weights import (
        WeightsError,
        load_into,
        match,
        migrate_legacy,
        pick_state_dict,
        read_weights,
        save_project_weights,
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
        state = adapt(model.state_dict(), state)  # a known published layout, as our keys
        plans.append((name, model, state, match(name, model.state_dict(), state)))
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
    for name, model, state, _ in plans:
        reports[name] = load_into(model, name, state, allow_partial=bool(partial))
        w.loaded_weights[name] = model.state_dict()
    where = ""
    if w.document.path is not None:
        try:
            migrate_legacy(w.document.path)  # an older import's file: its networks stay
            folder = save_project_weights(w.document.path,
                                          {name: w.loaded_weights[name] for name in reports},
                                          {"source": Path(path).name})
            where = f"\n\nSaved as {folder}/<network>.safetensors."
        except (OSError, WeightsError) as err:
            where = f"\n\nNot saved beside the project ({getattr(err, 'strerror', None) or err})."
        _offer_in_training(w)
    w.inform("Weights loaded", "\n".join(line for r in reports.values() for line in r.lines())
             + where)
    w.show_status(f"Loaded weights from {Path(path).name} into {', '.join(reports)}")
    return reports


def _offer_in_training(w: MainWindow) -> None:
    """The Training panel offers "start from the project's weights" now that it has some."""
    panel = getattr(w, "training", None)
    form = getattr(panel, "form", None)
    if form is None or w.document.path is None:
        return
    from builder.dashboard.imported import imported_weights

    form.set_imported_weights(imported_weights(Path(w.document.path)))


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
    weights = {k: v for k, v in getattr(w, "loaded_weights", {}).items()
               if k in analysis.networks}
    try:
        return start_export(w, folder, w.document.project, weights or None)
    except (OSError, ValueError, TypeError) as err:  # the snapshot could not be written
        w.inform("ONNX not exported", f"cannot prepare the export: {err}")
        return None


__all__ = ["add_weights_actions", "export_onnx", "load_weights"]
