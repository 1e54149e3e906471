"""Export a project as code a person would write: ``model.py``, ``train.py``, a README, an sbatch.

``train.py`` holds only what this project uses, copied by source from the modules the app trains
with: its dataset's loader, its recipe, the engine pieces those call, and the entry point
(:mod:`training.standalone`). Which pieces are used is found on the syntax trees: from the roots
(``main``, the recipe class, the loader) every name a piece reads pulls in the top-level piece of
that name, and a shared class (``Recipe``, ``Data``, ...) keeps only the methods some included
code names. Tests of the settings the script's command line cannot change (the optimiser, the
schedule, clipping, ...) are decided on the way (:mod:`.fold`), so only the branches this project
takes are copied, and the pieces only those branches named (``lr_shape``) stay out; so are the
facts :func:`_facts` proves of the data (its options, a fitting that changes nothing). Imports go to
the top (only those used), the settings the copied code still reads become one readable
``CONFIG`` literal (each value through ``repr``), and the file reads top to bottom: config, data,
model, loop, main. :func:`export_project` is the one export service of the CLI and the app.
"""

from __future__ import annotations

import ast
import copy
import importlib
import math
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from compiler import Project, analyze, generate
from compiler.codegen import CodegenError, PythonSource, escape_text, verify_source
from compiler.project import atomic_write_bytes, atomic_write_text
from compiler.pysource import str_literal
from nodes import syntax

from . import recipes
from .data import BUILTIN, Data, DataError, load
from .data.builtin import DATA_DIR
from .engine import Hooks, Recipe, convolutional
from .fold import (
    HAS,
    IDENTITY,
    MISSING,
    NO_OP,
    OPTIONS,
    Returns,
    fold,
    setting_read,
    written_settings,
)
from .plan import Plan, PlanError, prepare

ENGINE = "training.engine"
DATA_MODULES = ("training.data.common", "training.data.builtin", "training.data.files")
MAIN = "training.standalone"
#: names the export writes itself: the entry point's placeholders (between its local-import
#: markers) and the data files' folder, which in train.py is the script's own
GENERATED = ("CONFIG", "INPUTS", "RECIPE", "load_data", "model", "DATA_DIR")
DATA_DIR_TEXT = ("# the data files Layerloom wrote beside this script\n"
                 "DATA_DIR = os.path.dirname(os.path.abspath(__file__))\n\n\n")
#: the modules train.py imports from its own folder (isort's first-party section)
LOCAL_MODULES = frozenset({"model"})
#: a recipe's class attributes that only the app reads (the Training panel, the plan)
RECIPE_METADATA = frozenset({"name", "defaults", "metric", "optional_networks", "alternatives"})
#: settings read by the entry point and the loop whatever the recipe
ALWAYS = ("seed", "device", "optimize", "batch_size", "steps", "epochs", "log_every", "log_min_s",
          "eval_every", "lr", "weight_decay", "amp")
#: settings the script's command line sets (its flags), so tests of them are never folded
COMMAND_LINE = frozenset({"steps", "epochs", "device", "optimize"})


@dataclass
class Piece:
    """One top-level statement of a module: a def, a class or an assignment."""

    module: str
    name: str
    node: ast.stmt
    lines: list[str]
    prunable: bool = False  # a shared class: keep only the methods that included code names
    overridden: frozenset[str] = frozenset()  # members left out: replaced, or the app's only

    def text(self, names: set[str], fixed: dict[str, Any] | None = None,
             decided: set[str] | None = None) -> str:
        """The piece's source, methods no one names left out, docstrings cut to one summary
        line: the rest explains Layerloom's design, not the user's script.
        With ``fixed`` (settings the script cannot change), tests of them folded (:mod:`.fold`);
        the settings those tests read go to ``decided``."""
        text = _short_docstrings(self._text(names))
        return fold(text, fixed, decided) if fixed else text

    def _text(self, names: set[str]) -> str:
        start = min([self.node.lineno, *[d.lineno for d in getattr(self.node, "decorator_list",
                                                                      [])]])
        if not (self.prunable and isinstance(self.node, ast.ClassDef)):
            return "\n".join(self.lines[start - 1:self.node.end_lineno])
        body = self.node.body
        out = self.lines[start - 1:body[0].lineno - 1]
        kept = [s for s in body if _keep(s, names)
                and not ({getattr(s, "name", "")} | _attributes_of(s)) & self.overridden]
        for i, stmt in enumerate(kept):
            first = min([stmt.lineno, *[d.lineno for d in getattr(stmt, "decorator_list", [])]])
            block = self.lines[first - 1:stmt.end_lineno]
            if i and (not self.lines[first - 2].strip() or isinstance(stmt, ast.FunctionDef)
                      or _is_docstring(kept[i - 1])):
                out.append("")  # the blank lines of the source, between methods at least
            out.extend(block)
        return "\n".join(out)


