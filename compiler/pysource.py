"""Python source text from data: safe identifiers, inert project text, literals, line layout.

Everything project text or parameter values become inside generated code passes through here:
names through :class:`Namespace`, docstrings and comments through :func:`escape_text`, values
through :func:`literal`. :func:`layout_call` breaks a long call the way ``ruff format`` does, so
an exported ``model.py`` is already formatted.
"""

from __future__ import annotations

import builtins
import functools
import keyword
import math
import pprint
import re
from dataclasses import dataclass
from typing import Any, Iterable, Union

#: Names generated code defines or imports at module level; never a variable or attribute.
RESERVED = {"self", "torch", "nn", "F", "Tensor", "math", "super", "forward", "layer", "Graph",
            "NamedTuple", "annotations", "NETWORKS", "_"}
LINE_LENGTH = 100


class CodegenError(Exception):
    """The project has errors; codegen refuses rather than emit code that cannot run."""


# -- the one escaping path for project text ------------------------------------------------------


def escape_text(text: str) -> str:
    """One line of project text made inert inside a docstring or a comment.

    Backslashes and double quotes are escaped, and every character that is not printable (control
    characters incl. NUL, every line-break kind Python or ``str.splitlines`` knows — ``\\r``,
    ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028``, ``\\u2029`` —, bidi
    overrides, lone surrogates) is written as its escape sequence, so no content can end the
    string or comment it is put in, nor hide text from a reader's tools.
    """
    out: list[str] = []
    for ch in str(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1] if ch != "'" else ch)
    return "".join(out)


def docstring(text: str, indent: str) -> str:
    """A triple-quoted docstring of project text that no content can end (see escape_text).

    Real newlines stay line breaks (inside a triple-quoted string they cannot end it); each line
    is escaped on its own.
    """
    lines = [escape_text(line).rstrip() for line in str(text).split("\n")]
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    body = "\n".join([lines[0]] + [indent + line if line else "" for line in lines[1:]])
    return f'{indent}"""{body}"""'


def comment(text: str) -> str:
    """Project-derived text (shape labels, port names) for a ``# ...`` comment: one line, inert."""
    return escape_text(text)


_BUILTINS = frozenset(dir(builtins))


def helper_names() -> set[str]:
    """Names of the helper classes and functions generated code may define."""
    from nodes.base import HELPERS

    return set(HELPERS)


@functools.cache
def _module_attrs() -> frozenset[str]:
    """Every attribute of nn.Module: a submodule or variable of that name would shadow it."""
    from torch import nn

    return frozenset(dir(nn.Module)) | {"training", "forward", "_modules", "_parameters"}


class Namespace:
    """Makes identifiers safe and unique (one namespace per scope).

    Reserved in every scope: nn.Module's attributes (``to``, ``training``, ``parameters`` ...),
    keywords and soft keywords, builtins, the generated module's own imports and helpers; callers
    add the generated class names.
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.used: set[str] = set(reserved) | RESERVED | helper_names() | _module_attrs()

    def create(self, candidate: str, *, camel: bool = False) -> str:
        name = camel_case(candidate) if camel else snake_case(candidate)
        if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in _BUILTINS:
            name += "_"
        base, i = name, 1
        while name in self.used:
            name = f"{base}_{i}"
            i += 1
        self.used.add(name)
        return name

    def reserve(self, name: str) -> None:
        self.used.add(name)


def snake_case(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text.strip())
    text = re.sub(r"[^0-9a-zA-Z_]+", "_", text).strip("_").lower()
    text = re.sub(r"_+", "_", text)
    if not text:
        text = "v"
    if text[0].isdigit():
        text = "n" + text
    return text


def camel_case(text: str) -> str:
    parts = re.split(r"[^0-9a-zA-Z]+", text.strip())
    name = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not name:
        name = "Net"
    if name[0].isdigit():
        name = "Net" + name
    return name


def literal(value: Any) -> str:
    """Python source for a parameter value: only plain data, each piece via ``repr``.

    Anything that is not None/bool/int/float/str or a tuple/list/dict of them is refused, so no
    object's own ``__repr__`` can put code into the module; non-finite floats become
    ``float('inf')`` (``repr`` would give the undefined name ``inf``).
    """
    if type(value) is str:
        return str_literal(value)
    if value is None or type(value) in (bool, int):
        return repr(value)
    if isinstance(value, bool):
        return repr(bool(value))
    if isinstance(value, int):
        return repr(int.__int__(value))
    if isinstance(value, str):
        return str_literal(str.__str__(value))
    if isinstance(value, float):
        value = float(value)
        return repr(value) if math.isfinite(value) else f'float("{value!r}")'
    if isinstance(value, tuple):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise CodegenError(f"bug in Layerloom: cannot write a {type(value).__name__} value into "
                       "generated code; please report it")


def _plain(value: Any) -> bool:
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) in (list, tuple):
        return all(_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def data_literal(value: Any, width: int = 100) -> str:
    """A readable (pprint) Python literal of JSON-like data; the strict :func:`literal` when the
    data holds anything pprint's repr could not round-trip (non-finite floats, subclasses)."""
    return pprint.pformat(value, width=width, sort_dicts=False) if _plain(value) else literal(value)


