"""Parsing and compiling Python source, one thread at a time.

CPython 3.11 keeps the AST constructor's recursion depth in interpreter-wide state, so two threads
calling ``ast.parse`` at once can fail with "SystemError: AST constructor recursion depth mismatch"
(python/cpython gh-106905). The app parses generated code in its analysis worker while the window
thread exports or builds, so every parse and compile of the project's own code goes through this
lock. A leaf module: nodes, compiler and training all use it.
"""

from __future__ import annotations

import ast
import threading
from types import CodeType

#: Held around every parse; take it too around library calls that parse (numpy's .npy header).
PARSE_LOCK = threading.RLock()
_LOCK = PARSE_LOCK


def parse(text: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse`` under the lock."""
    with _LOCK:
        return ast.parse(text, filename)


def compile_module(text: str, filename: str) -> CodeType:
    """``compile(text, filename, "exec")`` under the lock."""
    with _LOCK:
        return compile(text, filename, "exec")


def literal(text: str) -> object:
    """``ast.literal_eval`` (which parses) under the lock: values typed into forms and read from
    data files."""
    with _LOCK:
        return ast.literal_eval(text)
