"""File ▸ Load Weights… and File ▸ Export ▸ ONNX…: weights in, ONNX out, from the window.

Both work on the networks the generated code makes (``compiler.build``), so the weights loaded
are those of the very modules that train and export. Loading matches by name, then by order and
shape (``compiler.weights``), shows the report, and asks before a partial load; the accepted
state_dicts are kept for the session (the ONNX export uses them) and, for a saved project, written
beside it as ``<project>.weights/<network>.safetensors``. The ONNX item is greyed out, with the
install hint as its tip, when onnx, onnxscript or onnxruntime is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu

if TYPE_CHECKING:
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


class _Busy:
    """A wait cursor while a slow action (an ONNX export: seconds) runs in the window."""

    def __enter__(self) -> None:
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)

    def __exit__(self, *exc: object) -> None:
        QApplication.restoreOverrideCursor()


def load_weights(w: MainWindow, path: str | None = None) -> dict[str, WeightsReport]:
    """Load a weights file into the project's networks; the report per network loaded (empty
    when nothing was loaded: refused, cancelled, or a file that is no weights)."""
    from compiler.build import build
    from compiler.weights import (
        WeightsError,
        load_into,
        match,
        pick_state_dict,
        read_weights,
        save_weights,
        weights_dir,
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
        folder = weights_dir(w.document.path)
        try:
            for name in reports:
                save_weights(w.loaded_weights[name], folder / f"{name}.safetensors")
            where = f"\n\nSaved as {folder}/<network>.safetensors."
        except OSError as err:
            where = f"\n\nNot saved beside the project ({err.strerror or err})."
    w.inform("Weights loaded", "\n".join(line for r in reports.values() for line in r.lines())
             + where)
    w.show_status(f"Loaded weights from {Path(path).name} into {', '.join(reports)}")
    return reports


def export_onnx(w: MainWindow, folder: str | None = None) -> list[Path]:
    """Write and check model.onnx per network (with the loaded weights, if any)."""
    from compiler.onnx_export import OnnxExportError, OnnxUnavailable
    from compiler.onnx_export import export_onnx as export

    folder = folder or w.choose_dir("Export ONNX to folder")
    if not folder:
        return []
    analysis = w.document.analyze_now()
    if not analysis.ok:
        w.inform("Cannot export", "Fix these errors first:\n"
                 + "\n".join(str(d) for d in analysis.errors[:10]))
        return []
    weights = {k: v for k, v in getattr(w, "loaded_weights", {}).items()
               if k in analysis.networks}
    w.show_status("Exporting ONNX (tracing and checking in onnxruntime)…")
    try:
        with _Busy():
            results = export(analysis, folder, weights=weights or None)
    except (OnnxExportError, OnnxUnavailable) as err:
        w.inform("ONNX not exported", str(err))
        return []
    except OSError as err:
        w.inform("ONNX not exported", f"cannot write to {folder}: {err.strerror or err}")
        return []
    lines = [r.line() + "".join(f"\n  note: {n}" for n in r.notes) for r in results]
    w.inform("ONNX exported", "\n".join(lines))
    w.show_status("Exported " + ", ".join(str(r.path) for r in results))
    return [r.path for r in results]


__all__ = ["add_weights_actions", "export_onnx", "load_weights"]
