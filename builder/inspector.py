"""The inspector: a form generated from the selected node's pydantic Params, plus its shapes and
figures. Values go to the document as SetParamsCommand (successive edits of a field merge)."""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from compiler.graph import GraphEditError
from compiler.ports import is_ref
from compiler.project import PARAM_REF_KEY
from compiler.summary import human
from nodes import registry, syntax
from nodes.io import Role, role_of

from . import theme
from .commands import RenameCommand, SetParamsCommand, push
from .document import Document
from .shape_editor import ShapeEditor

INT_LIMIT = 2_000_000_000


def field_bounds(info: Any) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in getattr(info, "metadata", []):
        for attr, kind in (("ge", "lo"), ("gt", "lo"), ("le", "hi"), ("lt", "hi")):
            v = getattr(m, attr, None)
            if v is None:
                continue
            if kind == "lo":
                lo = v + (1 if attr == "gt" and isinstance(v, int) else 0)
            else:
                hi = v - (1 if attr == "lt" and isinstance(v, int) else 0)
    return lo, hi


def literal_choices(annotation: Any) -> list[Any] | None:
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    return None


def parse_text(text: str) -> Any:
    """What a user typed in a free-form field: a Python/JSON literal, '$name' for a block param
    reference, else the text itself."""
    text = text.strip()
    if text.startswith("$") and text[1:].isidentifier():
        return {PARAM_REF_KEY: text[1:]}
    if text in ("None", "none", "null", ""):
        return None
    for candidate in (text, _quote_words(text)):
        try:
            return syntax.literal(candidate)
        except (ValueError, SyntaxError):
            pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def _quote_words(text: str) -> str:
    """'[N, 64]' -> '["N", 64]': symbolic sizes may be typed without quotes."""
    import re

    return re.sub(r"(?<![\w'\"])([A-Za-z_]\w*)(?![\w'\"])",
                  lambda m: m.group(1) if m.group(1) in ("True", "False", "None")
                  else f'"{m.group(1)}"', text)


def show_text(value: Any) -> str:
    if is_ref(value):
        return "$" + value[PARAM_REF_KEY]
    if isinstance(value, str):
        return value
    return repr(value) if not isinstance(value, (list, dict)) else json.dumps(value)


