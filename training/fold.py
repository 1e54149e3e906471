"""Partial evaluation of a piece of ``train.py``: tests of settings that the script's command line
cannot change are decided at export, and the branches they rule out are left out.

``train.py`` copies the engine's code by source (:mod:`training.export`). The engine handles every
setting (a cosine schedule, gradient clipping, SGD or Adam); one project uses one value of each.
So a test such as ``if hp["grad_clip"]:`` or ``hp["schedule"] != "constant"`` is evaluated with
the project's value and replaced by the branch it takes, written with the source's own lines and
comments (dedented), never an unparsed tree. Only *tests* are folded (``if``/``elif``, conditional
expressions, the ``and``/``or`` inside them); a value the code uses (``lr=hp["lr"]``) stays a read
of the settings, so ``CONFIG`` keeps it and the user can change it. A setting whose every read
was a folded test leaves ``CONFIG`` with it (the export keeps the keys the code still reads):
editing it would change nothing, so the script does not pretend it would; to train with another
schedule, clip or optimiser, change it in Layerloom and export again. Settings the command line
or the code writes (``steps``, ``optimize``, ``total_steps``, ``amp`` under ``--optimize``) are
never folded, nor is a test of anything else (the device), unless the export states it as a fact:
``fixed`` may also hold what the export knows of this project beyond its settings, each proven
by running the app's own code at export: an attribute's value (``"data.kind": "tensors"``), a
call that does nothing for this project (``"recipe.adapt": NO_OP``: the statement goes), what a
call returns for it (``"convolutional": Returns(False)``: an MLP's tests of it fold), and the
dataset's options (``OPTIONS``): ``option_number(options, "val_fraction", 0.2, 0.0, 0.95)``
becomes the checked literal, a bad value raising the loader's own DataError at export, and a
function that hands back its argument for this project (``"first": IDENTITY``: the call goes).
After the tests, a class default that ``__init__`` now always overwrites is left out too: it only
stood in for the branches that were folded away.

Still one path: a folded test takes the value the app reads for this project, so the branch kept
is the branch the app runs; ``tests/test_export_train.py`` checks that every exported piece is its
source folded and nothing else.
"""

from __future__ import annotations

import ast
import operator
from typing import Any, Iterable

from nodes import syntax

UNKNOWN: Any = object()
#: a fact's value: the call does nothing for this project, so its statement is left out
NO_OP: Any = type("NoOp", (), {"__repr__": lambda self: "NO_OP"})()
#: a fact's value: the exported class has no such attribute (``hasattr`` tests of it are False)
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
#: a fact's value: the exported class has the attribute (``hasattr`` tests of it are True)
HAS: Any = type("Has", (), {"__repr__": lambda self: "HAS"})()
#: a fact's value: the function returns its one argument for this project, so a call of it is
#: that argument (``first(net(x))`` is ``net(x)`` when every network returns one tensor)
IDENTITY: Any = type("Identity", (), {"__repr__": lambda self: "IDENTITY"})()


class Returns:
    """A fact's value: the call returns ``value`` for this project, whatever it is given (its
    arguments are reads, so leaving the call out changes nothing): ``convolutional(recipe.nets)``
    is False for an MLP, and the tests it decides fold as a setting's would."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Returns({self.value!r})"


#: ``fixed``'s key for the dataset's options (not an identifier, so never a setting's name)
OPTIONS = "dataset options"
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
            ast.Is: operator.is_, ast.IsNot: operator.is_not}
_CASTS = {"bool": bool, "int": int, "float": float}


def _is_settings(node: ast.AST) -> bool:
    """``hp`` or ``<anything>.hp``: the settings dict of the engine and the recipes."""
    return (isinstance(node, ast.Name) and node.id == "hp") or \
        (isinstance(node, ast.Attribute) and node.attr == "hp")


def setting_read(node: ast.AST) -> str | None:
    """The key of ``hp["key"]`` or ``hp.get("key"[, default])`` (``self.hp`` too), else None."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and \
            _is_settings(node.value) and isinstance(node.slice, ast.Constant) and \
            isinstance(node.slice.value, str):
        return node.slice.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
            node.func.attr == "get" and _is_settings(node.func.value) and \
            1 <= len(node.args) <= 2 and not node.keywords and \
            isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) and \
            all(_pure(a) for a in node.args[1:]):
        return node.args[0].value
    return None