def _attributes_of(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return {t.id for t in targets if isinstance(t, ast.Name)}
    return set()


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and \
        isinstance(stmt.value.value, str)


def _short_docstrings(text: str) -> str:
    """Each def's and class's docstring as one summary line: its first sentence, without its
    remarks in parentheses when that is what makes it fit 100 columns; else its first
    paragraph."""
    lines = text.split("\n")
    cuts = []
    for node in ast.walk(syntax.parse(text)):
        body = getattr(node, "body", None)
        if not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and _is_docstring(body[0])):
            continue
        first, last = body[0].lineno - 1, body[0].end_lineno - 1
        if not lines[first].lstrip().startswith('"""') or first == last:
            continue
        end = next((i for i in range(first + 1, last) if not lines[i].strip()), last)
        indent = lines[first][:len(lines[first]) - len(lines[first].lstrip())]
        paragraph = " ".join(x.strip() for x in lines[first:end + 1]).strip()[3:]
        paragraph = paragraph.removesuffix('"""').strip()
        one = _summary(paragraph, 100 - len(indent) - 6)
        if one is not None:
            cuts.append((first, last, [f'{indent}"""{one}"""']))
        elif end < last:  # the first paragraph, closed where it ends
            tail = [lines[end - 1] + '"""'] if len(lines[end - 1]) < 98 else \
                [lines[end - 1], indent + '"""']
            cuts.append((first, last, [*lines[first:end - 1], *tail]))
    for first, last, new in sorted(cuts, reverse=True):
        lines[first:last + 1] = new
    return "\n".join(lines)


def _summary(paragraph: str, width: int) -> str | None:
    """The first sentence of a paragraph if it fits ``width``, its parenthesised remarks and
    then its clauses after a semicolon left out where needed; None when it does not fit."""
    sentence = re.split(r"(?<=[.!?])\s", paragraph, maxsplit=1)[0]
    if len(sentence) > width:
        sentence = re.sub(r" \([^()]*\)", "", sentence)
    clauses = sentence.split("; ")
    while len(sentence) > width and len(clauses) > 1:
        clauses.pop()
        sentence = "; ".join(clauses) + "."
    return sentence if len(sentence) <= width and "\\" not in sentence else None


def _keep(stmt: ast.stmt, names: set[str]) -> bool:
    """Whether a class body keeps a statement: a method or class attribute that included code
    names (the app's metadata, such as a recipe's ``defaults``, stays out), dunders, the rest."""
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return any(isinstance(t, ast.Name) and t.id in names for t in targets)
    if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return True  # the docstring
    return stmt.name.startswith("__") or stmt.name in names


def _methods(cls: ast.ClassDef) -> set[str]:
    return {s.name for s in cls.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _attributes(cls: ast.ClassDef) -> set[str]:
    """The class attributes a class body sets (``name = ...``, ``networks: dict = ...``)."""
    targets = [t for s in cls.body if isinstance(s, ast.Assign) for t in s.targets] + \
        [s.target for s in cls.body if isinstance(s, ast.AnnAssign)]
    return {t.id for t in targets if isinstance(t, ast.Name)}


@dataclass
class Module:
    name: str
    pieces: dict[str, Piece] = field(default_factory=dict)
    imports: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)  # outside ones
    local: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, name)


_MODULES: dict[str, Module] = {}


def _module(name: str) -> Module:
    """A module's pieces, imports and local imports, parsed once."""
    if name in _MODULES:
        return _MODULES[name]
    path = Path(importlib.import_module(name).__file__ or "")
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    mod = Module(name)
    package = name.rsplit(".", 1)[0]
    for stmt in syntax.parse(source).body:
        if isinstance(stmt, ast.ImportFrom):
            target = stmt.module or ""
            if stmt.level:
                target = ".".join(package.split(".")[:len(package.split(".")) - stmt.level + 1]
                                  + ([target] if target else []))
            for a in stmt.names:
                bound = a.asname or a.name
                if target == "__future__":
                    continue
                if target.split(".")[0] == "training":
                    mod.local[bound] = (target, a.name)
                else:
                    mod.imports[bound] = ("from", target, a.name if a.asname is None
                                          else f"{a.name} as {a.asname}")
        elif isinstance(stmt, ast.Import):
            for a in stmt.names:
                mod.imports[a.asname or a.name.split(".")[0]] = (
                    "import", a.name, a.asname)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            mod.pieces[stmt.name] = Piece(name, stmt.name, stmt, lines,
                                          isinstance(stmt, ast.ClassDef))
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                for n in ([t] if isinstance(t, ast.Name) else getattr(t, "elts", [])):
                    if isinstance(n, ast.Name):
                        mod.pieces.setdefault(n.id, Piece(name, n.id, stmt, lines))
    _MODULES[name] = mod
    return mod


def _refs(tree: ast.AST) -> tuple[set[str], set[str], set[str]]:
    """(names read, attribute names read, string constants) in a piece; a string given to
    getattr or hasattr counts as an attribute name too. An attribute only written
    (``self.kind = kind``) names nothing: a class attribute of that name is never read."""
    names, attrs, strings = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            if not isinstance(node.ctx, ast.Store):
                attrs.add(node.attr)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Attribute):
            attrs.add(node.target.attr)  # ``self.n += 1`` reads it too
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.add(node.value)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("getattr", "hasattr") \
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            attrs.add(str(node.args[1].value))
    return names, attrs, strings


