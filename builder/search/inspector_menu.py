""""Search over…" in the Inspector: a param's context menu binds it to a domain (a list of values,
an integer range with a step or a log scale, or a float range) through an undo command, and a
searched param shows its domain in place of its one value.

The Inspector calls :func:`decorate` once per form it builds (one line there); everything else
about search in the Inspector lives here.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from compiler.graph import GraphEditError
from compiler.project import Choice, Domain
from nodes import syntax

from .. import theme
from ..commands import push
from .commands import RemoveChoiceCommand, SetChoiceCommand
from .space_view import domain_text

KINDS = (("values", "a list of values"), ("int", "an integer range"), ("float", "a float range"))


def parse_values(text: str) -> list[Any]:
    """``16, 32, 64`` or ``relu, gelu`` or ``[3, 3], [5, 5]``: literals where they parse, the
    words themselves otherwise (block names, activation kinds)."""
    try:
        value = syntax.literal(f"[{text}]")
        return list(value)
    except (ValueError, SyntaxError):
        return [_literal(part.strip()) for part in text.split(",") if part.strip()]


def _literal(text: str) -> Any:
    try:
        return syntax.literal(text)
    except (ValueError, SyntaxError):
        return text


def suggested_label(key: str, node_name: str) -> str:
    name = key.removeprefix("args.")
    label = f"{node_name}_{name}" if name in ("block", "repeat") else name
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in label) or "choice"


class SearchOverDialog(QDialog):
    """Label and domain of one searched param, prefilled from its value or its current domain."""

    def __init__(self, key: str, value: Any, label: str, current: Domain | None,
                 suggestions: list[Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Search over {key}")
        self.setObjectName("search_over_dialog")
        self.label = QLineEdit(label)
        self.label.setToolTip("Choices with the same label move together (one shared decision)")
        self.kind = QComboBox()
        for k, text in KINDS:
            self.kind.addItem(text, k)
        self.values = QLineEdit()
        self.values.setPlaceholderText("comma-separated, e.g. 16, 32, 64")
        self.low, self.high = QDoubleSpinBox(), QDoubleSpinBox()
        for box in (self.low, self.high):
            box.setRange(-1e12, 1e12)
            box.setDecimals(6)
        self.step = QSpinBox()
        self.step.setRange(1, 1_000_000)
        self.log = QCheckBox("log scale")
        range_w = QWidget()
        rf = QFormLayout(range_w)
        rf.setContentsMargins(0, 0, 0, 0)
        rf.addRow("low", self.low)
        rf.addRow("high", self.high)
        rf.addRow("step (int)", self.step)
        rf.addRow("", self.log)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.values)
        self.stack.addWidget(range_w)
        self.kind.currentIndexChanged.connect(
            lambda i: self.stack.setCurrentIndex(0 if i == 0 else 1))
        self.error = QLabel()
        self.error.setStyleSheet(f"color: {theme.current().error}")
        self.error.setWordWrap(True)
        form = QFormLayout()
        form.addRow("label", self.label)
        form.addRow("domain", self.kind)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.stack)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.result_domain: Domain | None = None
        self._prefill(value, current, suggestions)

    def _prefill(self, value: Any, current: Domain | None, suggestions: list[Any] | None) -> None:
        d = current
        if d is None:
            self.values.setText(", ".join(repr(v) if isinstance(v, str) and "," in v else str(v)
                                          for v in (suggestions or [value])))
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if number:
                self.low.setValue(float(value) / 2 if value else 0.0)
                self.high.setValue(float(value) * 2 if value else 1.0)
            return
        self.kind.setCurrentIndex([k for k, _ in KINDS].index(d.kind))
        if d.kind == "values":
            self.values.setText(", ".join(str(v) for v in d.values or []))
        else:
            self.low.setValue(float(d.low))  # type: ignore[arg-type]
            self.high.setValue(float(d.high))  # type: ignore[arg-type]
            self.step.setValue(d.step or 1)
            self.log.setChecked(d.log)

    def set_domain(self, kind: str, values: str = "", low: float = 0, high: float = 0,
                   step: int = 1, log: bool = False) -> None:
        """Fill the form as a user would (scripts and tests)."""
        self.kind.setCurrentIndex([k for k, _ in KINDS].index(kind))
        self.values.setText(values)
        self.low.setValue(low)
        self.high.setValue(high)
        self.step.setValue(step)
        self.log.setChecked(log)

    def domain(self) -> Domain:
        kind = str(self.kind.currentData())
        if kind == "values":
            return Domain(kind="values", values=parse_values(self.values.text()))
        low, high = self.low.value(), self.high.value()
        if kind == "int":
            step = self.step.value()
            return Domain(kind="int", low=int(low), high=int(high),
                          step=None if step == 1 or self.log.isChecked() else step,
                          log=self.log.isChecked())
        return Domain(kind="float", low=low, high=high, log=self.log.isChecked())

    def _accept(self) -> None:
        try:
            self.result_domain = self.domain()
        except ValueError as err:
            self.error.setText(str(err).splitlines()[-1])
            return
        self.accept()


# -- the Inspector's side -----------------------------------------------------------------------
def choice_for(inspector: Any, key: str) -> Choice | None:
    for c in inspector.doc.project.search.choices:
        if (c.scope, c.node, c.param) == (inspector.network, inspector.node_id, key):
            return c
    return None


def _suggestions(inspector: Any, key: str, node: Any) -> list[Any] | None:
    """For a block slot, every block of the project (the loader refuses those whose ports
    differ, naming them); otherwise just the current value."""
    if key == "block":
        return [b.name for b in inspector.doc.project.blocks if b.name != inspector.network]
    return None


def _value(node: Any, key: str) -> Any:
    if key.startswith("args."):
        return (node.params.get("args") or {}).get(key[5:])
    return node.params.get(key)


def search_over(inspector: Any, key: str, dialog: SearchOverDialog | None = None) -> bool:
    """Ask for a domain (``dialog``: one already filled, for scripts) and push the choice."""
    node = inspector._node()
    if node is None:
        return False
    current = choice_for(inspector, key)
    if dialog is None:
        dialog = SearchOverDialog(key, _value(node, key), current.label if current else
                                  suggested_label(key, node.name),
                                  current.domain if current else None,
                                  _suggestions(inspector, key, node), inspector)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
    elif dialog.result_domain is None:
        dialog._accept()
    if dialog.result_domain is None:
        return False
    try:
        choice = Choice(label=dialog.label.text().strip(), scope=inspector.network,
                        node=node.id, param=key, domain=dialog.result_domain)
        push(inspector.doc, SetChoiceCommand(inspector.doc, choice))
    except (GraphEditError, ValueError) as err:
        text = str(err).splitlines()[-1] if isinstance(err, ValueError) and \
            not isinstance(err, GraphEditError) else str(err)
        inspector.error.setText(f"Refused: {text}")
        inspector.status.emit(f"Refused: {text}")
        return False
    inspector.status.emit(f"Searching {node.name}.{key} over {domain_text(choice.domain)}")
    return True


def stop_searching(inspector: Any, key: str) -> None:
    try:
        push(inspector.doc, RemoveChoiceCommand(inspector.doc, inspector.network,
                                                str(inspector.node_id), key))
    except GraphEditError as err:
        inspector.status.emit(f"Refused: {err}")


def param_menu(inspector: Any, key: str) -> QMenu:
    """The context menu of one param row."""
    menu = QMenu(inspector)
    searched = choice_for(inspector, key) is not None
    act = menu.addAction("Change search domain…" if searched else "Search over…")
    act.triggered.connect(lambda _c=False: search_over(inspector, key))
    if searched:
        menu.addAction("Stop searching").triggered.connect(
            lambda _c=False: stop_searching(inspector, key))
    return menu


def _hook(inspector: Any, widget: QWidget, key: str) -> None:
    widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    widget.customContextMenuRequested.connect(
        lambda pos, w=widget: param_menu(inspector, key).exec(w.mapToGlobal(QPoint(pos))))


def decorate(inspector: Any, form: QFormLayout) -> None:
    """Give each param row of ``form`` its "Search over…" menu and show a searched param's
    domain in place of its editor. Follows search edits by rebuilding the form."""
    if not getattr(inspector, "_search_hooked", False):
        inspector._search_hooked = True
        inspector.doc.changed.connect(
            lambda event, _info: inspector.show_node(inspector.network, inspector.node_id)
            if event == "search" and inspector.node_id else None)
    keys = {id(w): k for k, w in inspector.editors.items() if k != "__name__"}
    t = theme.current()
    for row in range(form.rowCount()):
        label_item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
        field_item = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
        if label_item is None or field_item is None or label_item.widget() is None:
            continue
        label, field = label_item.widget(), field_item.widget()
        key = keys.get(id(field)) or ("block" if getattr(label, "text", lambda: "")() == "block"
                                      else None)
        if key is None:
            continue
        _hook(inspector, label, key)
        choice = choice_for(inspector, key)
        if choice is None:
            continue
        shown = QLabel(f"⟳ <b>{choice.label}</b>: {domain_text(choice.domain)}")
        shown.setObjectName(f"search_domain_{key}")
        shown.setStyleSheet(f"color: {t.accent}")
        shown.setToolTip("Searched: right-click to change the domain or stop searching")
        _hook(inspector, shown, key)
        form.replaceWidget(field, shown)
        field.hide()
        inspector.editors[f"search:{key}"] = shown
