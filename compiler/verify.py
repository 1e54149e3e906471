"""The last gate before generated text runs or lands: refuse anything the generator does not write.

It does not depend on how the text was made (``compiler.build`` and every exporter call it), so a
bug or an injection anywhere upstream is stopped here, reported with the node whose line it is.
"""

from __future__ import annotations

import ast

from nodes import syntax

from .pysource import CodegenError, escape_text

_IMPORTS = {("__future__", "annotations"), ("typing", "NamedTuple"), ("torch", "Tensor"),
            ("torch", "nn")}
_PLAIN_IMPORTS = {"math", "torch", "torch.nn.functional"}
#: Names generated code never uses; seeing one means text got in that the generator did not write.
_FORBIDDEN_NAMES = {"__import__", "exec", "eval", "compile", "open", "globals", "locals", "vars",
                    "getattr", "setattr", "delattr", "breakpoint", "input", "__builtins__",
                    "memoryview"}


def verify_source(text: str, node_lines: dict[tuple[str, str], list[int]] | None = None) -> None:
    """Refuse generated text that is not the shape the generator writes, before it runs or lands.

    A last gate that does not depend on how the text was made: every character printable (or a
    newline), the module parses, its top level holds only the known imports, class and helper
    definitions, plain assignments and the ``NETWORKS`` table, class bodies only a docstring,
    annotations and methods, and no name that generated code never uses. A failure is a bug in
    Layerloom, reported with the node whose line it is when known.
    """
    where = _line_owners(node_lines or {})
    for i, line in enumerate(text.split("\n"), start=1):
        bad = next((ch for ch in line if not ch.isprintable()), None)
        if bad is not None:
            _refuse(f"line {i} holds the raw control character {bad!r}", i, where)
    try:
        tree = syntax.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        lineno = getattr(err, "lineno", None)
        _refuse(f"it does not parse ({type(err).__name__}: {getattr(err, 'msg', err)})", lineno,
                where)
    for k, stmt in enumerate(tree.body):
        if k == 0 and _is_docstring(stmt):
            continue
        if isinstance(stmt, ast.ImportFrom):
            ok = stmt.level == 0 and all((stmt.module, a.name) in _IMPORTS and a.asname is None
                                         for a in stmt.names)
        elif isinstance(stmt, ast.Import):
            ok = all(a.name in _PLAIN_IMPORTS for a in stmt.names)
        elif isinstance(stmt, ast.ClassDef):
            ok = _class_ok(stmt)
        elif isinstance(stmt, ast.FunctionDef):
            ok = _function_ok(stmt)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            ok = all(isinstance(t, ast.Name) for t in targets)
        else:
            ok = False
        if not ok:
            _refuse(f"unexpected top-level {type(stmt).__name__} statement", stmt.lineno, where)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _FORBIDDEN_NAMES:
            _refuse(f"it uses the name {node.id!r}", node.lineno, where)
        if (isinstance(node, ast.Attribute) and node.attr.startswith("__")
                and node.attr != "__init__"):
            _refuse(f"it reads the attribute {node.attr!r}", node.lineno, where)


def _is_docstring(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def _function_ok(fn: ast.FunctionDef) -> bool:
    """No decorators, and defaults that are constants: nothing of a def runs when it is made."""
    defaults = [*fn.args.defaults, *(d for d in fn.args.kw_defaults if d is not None)]
    return not fn.decorator_list and all(_constant(d) for d in defaults)


def _constant(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand)
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_constant(e) for e in node.elts)
    return isinstance(node, ast.Constant)


def _class_ok(cls: ast.ClassDef) -> bool:
    """Bases are plain (dotted) names; the body only a docstring, field annotations and methods."""
    if cls.decorator_list or cls.keywords:
        return False
    if not all(isinstance(b, (ast.Name, ast.Attribute)) for b in cls.bases):
        return False
    for k, stmt in enumerate(cls.body):
        if k == 0 and _is_docstring(stmt):
            continue
        if isinstance(stmt, ast.FunctionDef) and _function_ok(stmt):
            continue
        if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                and (stmt.value is None or _constant(stmt.value))):
            continue
        return False
    return True


def _line_owners(node_lines: dict[tuple[str, str], list[int]]) -> dict[int, tuple[str, str]]:
    return {line: key for key, lines in node_lines.items() for line in lines}


def _refuse(what: str, lineno: int | None, where: dict[int, tuple[str, str]]) -> None:
    owner = where.get(lineno) if lineno is not None else None
    node = f" (from node '{escape_text(owner[1])}' in '{escape_text(owner[0])}')" if owner else ""
    raise CodegenError(f"bug in Layerloom's code generator: the generated module was refused "
                       f"because {what}{node}, at line {lineno}. Nothing was run or written; "
                       "please report this with the project file.")