class _Shaker:
    """The closure of the pieces reachable from the roots, methods pruned to the names used."""

    def __init__(self, provided: dict[str, str], fixed: dict[str, Any]) -> None:
        self.provided = provided  # generated names -> their source
        self.fixed = fixed  # settings whose tests are folded
        self.decided: set[str] = set()  # those some test of the chosen code read
        self.chosen: dict[tuple[str, str], Piece] = {}
        self.imports: set[tuple[str, str, str | None]] = set()
        self.attrs: set[str] = set()  # every attribute name the chosen code holds
        self.strings: set[str] = set()  # and every string constant (the settings it reads)

    def resolve(self, module: str, name: str) -> Piece | None:
        if name in self.provided:  # the export writes these itself
            return None
        mod = _module(module)
        if name in mod.pieces:
            return mod.pieces[name]
        if name in mod.local:
            return self.resolve(*mod.local[name])
        return None

    def run(self, roots: list[Piece]) -> list[Piece]:
        todo = list(roots)
        attrs = self.attrs
        while True:
            while todo:
                piece = todo.pop()
                key = (piece.module, piece.name)
                if key in self.chosen:
                    continue
                self.chosen[key] = piece
                self._follow(piece, todo, attrs)
            # a pruned class may now need more methods: re-read the kept text until stable
            before = len(attrs)
            for piece in list(self.chosen.values()):
                if piece.prunable:
                    self._follow(piece, todo, attrs)
            if len(attrs) == before and not todo:
                return list(self.chosen.values())

    def _follow(self, piece: Piece, todo: list[Piece], attrs: set[str]) -> None:
        tree = syntax.parse(piece.text(attrs, self.fixed, self.decided))
        names, more, strings = _refs(tree)
        attrs |= more
        self.strings |= strings
        mod = _module(piece.module)
        for n in names:
            if n in mod.imports:
                self.imports.add(mod.imports[n])
            found = self.resolve(piece.module, n)
            if found is not None and (found.module, found.name) not in self.chosen and \
                    not any(c.node is found.node for c in self.chosen.values()):
                todo.append(found)


# ---- the generated pieces ---------------------------------------------------------------------


def py_literal(value: Any, indent: int = 0) -> str:
    """Plain data as Python source (None, bool, int, float, str, list, tuple, dict), each
    scalar via ``repr``; anything else is refused, so no object's ``__repr__`` reaches the file.
    A dict whose one-line form is long is written one key a line."""
    if value is None or isinstance(value, bool):
        return repr(bool(value)) if value is not None else "None"
    if isinstance(value, int):
        return repr(int.__int__(value))
    if isinstance(value, float):
        value = float(value)
        return repr(value) if math.isfinite(value) else f'float("{value!r}")'
    if isinstance(value, str):
        return str_literal(str.__str__(value))
    if isinstance(value, (list, tuple)):
        items = [py_literal(v, indent + 4) for v in value]
        if isinstance(value, tuple):
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        return "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        items = [f"{py_literal(k)}: {py_literal(v, indent + 4)}" for k, v in value.items()]
        one = "{" + ", ".join(items) + "}"
        if len(one) + indent < 80 or not items:
            return one
        pad = " " * (indent + 4)
        return "{\n" + "".join(f"{pad}{i},\n" for i in items) + " " * indent + "}"
    raise CodegenError(f"bug in Layerloom: cannot write a {type(value).__name__} value into "
                       "train.py")


#: how ``CONFIG`` is laid out: one topic a line (wrapped when long), the recipe's own settings last
CONFIG_TOPICS = (
    ("project", "dataset", "networks", "dataset_options"),
    ("optimizer", "lr", "betas", "momentum", "weight_decay", "schedule", "warmup_steps",
     "step_size", "gamma", "grad_clip"),
    ("batch_size", "epochs", "steps", "log_every", "log_min_s", "eval_every", "max_val_samples"),
    ("seed", "device", "amp", "optimize", "compile"),
)


def config_literal(config: dict) -> str:
    """``CONFIG``'s dict literal, the settings of one topic on a line (the run, the optimiser,
    the budget, the device, the recipe's own), as people lay out a config they read and edit:
    a 100-column line holds several short ones. Each key and value via :func:`py_literal`."""
    known = {k for topic in CONFIG_TOPICS for k in topic}
    topics = [*([k for k in topic if k in config] for topic in CONFIG_TOPICS),
              [k for k in config if k not in known]]
    lines: list[str] = []
    for keys in topics:
        line = ""
        for k in keys:
            item = f"{py_literal(k)}: {py_literal(config[k], 4)},"
            if line and (len(line) + 1 + len(item) > 96 or "\n" in item):
                lines.append(line)
                line = ""
            line = f"{line} {item}" if line else item
        if line:
            lines.append(line)
    return "{\n" + "".join(f"    {line}\n" for line in lines) + "}"


def applicable(hp: dict, code_strings: set[str]) -> dict:
    """The settings this run's code reads, without those its choices make moot."""
    keep = {k: v for k, v in hp.items() if k in ALWAYS or k in code_strings}
    moot = {"momentum": hp.get("optimizer") != "sgd", "betas": hp.get("optimizer") == "sgd",
            "step_size": hp.get("schedule") != "step", "gamma": hp.get("schedule") != "step",
            "warmup_steps": not hp.get("warmup_steps"), "compile": not hp.get("compile"),
            "max_val_samples": hp.get("max_val_samples") is None,
            "checkpoint_every": True, "eval_every": hp.get("eval_every") is None}
    return {k: v for k, v in keep.items() if not moot.get(k, False)}


