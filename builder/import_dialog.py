"""File ▸ Import ▸ PyTorch module…: an existing model (a class or factory in the user's .py file,
or an installed package's) as an editable project with its weights.

The dialog says plainly that importing runs the user's own code. The import itself is
``compiler.importing.import_model`` (the same path as ``layerloom import``); the project and
its weights are written side by side and opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

WARNING = ("Importing runs your own code: Layerloom loads the file you name (its top-level "
           "statements run) and builds and runs the model once to trace it and to check the "
           "imported graph against it. Only import code you trust. The project file written "
           "afterwards holds no code; parts kept as your code (opaque nodes) import the file "
           "again only after you allow it.")


class ImportDialog(QDialog):
    """Source, example inputs, and where the project goes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import PyTorch module")
        warn = QLabel(WARNING)
        warn.setWordWrap(True)
        warn.setObjectName("importWarning")
        self.file = QLineEdit()
        self.file.setPlaceholderText("path/to/model.py or package.module")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_source)
        self.name = QLineEdit()
        self.name.setPlaceholderText("class or factory function, e.g. ResNet")
        self.inputs = QLineEdit()
        self.inputs.setPlaceholderText("empty: what the first layer implies; e.g. N,3,224,224; "
                                       "two inputs: N,T; N,S")
        self.dtype = QComboBox()
        self.dtype.addItems(["float", "long"])
        self.dtype.setToolTip("long for token ids (embeddings)")
        self.leaves = QLineEdit()
        self.leaves.setPlaceholderText("optional: classes to keep as your code, comma-separated")
        self.out = QLineEdit()
        pick = QPushButton("Choose…")
        pick.clicked.connect(self._choose_out)
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.file, 1)
        row.addWidget(browse)
        form.addRow("File or module", row)
        form.addRow("Class", self.name)
        form.addRow("Example inputs", self.inputs)
        form.addRow("Input dtype", self.dtype)
        form.addRow("Keep as code", self.leaves)
        row = QHBoxLayout()
        row.addWidget(self.out, 1)
        row.addWidget(pick)
        form.addRow("Save project as", row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok = buttons.addButton("Import (runs the code)",
                                    QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(warn)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def _choose_source(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Python file", "", "Python (*.py)")
        if path:
            self.file.setText(path)
            if not self.out.text():
                self.out.setText(str(Path(path).with_suffix(".loom")))

    def _choose_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save project as", self.out.text(),
                                              "Layerloom project (*.loom)")
        if path:
            self.out.setText(path)

    def source(self) -> str:
        return f"{self.file.text().strip()}:{self.name.text().strip()}"

    def options(self) -> dict[str, Any]:
        shapes = [s.strip() for s in self.inputs.text().split(";") if s.strip()]
        leaves = [s.strip() for s in self.leaves.text().split(",") if s.strip()]
        return {"inputs": shapes or None, "dtypes": [self.dtype.currentText()],
                "leaves": leaves}

    def out_path(self) -> Path:
        p = Path(self.out.text().strip() or "imported.loom")
        return p if p.suffix == ".loom" else p.with_suffix(".loom")


def run_import(parent: QWidget, dialog: ImportDialog) -> Path | None:
    """Import what the dialog names; the saved project's path, or None (a message was shown)."""
    from compiler.importing import ImportFailure, import_model

    QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
    try:
        result = import_model(dialog.source(), name=dialog.out_path().stem, **dialog.options())
        path, _weights = result.save(dialog.out_path())
    except ImportFailure as err:
        QGuiApplication.restoreOverrideCursor()
        QMessageBox.warning(parent, "Import failed", str(err))
        return None
    except OSError as err:
        QGuiApplication.restoreOverrideCursor()
        QMessageBox.warning(parent, "Import failed", f"cannot write the project: {err}")
        return None
    QGuiApplication.restoreOverrideCursor()
    QMessageBox.information(parent, "Imported", result.report.text())
    return path


def add_import_actions(w: Any, menu: Any) -> None:
    """File ▸ Import ▸ PyTorch module…"""

    def go() -> None:
        dialog = ImportDialog(w)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            path = run_import(w, dialog)
            if path is not None:
                w.open_path(path)

    act = QAction("&PyTorch module…", w)
    act.setStatusTip("open an existing PyTorch model as a graph (runs your code)")
    act.triggered.connect(lambda _checked=False: go())
    menu.addAction(act)
    w.import_module_action = act