def str_literal(text: str) -> str:
    """``repr`` of a str in double quotes (ruff format's style) when that needs no new escapes."""
    r = repr(text)
    if r.startswith("'") and '"' not in text:
        r = '"' + r[1:-1].replace("\\'", "'") + '"'
    return r


# -- layout --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallExpr:
    """A call kept as parts, so a statement that is too long can be broken between arguments."""

    func: str
    args: tuple["Expr", ...]
    #: location marks (see codegen) that belong to this argument's line once broken
    tag: str = ""


@dataclass(frozen=True)
class Repeat:
    """``*[item for _ in range(n)]``: n equal submodules inside a Sequential; unstarred
    (``star=False``), the list a ModuleList takes."""

    item: "Expr"
    n: int
    tag: str = ""
    star: bool = True


Expr = Union[str, CallExpr, Repeat]

_TAG = re.compile("\x00[0-9]+\x00")


def width(text: str) -> int:
    """Length of a line as the reader sees it: location marks take no room."""
    return len(_TAG.sub("", text))


def flat(expr: Expr) -> str:
    if isinstance(expr, str):
        return expr
    if isinstance(expr, Repeat):
        star = "*" if expr.star else ""
        return f"{star}[{flat(expr.item)} for _ in range({expr.n})]" + expr.tag
    return f"{expr.func}({', '.join(flat(a) for a in expr.args)})" + expr.tag


def _tags(expr: Expr) -> str:
    if isinstance(expr, str):
        return "".join(_TAG.findall(expr))
    inner = "".join(_tags(a) for a in expr.args) if isinstance(expr, CallExpr) else _tags(expr.item)
    return inner + expr.tag


def layout(expr: Expr, indent: int, prefix: str, suffix: str = "") -> list[str]:
    """``prefix + expr + suffix`` as lines of at most LINE_LENGTH, broken as ruff format does:
    on one line if it fits; else the arguments on one indented line; else one per line with a
    trailing comma (each broken again where it must)."""
    pad = " " * indent
    one = pad + prefix + flat(expr) + suffix
    if width(one) <= LINE_LENGTH or isinstance(expr, str):
        return [one]
    inner = " " * (indent + 4)
    if isinstance(expr, Repeat):
        head = pad + prefix + ("*[" if expr.star else "[")
        body = layout(expr.item, indent + 4, "")
        loop = f"{inner}for _ in range({expr.n})"
        return [head] + body + [loop, pad + "]" + suffix + expr.tag]
    head = pad + prefix + expr.func + "("
    close = pad + ")" + suffix
    if expr.args:
        hug = inner + ", ".join(flat(a) for a in expr.args)
        starred = any(isinstance(a, Repeat) and a.star for a in expr.args)
        if width(hug) <= LINE_LENGTH and not starred:
            return [head + expr.tag, hug, close]
    lines = [head + expr.tag]
    for a in expr.args:
        lines += layout(a, indent + 4, "", ",")
    return lines + [close]


def layout_def(indent: int, name: str, params: list[str], returns: str) -> list[str]:
    """A ``def`` line, broken like a call when it is too long."""
    pad = " " * indent
    one = f"{pad}def {name}({', '.join(params)}) -> {returns}:"
    if width(one) <= LINE_LENGTH:
        return [one]
    inner = " " * (indent + 4)
    hug = inner + ", ".join(params)
    if width(hug) <= LINE_LENGTH:
        return [f"{pad}def {name}(", hug, f"{pad}) -> {returns}:"]
    return [f"{pad}def {name}("] + [f"{inner}{p}," for p in params] + [f"{pad}) -> {returns}:"]