def fixed_settings(hp: dict, recipe_module: str) -> dict[str, Any]:
    """The settings whose tests the export may decide (:mod:`.fold`): every scalar setting that
    neither the script's command line nor any code it may copy writes."""
    sources = [Path(importlib.import_module(m).__file__ or "").read_text(encoding="utf-8")
               for m in (ENGINE, MAIN, recipe_module, *DATA_MODULES)]
    kept = written_settings(sources) | COMMAND_LINE
    return {k: v for k, v in hp.items() if k not in kept
            and (v is None or isinstance(v, (bool, int, float, str)))}


def _loader(dataset: str) -> tuple[str, list[Piece]]:
    """The call that loads one dataset, of ``options`` and ``seed`` (``main``'s, in train.py): the
    loader its table names, with the table's fixed arguments (``"digits-flat": lambda o, s:
    digits(o, s, flat=True)``), and the pieces it names."""
    for modname, table in (("training.data.builtin", "BUILTIN"), ("training.data.files", "FILES")):
        mod = _module(modname)
        node = mod.pieces[table].node
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if not isinstance(value, ast.Dict):
            continue
        for k, v in zip(value.keys, value.values, strict=True):
            if isinstance(k, ast.Constant) and k.value == dataset:
                if isinstance(v, ast.Lambda):
                    a, b = (x.arg for x in v.args.args)
                    body = copy.deepcopy(v.body)  # the module's tree stays as it is
                    call = _unparse(_Rename({a: "options", b: "seed"}).visit(body))
                else:
                    call = f"{_unparse(copy.deepcopy(v))}(options, seed)"
                names = _refs(syntax.parse(call))[0]
                return call, [p for n in names if (p := mod.pieces.get(n) or _local(mod, n))]
    raise CodegenError(f"the dataset '{dataset}' has no loader to export",
                       "choose a dataset in the Train panel")


def _load_call(main_text: str, call: str, reads_options: bool) -> str:
    """``main`` with its ``load_data(hp["seed"])`` placeholder replaced by the loader's own call
    (``digits({}, hp["seed"], flat=True)``): the options from ``CONFIG`` when the loader still
    reads them, else none at all (every option was checked and written in at export)."""
    found = [n for n in ast.walk(syntax.parse(main_text)) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "load_data" and len(n.args) == 1]
    if len(found) != 1:
        raise CodegenError("bug in Layerloom: main must call load_data(seed) once")
    node = found[0]
    seed = ast.get_source_segment(main_text, node.args[0]) or "seed"
    options = 'CONFIG["dataset_options"]' if reads_options else "{}"
    names = {"options": "_layerloom_options_", "seed": "_layerloom_seed_"}
    call = _unparse(_Rename(names).visit(syntax.parse(call)))  # names to unparse, then text
    call = call.replace(names["options"], options).replace(names["seed"], seed)
    lines = main_text.split("\n")
    row = lines[node.lineno - 1].encode()
    if node.lineno != node.end_lineno:
        raise CodegenError("bug in Layerloom: main's load_data call must fit one line")
    lines[node.lineno - 1] = (row[:node.col_offset] + call.encode()
                              + row[node.end_col_offset:]).decode()
    return "\n".join(lines)


def _reads_options(pieces: list[Piece], texts: dict[str, str]) -> bool:
    """Whether some data piece still reads its ``options`` (after the export's folding): any use
    but passing them on to another of these pieces (``digits(options, seed)``)."""
    names = {p.name for p in pieces}
    for piece in pieces:
        tree = syntax.parse(texts[piece.name])
        passed = {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call)
                  and getattr(n.func, "id", None) in names for a in n.args}
        if any(isinstance(n, ast.Name) and n.id == "options" and id(n) not in passed
               for n in ast.walk(tree)):
            return True
    return False


def _local(mod: Module, name: str) -> Piece | None:
    if name in mod.local:
        target, orig = mod.local[name]
        return _module(target).pieces.get(orig)
    return None


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.copy_location(ast.Name(self.names.get(node.id, node.id), node.ctx), node)


class _DoubleQuoted(ast.NodeTransformer):
    """Strings as the rest of the file writes them (ruff format's double quotes): a constant
    becomes a name whose text is its literal, which ``ast.unparse`` writes as it stands."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) is not str:
            return node
        return ast.copy_location(ast.Name(str_literal(node.value), ast.Load()), node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node  # an f-string's parts are not literals of their own


def _unparse(node: ast.AST) -> str:
    """``ast.unparse`` in the file's one quote style (it alone would pick single quotes)."""
    return ast.unparse(_DoubleQuoted().visit(node))


