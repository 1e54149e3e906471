"""The Training panel's two imported-model switches: trusting the user's code that opaque nodes
import (asked once per file, naming it, before anything runs), and starting from the weights
the project holds (its weights folder: an import's or File ▸ Load Weights…'s)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from compiler.project import Project
from compiler.project_weights import stored_weights, weights_dir
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


def imported_weights(project_path: Path | None) -> Path | None:
    """The project's weights folder when it holds weights, whichever way they came (an import,
    File ▸ Load Weights…; an older import's one file counts too), else None."""
    if project_path is None:
        return None
    return weights_dir(project_path) if stored_weights(project_path) else None


def runner_args(project: Project, trusted: set[str], init_weights: Path | None) -> list[str]:
    """Extra ``training.runner`` arguments: the trusted files and the starting weights."""
    args: list[str] = []
    for source in code_sources(project):
        if source in trusted:
            args += ["--trust-code", source]
    if init_weights is not None:
        args += ["--init-weights", str(init_weights)]
    return args