def written_settings(sources: Iterable[str]) -> set[str]:
    """The settings some code writes: ``hp["k"] = ...``, ``hp.update(k=...)``, the keys of a
    ``{**CONFIG, "k": ...}`` literal. These are never folded."""
    keys: set[str] = set()
    for text in sources:
        for node in ast.walk(syntax.parse(text)):
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and \
                    _is_settings(node.value) and isinstance(node.slice, ast.Constant):
                keys.add(str(node.slice.value))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("update", "setdefault", "pop") and \
                    _is_settings(node.func.value):
                keys |= {k.arg for k in node.keywords if k.arg}
                for a in node.args:
                    if isinstance(a, ast.Constant):
                        keys.add(str(a.value))
                    elif isinstance(a, ast.Dict):
                        keys |= {str(k.value) for k in a.keys if isinstance(k, ast.Constant)}
            elif isinstance(node, ast.Dict) and None in node.keys:  # {**CONFIG, "optimize": ...}
                keys |= {str(k.value) for k in node.keys if isinstance(k, ast.Constant)}
    return keys


def _pure(node: ast.AST) -> bool:
    """Whether leaving an expression out can change nothing but its value (no calls but reads
    of the settings)."""
    if setting_read(node) is not None or isinstance(node, (ast.Constant, ast.Name)):
        return True
    if isinstance(node, (ast.Attribute, ast.UnaryOp)):
        return _pure(node.value if isinstance(node, ast.Attribute) else node.operand)
    if isinstance(node, ast.Subscript):
        return _pure(node.value) and _pure(node.slice)
    if isinstance(node, (ast.Compare, ast.BoolOp, ast.Tuple)):
        kids = [node.left, *node.comparators] if isinstance(node, ast.Compare) else \
            node.values if isinstance(node, ast.BoolOp) else node.elts
        return all(_pure(k) for k in kids)
    return False


