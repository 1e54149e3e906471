"""The Training panel's two imported-model switches: trusting the user's code that opaque nodes
import (asked once per file, naming it, before anything runs), and starting from the weights
the project holds (its weights folder: an import's or File ▸ Load Weights…'s); when an edit
changed some shapes since, the user is told which tensors start fresh and asked first."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from compiler.project import Project
from compiler.project_weights import WeightsFit, fit_of, stored_state, stored_weights, weights_dir
from compiler.usercode import code_sources


def confirm_user_code(parent: QWidget, project: Project, trusted: set[str]) -> bool:
    """True when every file the project imports is trusted (asking for the ones not yet)."""
    missing = [s for s in code_sources(project) if s not in trusted]
    if not missing:
        return True
    listed = "\n".join(f"  {s}" for s in missing)
    answer = QMessageBox.question(
        parent, "Run your own code?",
        "This project has opaque nodes that import your own code from:\n\n" + listed + "\n\n"
        "Training builds the model, which runs that code (the file's top-level statements and "
        "the classes' constructors and forward). Only allow it for files you trust.\n\n"
        "Allow it for this session?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No)
    if answer != QMessageBox.StandardButton.Yes:
        return False
    trusted.update(missing)
    return True


def imported_weights(project_path: Path | None, pending: Path | None = None) -> Path | None:
    """The project's weights folder when it holds weights, whichever way they came (an import,
    File ▸ Load Weights…; an older import's one file counts too), else None. ``pending``: an
    unsaved project's loaded weights, waiting for its first save."""
    if project_path is None:
        return pending if pending is not None and stored_weights(pending) else None
    return weights_dir(project_path) if stored_weights(project_path) else None


def weights_fits(project: Project, folder: Path, trusted: set[str]) -> list[WeightsFit]:
    """How the weights in ``folder`` fit each network they are stored for, as the project is
    now (made on the meta device: shapes only, no memory, no time)."""
    import torch

    from compiler.build import build

    stored = stored_weights(folder)
    built = build(project, trust=tuple(trusted))
    fits = []
    for name in built.networks:
        if name not in stored and list(stored) != [""]:
            continue  # the run starts this one from random weights, as it always did
        with torch.device("meta"):
            own = built.instantiate(name).state_dict()
        fits.append(fit_of(own, name, stored_state(name, folder)))
    return fits


def confirm_weights_fit(parent: QWidget, project: Project, folder: Path | None,
                        trusted: set[str]) -> bool | None:
    """Before a run that starts from the project's weights: False when they fit every network
    (a strict load), True when the user agreed to load only what fits (an edit changed some
    shapes: a widened stage), None when they said no (nothing starts)."""
    if folder is None:
        return False
    try:
        fits = [f for f in weights_fits(project, folder, trusted) if not f.complete]
    except Exception:  # noqa: BLE001 - unreadable weights: the run's own load says why
        return False
    if not fits:
        return False
    listed = "\n\n".join(f.text(limit=6) for f in fits)
    answer = QMessageBox.question(
        parent, "Start from the weights that still fit?",
        "The project's weights were saved for other shapes than some layers have now (an "
        f"edit changed them):\n\n{listed}\n\nStart with the tensors that fit and fresh "
        "values for the others? (No: nothing starts; untick “Start from the project's "
        "weights” to train from scratch.)",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes)
    return True if answer == QMessageBox.StandardButton.Yes else None


def runner_args(project: Project, trusted: set[str], init_weights: Path | None,
                partial: bool = False) -> list[str]:
    """Extra ``training.runner`` arguments: the trusted files and the starting weights
    (``partial``: only the tensors that fit, which the user agreed to)."""
    args: list[str] = []
    for source in code_sources(project):
        if source in trusted:
            args += ["--trust-code", source]
    if init_weights is not None:
        args += ["--init-weights", str(init_weights)]
        if partial:
            args.append("--partial-weights")
    return args