def _import_lines(imports: set[tuple[str, str, str | None]]) -> str:
    """isort's order: __future__, standard library, third party, the script's own folder
    (``model``); plain imports, then from."""
    def section(module: str) -> int:
        if module in LOCAL_MODULES:
            return 2
        return 0 if module.split(".")[0] in sys.stdlib_module_names else 1

    def order(name: str) -> tuple:
        base = name.split(" as ")[0]
        kind = 0 if base.isupper() and len(base) > 1 else 1 if base[:1].isupper() else 2
        return kind, base.lower()

    blocks: list[list[str]] = [[], [], []]
    plain = sorted({(m, a) for k, m, a in imports if k == "import"})
    froms: dict[str, set[str]] = {}
    for k, m, a in imports:
        if k == "from":
            froms.setdefault(m, set()).add(a or "")
    for m, a in plain:
        blocks[section(m)].append(f"import {m}" + (f" as {a}" if a else ""))
    for m in sorted(froms):
        blocks[section(m)].append(f"from {m} import " + ", ".join(sorted(froms[m], key=order)))
    return "from __future__ import annotations\n\n" + "\n\n".join(
        "\n".join(b) for b in blocks if b) + "\n"


def _order(pieces: list[Piece], module: str) -> list[Piece]:
    mod = _module(module)
    rank = {name: i for i, name in enumerate(mod.pieces)}
    return sorted((p for p in pieces if p.module == module), key=lambda p: rank[p.name])


def _banner(title: str) -> str:
    return f"\n\n\n# {'-' * 4} {title} {'-' * (91 - len(title))}\n"


def train_script(project: Project) -> str:
    """The text of ``train.py`` for a project with a recipe and a dataset.

    A setting is decided only where that leaves no read of it in the script: a test folded to
    true keeps its branch, and when that branch reads the setting's value (``grad_clip``, a
    warm-up's length) the setting would stay in ``CONFIG`` with its "off" value no longer
    turning anything off (a clip of 0 clipping every gradient to zero). Such settings stay open,
    tests and all, and the script is written again."""
    return folded_script(project)[0]


def folded_script(project: Project) -> tuple[str, dict[str, Any]]:
    """:func:`train_script`'s text, and the settings its tests were folded with."""
    open_keys: set[str] = set()
    plan = prepare(project, load_data=False)
    try:
        facts = _facts(project, plan)
        for _ in range(8):  # each pass opens at least one setting; a recipe reads a few
            text, fixed, decided = _train_script(project, plan, facts, frozenset(open_keys))
            still = {k for n in ast.walk(syntax.parse(text))
                     if (k := setting_read(n)) is not None and k in decided}
            if not still:
                break
            open_keys |= still
    except DataError as err:  # a dataset option out of range: said now, not by a broken script
        raise PlanError(err.message, f"expected {err.expected}; change it in the Train panel"
                        if err.expected else "change the dataset options in the Train panel",
                        "data") from None
    return text, fixed


def _facts(project: Project, plan: Plan) -> dict[str, Any]:
    """What the export knows of this project beyond its settings, for :mod:`.fold`; each is proven
    here with the app's own code. The dataset's options (``option_number`` calls become the
    checked values). ``data.kind`` is "tensors" when the loader's pieces hold no other data
    class. ``first`` (the first of several outputs) hands back its argument when every network
    the recipe runs has one output: the recipes call it on those networks' outputs only (SSL's
    target copies are copies of them). ``convolutional`` (whether the optimised mode's conv-net
    kernels apply) is its answer for the recipe's networks; ``hooks.should_stop`` the base
    Hooks' answer (train.py's hooks; the runner's own can stop a run). ``recipe.graph`` says
    whether the recipe builds graph inputs (main then hands it model.py's Graph).
    ``recipe.adapt`` does nothing when the recipe keeps the base one and, run on the loaded
    data, it changes nothing: the data already has the network inputs' shapes (built-in
    datasets only: they load in a moment, a user's file may take long)."""
    t = project.training
    facts: dict[str, Any] = {OPTIONS: dict(t.dataset_options)}
    loader = _Shaker({}, facts).run(_loader(t.dataset or "")[1])
    kinds = {p.name for p in loader if isinstance(p.node, ast.ClassDef)
             and any(getattr(b, "id", None) == "Data" for b in p.node.bases)}
    if not kinds:
        facts["data.kind"] = Data.kind
    # no images or text to show: no sample code; else no test of it
    facts["recipe.samples"] = HAS if hasattr(plan.recipe_cls, "samples") else MISSING
    # graph data: main hands the recipe model.py's Graph only when the recipe's code calls graph()
    reads = set().union(*(_refs(_module(c.__module__).pieces[c.__name__].node)[1]
                          for c in plan.recipe_cls.__mro__ if issubclass(c, Recipe)
                          and c is not Recipe))
    facts["recipe.graph"] = HAS if "graph" in reads else MISSING
    facts["hooks.should_stop"] = Returns(Hooks().should_stop(0))  # train.py's: the base class
    networks = analyze(project).networks
    try:
        with torch.device("meta"):  # the modules' structure, without memory for their weights
            nets = {role: plan.built.instantiate(net) for role, net in plan.roles.items()}
        facts["convolutional"] = Returns(convolutional(nets))
    except Exception:  # noqa: BLE001 (a module that cannot be made on "meta": the test stays)
        pass
    if all(len(networks[net].outputs()) == 1 for net in plan.roles.values()):
        facts["first"] = IDENTITY  # model.py's forward returns its one output as it is
    if plan.recipe_cls.adapt is Recipe.adapt and t.dataset in BUILTIN:
        try:
            data = load(t.dataset, t.dataset_options, plan.hyper.seed)
        except DataError:
            return facts  # a data file missing here: the script keeps the general code
        recipe = SimpleNamespace(networks=plan.recipe_cls.networks, data=data)
        before, state = (data.train, data.val), dict(vars(recipe))
        try:
            Recipe.adapt(recipe, plan.input_specs)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 (the data do not fit: train.py says so, as the app does)
            return facts
        if data.train is before[0] and data.val is before[1] and vars(recipe) == state:
            facts["recipe.adapt"] = NO_OP
    return facts