class _Folder:
    def __init__(self, text: str, fixed: dict[str, Any]) -> None:
        self.text, self.fixed = text, fixed

    def value(self, node: ast.AST) -> Any:
        """The expression's value when the fixed settings decide it, else UNKNOWN."""
        key = setting_read(node)
        if key is not None:
            return self.fixed.get(key, UNKNOWN)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Attribute) and _dotted(node) in self.fixed:
            return self.fixed[_dotted(node)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            v = self.value(node.operand)
            return UNKNOWN if v is UNKNOWN else not v
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
            values = [self.value(n) for n in (node.left, *node.comparators)]
            if any(v is UNKNOWN for v in values):
                return UNKNOWN
            try:
                return all(_COMPARE[type(op)](a, b)
                           for op, a, b in zip(node.ops, values, values[1:], strict=False))
            except TypeError:
                return UNKNOWN
        if isinstance(node, ast.BoolOp):  # Python's own left-to-right rule, exact values
            for i, v in enumerate(self.value(n) for n in node.values):
                if v is UNKNOWN:
                    return UNKNOWN
                if i == len(node.values) - 1 or bool(v) != isinstance(node.op, ast.And):
                    return v
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in _CASTS and len(node.args) == 1 and not node.keywords:
            v = self.value(node.args[0])
            try:
                return UNKNOWN if v is UNKNOWN else _CASTS[node.func.id](v)
            except (TypeError, ValueError):
                return UNKNOWN
        if isinstance(node, ast.Call) and isinstance(self.fixed.get(_dotted(node.func) or "-"),
                                                     Returns) and not node.keywords and \
                all(_pure(a) for a in node.args):  # a function or a method (hooks.should_stop)
            return self.fixed[_dotted(node.func)].value
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hasattr" and \
                len(node.args) == 2 and isinstance(node.args[1], ast.Constant):
            # a fact "recipe.samples" of HAS or MISSING: whether the exported class defines it
            fact = self.fixed.get(f"{_dotted(node.args[0])}.{node.args[1].value}", UNKNOWN)
            return UNKNOWN if fact is UNKNOWN else fact is not MISSING
        return UNKNOWN

    def truth(self, node: ast.AST) -> tuple[bool | None, list[ast.AST] | None]:
        """In a test: (decided truth or None, the operands left of a simplified ``and``/``or``,
        or None when the test stays as written)."""
        v = self.value(node)
        if v is not UNKNOWN:
            return bool(v), None
        if not isinstance(node, ast.BoolOp):
            return None, None
        is_and, kept, changed = isinstance(node.op, ast.And), [], False
        for operand in node.values:
            t, _ = self.truth(operand)
            if t is None:
                kept.append(operand)
            elif t == is_and:  # True in an `and`, False in an `or`: it decides nothing
                changed = True
            elif all(_pure(k) for k in kept):  # False in an `and`: the whole test is False
                return not is_and, None
            else:
                kept.append(operand)
        if not kept:
            return is_and, None
        return None, kept if changed else None

    def segment(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.text, node) or ""
        if isinstance(node, (ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr)) or "\n" in text:
            return f"({text})"
        return text


def _dotted(node: ast.AST) -> str:
    """``data.kind`` for ``data.kind`` and ``self.data.kind``; "" for anything but names."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join(([] if node.id == "self" else [node.id]) + parts[::-1])


def _lines_of(nodes: list[ast.stmt]) -> tuple[int, int]:
    return nodes[0].lineno, nodes[-1].end_lineno or nodes[-1].lineno


def _else_line(node: ast.If, lines: list[str]) -> int | None:
    """The line (1-based) of an ``if``'s ``else:`` or ``elif``, None without one."""
    if not node.orelse:
        return None
    start = node.orelse[0].lineno
    if lines[start - 1].lstrip().startswith("elif"):
        return start
    end = node.body[-1].end_lineno or node.body[-1].lineno
    return next(i for i in range(start - 1, end, -1) if lines[i - 1].lstrip().startswith("else"))


def _dedent(lines: list[str], by: int) -> list[str]:
    return [line[by:] if line[:by].strip() == "" else line.lstrip() for line in lines]


def _replace_span(text: str, node: ast.AST, new: str) -> str:
    """The text with a node's span (line, column: UTF-8 bytes as ast counts them) replaced."""
    lines = text.split("\n")
    a, b = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    head = lines[a].encode()[:node.col_offset].decode()
    tail = lines[b].encode()[node.end_col_offset:].decode()
    return "\n".join([*lines[:a], head + new + tail, *lines[b + 1:]])


def _multiline_strings(tree: ast.AST) -> list[tuple[int, int]]:
    return [(n.lineno, n.end_lineno or n.lineno) for n in ast.walk(tree)
            if isinstance(n, (ast.Constant, ast.JoinedStr)) and n.lineno != n.end_lineno
            and (isinstance(n, ast.JoinedStr) or isinstance(n.value, str))]


def fold(text: str, fixed: dict[str, Any], decided: set[str] | None = None) -> str:
    """The piece ``text`` with every test that ``fixed`` (setting -> value) decides folded; the
    settings such tests read are added to ``decided``."""
    for _ in range(200):  # one edit at a time, on a fresh parse; a piece has a few
        new = _fold_once(text, fixed, set() if decided is None else decided)
        if new is None and OPTIONS in fixed:
            new = _fold_option(text, fixed[OPTIONS], set() if decided is None else decided)
        if new is None:
            return _drop_overwritten_defaults(text)
        text = new
    return _drop_overwritten_defaults(text)


def _drop_overwritten_defaults(text: str) -> str:
    """The text without the class attributes that the class's ``__init__`` now always sets.

    A class default stands in for an instance attribute that ``__init__`` sets only on some
    paths (``Optimizers.scheds`` without a schedule); once folding has kept only the path that
    sets it, the default is never read and goes with its line. Only a default of a plain name,
    read nowhere in the text but as ``self.<name>``, and set at the top level of ``__init__``
    before any ``return`` and before ``__init__`` reads it."""
    tree = syntax.parse(text)
    lines = text.split("\n")
    spans = []
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        init = next((s for s in cls.body if isinstance(s, ast.FunctionDef)
                     and s.name == "__init__"), None)
        if init is None:
            continue
        always: set[str] = set()
        for stmt in init.body:
            if isinstance(stmt, ast.Return):
                break
            targets = stmt.targets if isinstance(stmt, ast.Assign) else \
                [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
            for e in (e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])):
                if isinstance(e, ast.Attribute) and getattr(e.value, "id", "") == "self" and \
                        not _reads_before(init, e.attr, stmt.lineno):
                    always.add(e.attr)
        for stmt in cls.body:
            if not isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                continue
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if len(names) == len(targets) == 1 and names <= always and \
                    not any(isinstance(n, ast.Attribute) and n.attr in names
                            and getattr(n.value, "id", "") != "self" for n in ast.walk(tree)):
                spans.append((stmt.lineno, stmt.end_lineno or stmt.lineno))
    for a, b in sorted(spans, reverse=True):
        blank_around = not lines[a - 2].strip() and b < len(lines) and not lines[b].strip()
        del lines[a - 1:b + (1 if blank_around else 0)]
    return "\n".join(lines)