def show_float(value: float) -> str:
    """A float as typed: its shortest repr (0.5, 1e-05), never a fixed 0.500000."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") and "e" not in text else text


class FloatBox(QDoubleSpinBox):
    """A float spin box that shows what was typed (0.5, 0.001, 1e-05), not six decimals."""

    def __init__(self) -> None:
        super().__init__()
        self.setDecimals(12)

    def textFromValue(self, value: float) -> str:  # noqa: N802
        return show_float(round(value, 12))

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.replace(self.suffix(), "").strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        from PySide6.QtGui import QValidator

        body = text.strip()
        try:
            float(body)
            state = QValidator.State.Acceptable
        except ValueError:
            ok = body in ("", "-", "+", ".", "-.") or body.lower().endswith(("e", "e-", "e+"))
            state = QValidator.State.Intermediate if ok else QValidator.State.Invalid
        return state, text, pos


def is_shape(annotation: Any, value: Any) -> bool:
    """A tensor shape field (a list of sizes and symbols): edited dim by dim, not as JSON."""
    return typing.get_origin(annotation) is list and isinstance(value, list) and all(
        isinstance(v, (int, str)) and not isinstance(v, bool) for v in value)


class Inspector(QScrollArea):
    status = Signal(str)

    def __init__(self, doc: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.network = ""
        self.node_id: str | None = None
        self.editors: dict[str, QWidget] = {}
        self._own_change = False
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.body = QWidget()
        self.setWidget(self.body)
        self.lay = QVBoxLayout(self.body)
        self.lay.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {theme.current().error}")
        doc.changed.connect(self._on_changed)
        doc.analyzed.connect(lambda _a: self._fill_figures())
        doc.figures_ready.connect(self._fill_figures)
        self.show_node("", None)

    # -- building the form ---------------------------------------------------------------------
    def show_node(self, network: str, node_id: str | None) -> None:
        self.network, self.node_id = network, node_id
        self.editors = {}
        while self.lay.count():
            w = self.lay.takeAt(0).widget()
            if w is not None and w is not self.error:
                w.hide()
                w.setParent(None)
                w.deleteLater()
        self.error.setText("")
        node = self._node()
        if node is None:
            hint = QLabel("Select a node to edit its parameters.\n\nDrag nodes from the palette, "
                          "or press Tab on the canvas to add one.")
            hint.setWordWrap(True)
            hint.setStyleSheet(f"color: {theme.current().dim}")
            self._add(hint)
            return
        cls = registry.get(node.type)
        title = QLabel(f"<b>{cls.name}</b> <span style='color:{theme.current().dim}'>"
                       f"{cls.id}</span>")
        self._add(title)
        if cls.description:
            d = QLabel(cls.description)
            d.setWordWrap(True)
            d.setStyleSheet(f"color: {theme.current().dim}")
            self._add(d)
        form_w = QWidget()
        form = QFormLayout(form_w)
        form.setContentsMargins(0, 6, 0, 6)
        name = QLineEdit(node.name)
        name.editingFinished.connect(lambda: self._rename(name.text()))
        self.editors["__name__"] = name
        form.addRow("name", name)
        if role_of(cls) == Role.BLOCK:
            self._block_rows(form, node)
        else:
            for key, info in cls.Params.model_fields.items():
                value = node.params.get(key, info.get_default(call_default_factory=True))
                editor = self._editor(key, info.annotation, info, value)
                editor.setToolTip(info.description or key)
                label = QLabel(key)
                label.setToolTip(info.description or key)
                form.addRow(label, editor)
                self.editors[key] = editor
        self._add(form_w)
        self._add(self.error)
        self.figures = QLabel()
        self.figures.setWordWrap(True)
        self.figures.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._add(self.figures)
        self._fill_figures()
        from .search.inspector_menu import decorate  # "Search over…" and domains (issue 12)

        decorate(self, form)

    def _add(self, widget: QWidget) -> None:
        self.lay.addWidget(widget)
        widget.show()  # a layout shows new children only on the next event-loop turn

    def _block_rows(self, form: QFormLayout, node) -> None:
        block_name = node.params.get("block", "")
        which = QLabel(block_name)
        which.setToolTip("Double-click the node on the canvas to open the block")
        form.addRow("block", which)
        rep = QSpinBox()
        rep.setRange(1, 1000)
        rep.setValue(int(node.params.get("repeat", 1)))
        rep.setPrefix("×")
        rep.setToolTip("How many times the block is applied in a row")
        rep.valueChanged.connect(lambda v: self._set({"repeat": v}))
        form.addRow("repeat", rep)
        self.editors["repeat"] = rep
        if not self.doc.project.has_block(block_name):
            return
        args = dict(node.params.get("args", {}))
        for bp in self.doc.project.block(block_name).params:
            value = args.get(bp.name, bp.default)
            editor = self._editor(f"args.{bp.name}", type(bp.default), None, value)
            editor.setToolTip(bp.description or f"block parameter {bp.name}")
            form.addRow(bp.name, editor)
            self.editors[f"args.{bp.name}"] = editor

    def _editor(self, key: str, annotation: Any, info: Any, value: Any) -> QWidget:
        choices = literal_choices(annotation)
        lo, hi = field_bounds(info) if info is not None else (None, None)
        if is_ref(value):
            annotation = None  # a reference is edited as text ("$planes")
        if choices is not None:
            w = QComboBox()
            for c in choices:
                w.addItem(str(c), c)
            if value in choices:
                w.setCurrentIndex(choices.index(value))
            w.currentIndexChanged.connect(lambda i: self._set_key(key, w.itemData(i)))
            return w
        if annotation is bool:
            w = QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(lambda v: self._set_key(key, bool(v)))
            return w
        if annotation is int and isinstance(value, int):
            w = QSpinBox()
            w.setRange(int(lo) if lo is not None else -INT_LIMIT,
                       int(hi) if hi is not None else INT_LIMIT)
            w.setValue(value)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v: self._set_key(key, int(v)))
            return w
        if key == "shape" and is_shape(annotation, value):
            return ShapeEditor(value, lambda dims: self._set_key(key, dims))
        if annotation is float and isinstance(value, (int, float)):
            w = FloatBox()
            w.setRange(float(lo) if lo is not None else -1e12,
                       float(hi) if hi is not None else 1e12)
            w.setSingleStep(0.01 if (hi or 2) <= 1 else 0.1)
            w.setValue(float(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v: self._set_key(key, float(v)))
            return w
        w = QLineEdit(show_text(value))
        w.setPlaceholderText(_type_text(annotation))
        w.editingFinished.connect(lambda: self._set_key(key, parse_text(w.text())))
        return w

    # -- edits ---------------------------------------------------------------------------------
    def _node(self):
        if not self.node_id:
            return None
        try:
            return self.doc.graph(self.network).net.node(self.node_id)
        except KeyError:
            return None

    def _set_key(self, key: str, value: Any) -> None:
        if key.startswith("args."):
            node = self._node()
            args = dict(node.params.get("args", {})) if node else {}
            args[key[5:]] = value
            self._set({"args": args})
        else:
            self._set({key: value})

    def _set(self, params: dict[str, Any]) -> bool:
        node = self._node()
        if node is None:
            return False
        if all(node.params.get(k) == v for k, v in params.items()):
            return True
        self._own_change = True
        try:
            push(self.doc, SetParamsCommand(self.doc, self.network, node.id, params))
            self.error.setText("")
            return True
        except GraphEditError as err:
            self.error.setText(f"Refused: {err}")
            self.status.emit(f"Refused: {err}")
            self._reset_editors()
            return False
        finally:
            self._own_change = False

    def _rename(self, name: str) -> None:
        node = self._node()
        if node is None or name == node.name:
            return
        self._own_change = True
        try:
            push(self.doc, RenameCommand(self.doc, self.network, node.id, name))
            self.error.setText("")
        except GraphEditError as err:
            self.error.setText(f"Refused: {err}")
            self.status.emit(f"Refused: {err}")
            self.editors["__name__"].setText(node.name)  # type: ignore[attr-defined]
        finally:
            self._own_change = False

    def set_value(self, key: str, value: Any) -> bool:
        """Programmatic edit through the same path as the form (used by tests and scripts)."""
        editor = self.editors.get(key)
        if isinstance(editor, QSpinBox):
            editor.setValue(int(value))
            return self._node() is not None and self._node().params.get(key) == value
        if isinstance(editor, ShapeEditor):
            editor.set_shape(list(value))
            editor.edited.emit(editor.shape())
            return self.error.text() == ""
        if isinstance(editor, QLineEdit):
            editor.setText(show_text(value))
            editor.editingFinished.emit()
            return self.error.text() == ""
        return self._set({key: value})

    def _reset_editors(self) -> None:
        node_id, network = self.node_id, self.network
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, lambda: self.show_node(network, node_id)
                          if self.node_id == node_id else None)

    def _on_changed(self, event: str, info: dict) -> None:
        if self._own_change:
            return
        if event in ("reset", "structure") or (event.startswith("node") and self.node_id):
            node = self._node()
            if event == "node_changed" and info.get("node") != self.node_id:
                return
            self.show_node(self.network, self.node_id if node is not None else None)

    # -- figures -------------------------------------------------------------------------------
    def _fill_figures(self) -> None:
        label = getattr(self, "figures", None)
        node = self._node()
        if label is None or node is None:
            return
        try:
            label.text()
        except RuntimeError:  # the label was deleted with an old form
            return
        from .canvas import block_instance

        a = self.doc.analysis
        if a is None:
            label.setText("<i>analysing…</i>")
            return
        res = a.networks.get(self.network) or block_instance(a, self.network)
        nr = res.nodes.get(node.id) if res else None
        lines = []
        if nr is not None:
            for port, spec in nr.ins.items():
                specs = spec if isinstance(spec, list) else [spec]
                text = ", ".join(s.label() if s is not None else "?" for s in specs)
                lines.append(f"in <b>{port}</b>: {text}")
            for port, spec in nr.outs.items():
                lines.append(f"out <b>{port}</b>: {spec.label()}")
        figs = self.doc.figures().get(node.id) if self.network in a.networks else None
        if figs is not None:
            lines.append(f"parameters: <b>{figs.params:,}</b>")
            lines.append(f"FLOPs: <b>{human(figs.flops)}</b>")
        elif self.doc.figures_pending:
            lines.append(f"<span style='color:{theme.current().dim}'>counting parameters…</span>")
        elif a.ok and self.network in a.networks:
            lines.append(f"<span style='color:{theme.current().dim}'>parameters and FLOPs: "
                         "Summary › Compute figures</span>")
        problems = [d for d in a.diagnostics if d.node_id == node.id]
        if res is not None and self.network not in a.networks:
            problems += [d for d in res.diagnostics if d.node_id == node.id]
        for d in problems:
            color = theme.current().error if d.is_error else theme.current().warning
            lines.append(f"<span style='color:{color}'>{d.severity}: {d.message}"
                         + (f" — {d.hint}" if d.hint else "") + "</span>")
        label.setText("<br>".join(lines))


def _type_text(annotation: Any) -> str:
    if annotation is None:
        return "$param or a value"
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " or ".join(_type_text(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "None")