def _train_script(project: Project, plan: Plan, facts: dict[str, Any],
                  open_keys: frozenset[str]) -> tuple[str, dict[str, Any], set[str]]:
    """The script with every fixed setting outside ``open_keys`` and the ``facts`` folded: the
    text, the settings and facts folded with and the settings some kept test read."""
    hp = plan.hyper.model_dump()
    t = project.training
    recipe_mod = recipes.module(plan.recipe_cls.name).__name__
    loader, loader_pieces = _loader(t.dataset or "")
    fixed = {k: v for k, v in fixed_settings(hp, recipe_mod).items() if k not in open_keys}
    fixed.update(facts)
    shaker = _Shaker({n: "" for n in GENERATED}, fixed)
    recipe_piece = _module(recipe_mod).pieces[plan.recipe_cls.__name__]
    base = _module(ENGINE).pieces["Recipe"]
    assert isinstance(recipe_piece.node, ast.ClassDef) and isinstance(base.node, ast.ClassDef)
    supers = {n.attr for n in ast.walk(recipe_piece.node) if isinstance(n, ast.Attribute)
              and isinstance(n.value, ast.Call) and getattr(n.value.func, "id", "") == "super"}
    base.overridden = frozenset((_methods(recipe_piece.node) | _attributes(recipe_piece.node))
                                - supers - {"__init__"}) | RECIPE_METADATA
    recipe_piece.overridden = RECIPE_METADATA
    main = _module(MAIN)
    roots = [recipe_piece, main.pieces["main"], *loader_pieces]
    chosen = shaker.run(roots)
    names = shaker.attrs
    data_pieces = [p for m in DATA_MODULES for p in _order(chosen, m)]
    reads = _reads_options(data_pieces, {p.name: p.text(shaker.attrs, fixed, shaker.decided)
                                         for p in data_pieces})
    if any(role != net for role, net in plan.roles.items()):  # main makes NETWORKS[role]
        raise CodegenError("bug in Layerloom: a recipe role names another network")
    config = {"project": project.name, "dataset": t.dataset, "networks": list(plan.roles)}
    if reads:
        config["dataset_options"] = dict(t.dataset_options)
    config.update({k: v for k, v in applicable(hp, shaker.strings).items() if v is not None})
    inputs = {k: [(tuple(d), dt) for d, dt in v] for k, v in plan.input_specs.items()}
    main_text = _load_call(main.pieces["main"].text(names, fixed, shaker.decided), loader, reads)
    inputs_text = "" if "INPUTS" not in _refs(syntax.parse(main_text))[0] else (
        "# each network's input shapes, which the recipe fits the data to\n"
        "INPUTS = " + py_literal(inputs) + "\n")  # not when the data fits them already
    recipe_refs = _refs(recipe_piece.node)[0] | {"Recipe"}
    engine = _order(chosen, ENGINE)
    # the constants the base recipe reads go with it (a recipe's module constants), not to the loop
    base_refs = _refs(syntax.parse(base.text(names, fixed, shaker.decided)))[0]
    recipe_refs |= {p.name for p in engine if p.name in base_refs
                    and isinstance(p.node, (ast.Assign, ast.AnnAssign))}
    model_side = [p for p in engine if p.name in recipe_refs]
    loop_side = [p for p in engine if p.name not in recipe_refs]
    if "Data" not in {p.name for p in data_pieces}:
        raise CodegenError("bug in Layerloom: the data loader exports without its Data class")
    shaker.imports.add(("import", "model", None))  # beside train.py: python puts it on the path

    cls = plan.recipe_cls.__name__
    # one recipe class, as a person writes it: the base's members go into the recipe's own class
    # when it calls no super() (its methods replace the base's, so the merge changes nothing)
    flat = [getattr(b, "id", "") for b in recipe_piece.node.bases] == ["Recipe"] and not supers \
        and "__init__" not in _methods(recipe_piece.node)
    if flat:
        model_side.remove(base)

    def text_of(piece: Piece) -> str:
        text = piece.text(names, fixed, shaker.decided)
        if flat and piece is recipe_piece:
            return _merged_class(text, base.text(names, fixed, shaker.decided),
                                 importlib.import_module(recipe_mod).__doc__ or "")
        return text

    def block(pieces: list[Piece]) -> str:
        return "\n\n\n".join(text_of(p) for p in pieces)

    doc = (f'"""Train {escape_text(project.name)}: the {escape_text(plan.recipe_cls.name)} '
           f"recipe on {escape_text(t.dataset or '')} (exported by Layerloom).\n\n"
           "    python train.py [--steps N | --epochs N] [--device cpu|cuda] [--optimize]\n"
           "    torchrun --nproc_per_node=2 train.py   # DistributedDataParallel\n\n"
           'Needs torch (and numpy for .npz/.npy data) and model.py beside it.\n"""\n\n')
    decided = ", ".join(f"{k}={py_literal(fixed[k])}" if k in fixed else k  # an option: said
                        for k in sorted(shaker.decided))
    decided = "".join(f"# {line}\n" for line in textwrap.wrap(
        "decided at export: only the code they choose is here (to change one, change it in "
        f"Layerloom and export again): {decided}", 97)) if decided else ""
    data_dir = DATA_DIR_TEXT if "DATA_DIR" in _refs(syntax.parse(block(data_pieces)))[0] else ""
    text = (doc + _import_lines(shaker.imports)
            + "\n" + decided + "CONFIG = " + config_literal(config) + "\n" + inputs_text
            + _banner("data") + data_dir + block(data_pieces)
            + _banner("model") + (block(model_side) + "\n\n\n" if model_side else "")
            + block(_order(chosen, recipe_mod))
            + _banner("loop") + block(loop_side)
            + _banner("main") + main_text
            + '\n\n\nif __name__ == "__main__":\n    sys.exit(main())\n')
    # main's placeholder, and the base class once merged, are the recipe's class by its name
    text = _rename(text, {"RECIPE": cls, **({"Recipe": cls} if flat else {})})
    return _join_signatures(re.sub(r"\n{4,}", "\n\n\n", text)), fixed, shaker.decided