def _reads_before(fn: ast.FunctionDef, attr: str, line: int) -> bool:
    """Whether ``fn`` reads ``self.<attr>`` on a line before ``line`` (or on it, as a value)."""
    return any(isinstance(n, ast.Attribute) and n.attr == attr and isinstance(n.ctx, ast.Load)
               and n.lineno <= line for n in ast.walk(fn))


def _fold_once(text: str, fixed: dict[str, Any], decided: set[str]) -> str | None:
    tree = syntax.parse(text)
    folder, lines = _Folder(text, fixed), text.split("\n")
    strings = _multiline_strings(tree)
    blocks = {id(s): block for n in ast.walk(tree)
              for block in (getattr(n, f, None) for f in ("body", "orelse", "finalbody"))
              if isinstance(block, list) for s in block}
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and \
                fixed.get(_dotted(node.value.func), None) is NO_OP and \
                all(_pure(a) for a in node.value.args) and node.lineno == node.end_lineno and \
                lines[node.lineno - 1].strip() == ast.get_source_segment(text, node):
            alone = len(blocks.get(id(node), [])) == 1
            indent = lines[node.lineno - 1][:node.col_offset]
            return "\n".join([*lines[:node.lineno - 1], *([f"{indent}pass"] if alone else []),
                              *lines[node.lineno:]])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                fixed.get(node.func.id, None) is IDENTITY and len(node.args) == 1 and \
                not node.keywords and not isinstance(node.args[0], ast.Starred):
            arg = node.args[0]
            inner = ast.get_source_segment(text, arg) or ""
            atom = isinstance(arg, (ast.Call, ast.Attribute, ast.Subscript, ast.Name,
                                    ast.Constant)) and "\n" not in inner
            return _replace_span(text, node, inner if atom else f"({inner})")
        if isinstance(node, ast.While):  # only shortened: `while a and not False` -> `while a`
            t, kept = folder.truth(node.test)
            if kept:
                decided |= {k for n in ast.walk(node.test)
                            if (k := setting_read(n)) is not None and k in fixed}
                return _replace_span(text, node.test, _join(folder, node.test, kept))
            continue
        if not isinstance(node, (ast.IfExp, ast.If)):
            continue
        t, kept = folder.truth(node.test)
        first, last = node.lineno, node.end_lineno or node.lineno
        if (t is None and not kept) or (isinstance(node, ast.If) and (
                node.body[0].lineno == node.lineno  # `if x: y` on one line
                or any(first <= a and b <= last for a, b in strings))):  # dedent changes a string
            continue
        decided |= {k for n in ast.walk(node.test)
                    if (k := setting_read(n)) is not None and k in fixed}
        if kept:  # `a or False` -> `a`: the test stays, shorter
            return _replace_span(text, node.test, _join(folder, node.test, kept))
        if isinstance(node, ast.IfExp):
            return _replace_span(text, node, folder.segment(node.body if t else node.orelse))
        assert isinstance(node, ast.If)
        is_elif = lines[first - 1].lstrip().startswith("elif")
        indent = lines[first - 1][:len(lines[first - 1]) - len(lines[first - 1].lstrip())]
        other = _else_line(node, lines)
        body_start = (node.test.end_lineno or node.lineno) + 1
        body_end = _lines_of(node.body)[1]
        if t:
            kept_lines = _dedent(lines[body_start - 1:body_end], node.body[0].col_offset
                                 - node.col_offset)
            if is_elif:  # `elif True:` is the last branch: an `else:`
                kept_lines = [f"{indent}else:", *lines[body_start - 1:body_end]]
            elif isinstance(node.body[-1], (ast.Return, ast.Raise, ast.Continue, ast.Break)):
                block = blocks.get(id(node), [node])  # what follows it can no longer run
                last = max(last, block[-1].end_lineno or last)
        elif other is None:
            kept_lines = [] if is_elif or len(blocks.get(id(node), [])) > 1 else [f"{indent}pass"]
        elif lines[other - 1].lstrip().startswith("elif"):
            kept_lines = [lines[other - 1].replace("elif", "if" if not is_elif else "elif", 1),
                          *lines[other:last]]
        elif is_elif:
            kept_lines = lines[other - 1:last]
        else:
            kept_lines = _dedent(lines[other:last], node.orelse[0].col_offset - node.col_offset)
        return "\n".join([*lines[:first - 1], *kept_lines, *lines[last:]])
    return None


