"""The train form: recipe, dataset and hyperparameters, generated from the pydantic models.

Fields come from ``training.config.Hyper`` so a new setting there appears here without UI work;
only values the user changed from the recipe default are written to the project, which keeps
project files small and lets better defaults reach old projects.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from compiler import Project
from compiler.project import TrainingModel
from training import recipes
from training.config import Hyper
from training.data import BUILTIN, FILES

# shown in the top row, not in the generated section
_TOP = {"steps", "epochs", "device"}
FILE_FILTERS = {"csv": "CSV (*.csv)", "npz": "NumPy archive (*.npz)", "npy": "NumPy array (*.npy)",
                "text": "Text (*.txt *.md *.py *)", "graph-csv": "Nodes CSV (*.csv)"}


class TrainForm(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.recipe = QComboBox()
        self.recipe.addItems(recipes.NAMES)
        self.dataset = QComboBox()
        for name in sorted(BUILTIN):
            self.dataset.addItem(name, name)
        self.dataset.insertSeparator(self.dataset.count())
        for name in FILES:
            self.dataset.addItem(f"your file: {name}", name)
        self.path = QLineEdit()
        self.path.setPlaceholderText("your data file or folder")
        self.browse = QPushButton("Choose…")
        self.browse.clicked.connect(self.choose_file)
        self.budget = QComboBox()
        self.budget.addItems(["epochs", "steps"])
        self.amount = QSpinBox()
        self.amount.setRange(0, 10_000_000)
        self.amount.setSpecialValueText("default")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.device.setToolTip("auto: a CUDA GPU if there is one, else Apple MPS, else the CPU")

        top = QFormLayout()
        top.addRow("Recipe", self.recipe)
        data_row = QHBoxLayout()
        data_row.addWidget(self.dataset, 1)
        data_row.addWidget(self.path, 2)
        data_row.addWidget(self.browse)
        top.addRow("Dataset", data_row)
        run_row = QHBoxLayout()
        run_row.addWidget(self.amount)
        run_row.addWidget(self.budget)
        run_row.addSpacing(16)
        run_row.addWidget(self.device)
        run_row.addStretch(1)
        top.addRow("Train for", run_row)
        self.init_weights = QCheckBox("Start from the project's weights")
        self.init_weights.setToolTip("train from the weights saved beside the project (an "
                                     "import's, or File ▸ Load Weights…'s); else from random "
                                     "weights")
        self.init_weights.hide()
        self._weights_file: Path | None = None
        top.addRow("", self.init_weights)

        self.more = QToolButton()
        self.more.setText("Hyperparameters ▸")
        self.more.setCheckable(True)
        self.more.toggled.connect(self._toggle)
        self.box = QGroupBox()
        self.fields: dict[str, QWidget] = {}
        form = QFormLayout(self.box)
        for name, info in Hyper.model_fields.items():
            if name in _TOP:
                continue
            w = self._widget(name, info.annotation)
            w.setToolTip(info.description or name)
            self.fields[name] = w
            if name == "optimize" and isinstance(w, QCheckBox):  # the speed switch: top row
                w.setText("Optimised")
                run_row.insertWidget(run_row.count() - 1, w)
                continue
            form.addRow(name, w)
        self.box.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.more)
        lay.addWidget(self.box)
        self._loading = False
        self.recipe.currentTextChanged.connect(self._recipe_changed)
        self.dataset.currentIndexChanged.connect(self._dataset_changed)
        self.amount.valueChanged.connect(self._emit)
        self.budget.currentTextChanged.connect(self._emit)
        self.device.currentTextChanged.connect(self._emit)
        self.path.textEdited.connect(self._emit)
        self._dataset_changed()

    def set_imported_weights(self, path: Path | None) -> None:
        """Offer "start from imported weights" when an import saved them (``path``), on."""
        self._weights_file = path
        self.init_weights.setVisible(path is not None)
        self.init_weights.setChecked(path is not None)

    def start_weights(self) -> Path | None:
        """The weights file a new run starts from, or None (random weights)."""
        return self._weights_file if self.init_weights.isChecked() else None

    def _toggle(self, on: bool) -> None:
        self.box.setVisible(on)
        self.more.setText("Hyperparameters ▾" if on else "Hyperparameters ▸")

    def _widget(self, name: str, ann: Any) -> QWidget:
        args = typing.get_args(ann)
        if typing.get_origin(ann) is typing.Literal:
            w = QComboBox()
            w.addItems([str(a) for a in args])
            w.currentTextChanged.connect(self._emit)
            return w
        if ann is bool:
            w = QCheckBox()
            w.toggled.connect(self._emit)
            return w
        w = QLineEdit()  # numbers and tuples: free text, checked by pydantic on start
        w.textEdited.connect(self._emit)
        return w

    def _emit(self, *_: object) -> None:
        if not self._loading:
            self.changed.emit()

    def _recipe_changed(self, _name: str) -> None:
        self._show_defaults()
        self._emit()

    def _dataset_changed(self, *_: object) -> None:
        is_file = self.dataset.currentData() in FILES
        self.path.setEnabled(is_file)
        self.browse.setEnabled(is_file)
        # a built-in dataset needs no path: hide the field rather than show it greyed out
        self.path.setVisible(is_file)
        self.browse.setVisible(is_file)
        self._emit()

    def defaults(self) -> dict[str, Any]:
        base = Hyper(steps=1).model_dump()
        base.pop("steps")
        try:
            base.update(recipes.get(self.recipe.currentText()).defaults)
        except KeyError:
            pass
        return base

    def _show_defaults(self) -> None:
        d = self.defaults()
        for name, w in self.fields.items():
            if isinstance(w, QLineEdit):
                v = d.get(name)
                w.setPlaceholderText("auto" if v is None else _text(v))

    def choose_file(self) -> None:
        kind = self.dataset.currentData()
        if kind == "image-folder":
            path = QFileDialog.getExistingDirectory(self, "Choose an image folder")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose your data",
                                                  filter=FILE_FILTERS.get(kind, "All files (*)"))
        if path:
            self.path.setText(path)
            self._emit()

    # -- project <-> form ----------------------------------------------------------------------
    def load(self, project: Project) -> None:
        self._loading = True
        try:
            t = project.training
            if t.recipe in recipes.NAMES:
                self.recipe.setCurrentText(t.recipe)
            i = self.dataset.findData(t.dataset) if t.dataset else -1
            if i >= 0:
                self.dataset.setCurrentIndex(i)
            self.path.setText(str(t.dataset_options.get("path", "")))
            h = dict(t.hyper)
            if h.get("steps"):
                self.budget.setCurrentText("steps")
                self.amount.setValue(int(h["steps"]))
            elif h.get("epochs"):
                self.budget.setCurrentText("epochs")
                self.amount.setValue(int(h["epochs"]))
            else:
                self.amount.setValue(0)
            self.device.setCurrentText(str(h.get("device", "auto")))
            self._show_defaults()
            for name, w in self.fields.items():
                v = h.get(name)
                if isinstance(w, QComboBox):
                    w.setCurrentText(str(v if v is not None else self.defaults().get(name)))
                elif isinstance(w, QCheckBox):
                    w.setChecked(bool(v if v is not None else self.defaults().get(name)))
                else:
                    w.setText("" if v is None else _text(v))
            self._dataset_changed()
        finally:
            self._loading = False

    def values(self) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
        """(recipe, dataset, dataset_options, hyper overrides) as the user set them."""
        d = self.defaults()
        hyper: dict[str, Any] = {}
        for name, w in self.fields.items():
            if isinstance(w, QComboBox):
                v: Any = w.currentText()
            elif isinstance(w, QCheckBox):
                v = w.isChecked()
            else:
                text = w.text().strip()
                if not text:
                    continue
                v = _parse(text)
            if v != d.get(name):
                hyper[name] = v
        if self.amount.value():
            hyper[self.budget.currentText()] = self.amount.value()
        if self.device.currentText() != "auto":
            hyper["device"] = self.device.currentText()
        options: dict[str, Any] = {}
        if self.dataset.currentData() in FILES and self.path.text().strip():
            options["path"] = str(Path(self.path.text().strip()).expanduser())
        return self.recipe.currentText(), self.dataset.currentData(), options, hyper

    def training_from(self, current: TrainingModel) -> TrainingModel:
        """The training settings the form shows, as a new model based on ``current`` (file
        datasets keep their other options). Nothing is written: the caller applies it."""
        recipe, dataset, options, hyper = self.values()
        t = current.model_copy(deep=True)
        t.recipe, t.dataset = recipe, dataset
        t.dataset_options = {**({} if dataset not in FILES else t.dataset_options), **options}
        t.hyper = hyper
        return t


def _text(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return ", ".join(_text(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def _parse(text: str) -> Any:
    if "," in text:
        return [_parse(p) for p in text.split(",") if p.strip()]
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text