def _merged_class(sub: str, base: str, module_doc: str) -> str:
    """The recipe class ``sub`` (``class X(Recipe):``) with the members of the base class's
    text ``base`` first, as one class without a base: a docstring (the recipe module's first
    sentence when the class has none), the base's attributes and methods, then the recipe's
    own."""
    def parts(text: str) -> tuple[list[str], str | None, list[str]]:
        node = syntax.parse(text).body[0]
        assert isinstance(node, ast.ClassDef)
        lines = text.split("\n")
        has_doc = _is_docstring(node.body[0])
        start = node.body[1 if has_doc else 0].lineno - 1
        while start > 0 and lines[start - 1].lstrip().startswith(("#", "@")):
            start -= 1  # a member's comments and decorators go with it
        doc = "\n".join(lines[node.body[0].lineno - 1:node.body[0].end_lineno]) if has_doc \
            else None
        return lines[:node.body[0].lineno - 1 if has_doc else start], doc, lines[start:]

    head, doc, own = parts(sub)
    _, _, inherited = parts(base)
    header = "\n".join(head).replace("(Recipe):", ":", 1).rstrip()
    paragraph = " ".join(module_doc.split("\n\n")[0].split())
    summary = _summary(paragraph, 90) or "The recipe: the loss, the step, the evaluation."
    doc = doc or f'    """{escape_text(summary)}"""'
    return "\n".join([header, doc, "", *inherited, "", *own]).rstrip()


def _join_signatures(text: str, width: int = 100) -> str:
    """Each ``def`` whose parameters the source wrapped, on one line when they fit there now (the
    engine's ``recipe: Recipe`` became a recipe's class name, shorter or longer), as ruff format
    writes it; a signature with a comment in it stays as written."""
    lines = text.split("\n")
    defs = sorted(((n.lineno, n.body[0].lineno) for n in ast.walk(syntax.parse(text))
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), reverse=True)
    for start, body in defs:
        head = lines[start - 1:body - 1]
        if len(head) < 2 or not head[-1].rstrip().endswith(":") or any("#" in x for x in head):
            continue
        joined = head[0].rstrip()
        for part in (x.strip() for x in head[1:]):
            if part.startswith((")", "]")):
                joined = joined.removesuffix(",")  # a trailing comma goes with the wrapping
            glue = "" if joined.endswith(("(", "[")) or part.startswith((")", "]")) else " "
            joined += glue + part
        if len(joined) <= width:
            lines[start - 1:body - 1] = [joined]
    return "\n".join(lines)


def _rename(text: str, names: dict[str, str]) -> str:
    """``text`` with every read of the names ``names`` maps (never an attribute, a string or a
    comment) renamed, in place: the layout stays as written."""
    lines = text.split("\n")
    spots = sorted(((n.lineno, n.col_offset, n.id) for n in ast.walk(syntax.parse(text))
                    if isinstance(n, ast.Name) and n.id in names), reverse=True)
    for row, col, old in spots:
        raw = lines[row - 1].encode()
        lines[row - 1] = (raw[:col] + names[old].encode() + raw[col + len(old):]).decode()
    return "\n".join(lines)


# ---- the files beside it ----------------------------------------------------------------------