def _join(folder: _Folder, test: ast.AST, kept: list[ast.AST]) -> str:
    """The operands of an ``and``/``or`` test that are still open, joined again."""
    if len(kept) == 1:
        text = ast.get_source_segment(folder.text, kept[0]) or ""
        return f"({text})" if "\n" in text else text
    op = " and " if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else " or "
    return op.join(folder.segment(k) for k in kept)


def _fold_option(text: str, options: dict, decided: set[str]) -> str | None:
    """One ``option_number(options, "key", literals...)`` call replaced by the checked value
    (a bad option raises its DataError here, at export; ``decided`` gets ``"key=value"``), or a
    cast of a literal of its own type (``int(2000)``) by the literal; None when none is left."""
    from .data.common import option_number

    for node in ast.walk(syntax.parse(text)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        args = [*node.args, *(k.value for k in node.keywords)]
        if node.func.id in _CASTS and len(node.args) == 1 and not node.keywords and \
                isinstance(node.args[0], ast.Constant) and \
                type(node.args[0].value) is _CASTS[node.func.id]:
            return _replace_span(text, node, repr(node.args[0].value))
        if node.func.id != "option_number" or not node.args or \
                getattr(node.args[0], "id", None) != "options" or \
                any(k.arg is None for k in node.keywords):
            continue
        try:
            values = [ast.literal_eval(a) for a in args[1:]]
        except (ValueError, TypeError, SyntaxError):
            continue  # a default computed at run time (``2000 if size <= 32 else 1000``)
        keywords = dict(zip((k.arg for k in node.keywords),
                            values[len(node.args) - 1:], strict=True))
        value = option_number(options, *values[:len(node.args) - 1], **keywords)
        decided.add(f"dataset option {values[0]}={value!r}")
        return _replace_span(text, node, repr(value))
    return None
