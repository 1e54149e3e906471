"""The Inspector's editor for a tensor shape (an Input's ``shape``): one field per dimension that
takes a size or a symbol (N: the batch, T: a sequence of any length), add and remove buttons.
Nobody types JSON; every change is one list handed to the inspector, which makes the command."""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QRegularExpression, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import QHBoxLayout, QLineEdit, QToolButton, QWidget

MAX_DIMS = 8
#: A dimension: a positive size, or a symbol (a letter, then letters/digits/underscores).
DIM_RE = QRegularExpression(r"^([1-9][0-9]{0,6}|[A-Za-z_][A-Za-z0-9_]{0,15})$")


def parse_dim(text: str) -> int | str | None:
    text = text.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


class ShapeEditor(QWidget):
    """Dims as fields: ``[N] [3] [32] [32]  + −``. Emits ``edited`` with the new list."""

    edited = Signal(list)

    def __init__(self, shape: list[Any], on_edit: Callable[[list], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields: list[QLineEdit] = []
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.setSpacing(3)
        self.add_button = QToolButton(text="+")
        self.add_button.setToolTip("Add a dimension (a size of 1; type another size or N/T)")
        self.add_button.clicked.connect(lambda: self._add_dim(1))
        self.remove_button = QToolButton(text="−")
        self.remove_button.setToolTip("Remove the last dimension")
        self.remove_button.clicked.connect(self._remove_dim)
        self.row.addStretch(1)
        self.row.addWidget(self.add_button)
        self.row.addWidget(self.remove_button)
        if on_edit is not None:
            self.edited.connect(on_edit)
        self.set_shape(list(shape) if isinstance(shape, list) else [])

    def shape(self) -> list[int | str]:
        return [d for d in (parse_dim(f.text()) for f in self.fields) if d is not None]

    def set_shape(self, shape: list[Any]) -> None:
        for f in self.fields:
            self.row.removeWidget(f)
            f.deleteLater()
        self.fields = []
        for dim in shape:
            self._field(dim)
        self._buttons()

    def _field(self, dim: Any) -> QLineEdit:
        f = QLineEdit(str(dim))
        f.setValidator(QRegularExpressionValidator(DIM_RE, f))
        f.setMaximumWidth(56)
        f.setToolTip("A size (e.g. 32), or N for the batch, T for a sequence of any length")
        f.editingFinished.connect(self._commit)
        self.row.insertWidget(len(self.fields), f)
        self.fields.append(f)
        return f

    def _buttons(self) -> None:
        self.add_button.setEnabled(len(self.fields) < MAX_DIMS)
        self.remove_button.setEnabled(len(self.fields) > 1)

    def _add_dim(self, dim: Any) -> None:
        f = self._field(dim)
        self._buttons()
        self._commit()
        f.setFocus()
        f.selectAll()

    def _remove_dim(self) -> None:
        if len(self.fields) > 1:
            f = self.fields.pop()
            self.row.removeWidget(f)
            f.deleteLater()
            self._buttons()
            self._commit()

    def _commit(self) -> None:
        self.edited.emit(self.shape())