README = """# {name}

Exported from Layerloom: plain PyTorch, yours to change.

* `model.py`: the network(s) (`NETWORKS` maps names to classes).
* `train.py`: the settings (`CONFIG`), the `{dataset}` data, the {recipe} recipe, the loop and
  `main`: the same code that trains in Layerloom.
* `train.sbatch`: the same on a SLURM cluster.{data}

```
pip install torch numpy
python train.py --steps 200        # or --epochs N; --device cuda; --out DIR
python train.py --optimize         # torch.compile, channels-last, fused optimisers
torchrun --nproc_per_node=2 train.py   # DistributedDataParallel (gloo on CPU, NCCL on CUDA)
```

`--optimize` compiles the model with `torch.compile` (a classifier's forward pass and loss as one
graph; the first step pays for it, once; a model it cannot compile trains eagerly and says why)
and turns on bf16 autocast where the device runs it faster (CUDA, and conv nets on a CPU with
AMX or AVX512-BF16), on CUDA also cudnn.benchmark and TF32 matmuls: faster, but the numbers
differ from an eager run. The trained weights go to `checkpoints/latest.pt`
(`{{"step", "nets": {{role: state_dict}}}}`, read with `torch.load(path, weights_only=True)`).

## On a SLURM cluster

`train.sbatch` runs one `torchrun` per node with `srun`; torchrun starts one process per GPU and
they meet at the first node (c10d rendezvous). Edit the `#SBATCH` lines (nodes, GPUs, time,
partition) for your cluster, then:

```
sbatch train.sbatch                # extra arguments go to train.py: ... --steps 5000
```

Each process trains on its share of every batch (the batch size in `CONFIG` is the global one);
rank 0 prints the progress and writes the checkpoint.
"""

SBATCH = """#!/bin/bash
#SBATCH --job-name={job}
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=16
#SBATCH --time=04:00:00
#SBATCH --output=%x-%j.out
# Train on 2 nodes x 4 GPUs: srun starts one torchrun per node, torchrun one process per GPU.
set -euo pipefail
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun torchrun --nnodes="$SLURM_NNODES" --nproc_per_node="$SLURM_GPUS_PER_NODE" \\
    --rdzv_id="$SLURM_JOB_ID" --rdzv_backend=c10d --rdzv_endpoint="$head:29500" \\
    train.py --device cuda "$@"
"""


def shipped_files(script: str) -> dict[str, bytes]:
    """The data files a train.py reads (``shipped("digits")``, ``tabular(options, seed,
    "iris")``): each shipped file named by a string inside one of the script's functions, when
    it loads any (the project's name in the docstring and ``CONFIG`` names no file)."""
    if "def shipped(" not in script:
        return {}
    functions = [n for n in syntax.parse(script).body if isinstance(n, ast.FunctionDef)]
    strings = {n.value for f in functions for n in ast.walk(f)
               if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return {p.name: p.read_bytes() for p in sorted(Path(DATA_DIR).glob("*.npz"))
            if p.stem in strings}


def export_project(project: Project, folder: str | Path, *, model_only: bool = False,
                   source: PythonSource | None = None) -> list[Path]:
    """Write ``model.py`` and, for a project with a training recipe, ``train.py``,
    ``README.md`` and ``train.sbatch`` into ``folder`` (created when missing); returns the paths.

    The one export of the CLI and the app. Every text is made before anything is written, and
    ``model.py`` passes the codegen gate first, so a refused export leaves the folder as it was.
    Files are written atomically, mode 0644.
    """
    source = source or generate(project)
    verify_source(source.text, source.node_lines)
    files: dict[str, str | bytes] = {"model.py": source.text}
    problem = None
    if not model_only and project.training.recipe:
        job = re.sub(r"[^A-Za-z0-9_.-]+", "-", project.name).strip("-.")[:60] or "layerloom"
        try:
            files["train.py"] = train_script(project)
        except (PlanError, CodegenError) as err:  # the model is fine: write it, say the rest
            problem = err
        else:
            data = shipped_files(str(files["train.py"]))
            files.update(data)
            listed = "".join(f"\n* `{n}`: the data `train.py` reads (Layerloom's copy of it)"
                             for n in data)
            files["README.md"] = README.format(name=project.name.replace("\n", " "),
                                               recipe=project.training.recipe,
                                               dataset=project.training.dataset, data=listed)
            files["train.sbatch"] = SBATCH.format(job=job)
    if not model_only:  # pretrained.py + a README section when a key map fits (compiler.keymaps)
        from compiler.keymaps import export_files

        files.update(export_files(source, files))
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out / name
        if isinstance(text, bytes):
            atomic_write_bytes(path, text)
        else:
            atomic_write_text(path, text)
        path.chmod(0o644)
        written.append(path)
    if problem is not None:
        raise TrainExportError(problem, written)
    return written


class TrainExportError(Exception):
    """model.py was written (``written``) but train.py could not be: the reason and its hint."""

    def __init__(self, err: Exception, written: list[Path]) -> None:
        reason = getattr(err, "reason", str(err))
        hint = getattr(err, "hint", "")
        super().__init__(f"train.py was not written: {reason}" + (f" ({hint})" if hint else ""))
        self.written = written


def export_training(project: Project, out_dir: str | Path) -> list[Path]:
    """(Kept for callers of the old name.) :func:`export_project`."""
    return export_project(project, out_dir)
