"""The project file: a pydantic model of networks, blocks, training settings and UI metadata.

A ``.loom`` file is JSON of :class:`Project`. This module is the *structure* of the file and nothing
else: it parses JSON, migrates old schema versions and validates the shape with pydantic, so it
imports nothing of the compiler or the node catalogue (it is a leaf). What needs the catalogue
(node types exist, params are valid, wires name real ports) lives in :mod:`compiler.loading`, whose
``load``/``loads`` are the entry points. The first problem becomes one :class:`ProjectLoadError`
whose ``path`` is a JSON path such as ``networks[0].nodes[3].params``.

Defence in depth: every string that can reach generated source is constrained here (ids match a
strict pattern, names carry no control or line-break characters), and anything ``to_json`` could
not write back (lone surrogates, NaN, absurd nesting) is refused at load so a save cannot fail.
"""

from __future__ import annotations

import glob
import json
import math
import os
import stat
import tempfile
import time
import unicodedata
import uuid
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

SCHEMA_VERSION = 2
EXTENSION = ".loom"
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_NODES = 20_000
#: Deepest JSON nesting anywhere in a file, and inside ``ui`` (whose content is free-form).
MAX_DEPTH = 64
MAX_UI_DEPTH = 32
#: Most values (containers and leaves) that ``ui`` may hold: a few per node is plenty.
MAX_UI_ITEMS = 500_000
#: Longest description, in characters (names are bounded by their fields).
MAX_TEXT = 100_000
#: A stale temporary file of an interrupted save older than this (seconds) is removed on save.
STALE_TMP_SECONDS = 60.0

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
TYPE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$"

ParamValue = Any
PARAM_REF_KEY = "$param"
"""An inner node param ``{"$param": "planes"}`` takes the value of the enclosing block's param."""

#: Format characters that some scripts and emoji need (zero-width (non-)joiner); other Cf
#: characters (bidi overrides, BOM, soft hyphen...) only hide or reorder text.
_ALLOWED_FORMAT = {"\u200c", "\u200d"}


def _bad_char(text: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """The first character of ``text`` that may not appear in it, or None."""
    for ch in text:
        if ch in allowed:
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Zl", "Zp", "Cs") or (cat == "Cf" and ch not in _ALLOWED_FORMAT):
            return ch
    return None


def _plain_line(text: str) -> str:
    """A name: one line of printable text (no control, format or line-break characters)."""
    ch = _bad_char(text)
    if ch is not None:
        raise ValueError(f"must not contain the control character {ascii(ch)}")
    return text


def _plain_text(text: str) -> str:
    """A description: printable text where only newline and tab are allowed as controls."""
    ch = _bad_char(text, frozenset("\n\t"))
    if ch is not None:
        raise ValueError(f"must not contain the control character {ascii(ch)} "
                         "(only newlines and tabs are allowed)")
    return text


Name = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_plain_line)]
Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_plain_text)]
NodeId = Annotated[str, Field(pattern=ID_PATTERN)]
PortName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_plain_line)]


def new_id() -> str:
    return uuid.uuid4().hex


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeModel(_Model):
    id: NodeId = Field(default_factory=new_id)
    type: str = Field(pattern=TYPE_PATTERN)
    name: Name
    params: dict[str, ParamValue] = Field(default_factory=dict)


class EdgeModel(_Model):
    src: NodeId
    src_port: PortName = "y"
    dst: NodeId
    dst_port: PortName = "x"


class NetworkModel(_Model):
    """A graph of nodes: a network trained by a recipe, or (as BlockModel) a reusable block."""

    name: Name
    description: Text = ""
    nodes: list[NodeModel] = Field(default_factory=list, max_length=MAX_NODES)
    edges: list[EdgeModel] = Field(default_factory=list, max_length=4 * MAX_NODES)

    def node(self, node_id: str) -> NodeModel:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def node_by_name(self, name: str) -> NodeModel:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


class BlockParam(_Model):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    default: int | float | bool | str
    description: Text = ""


class BlockModel(NetworkModel):
    """A subgraph used as one node. Its Block Input/Output nodes, by name, are its ports."""

    params: list[BlockParam] = Field(default_factory=list)

    def param_defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


class TrainingModel(_Model):
    """What the train panel and ``layerloom train`` use. Recipes validate ``hyper`` themselves."""

    recipe: Name | None = None
    dataset: Name | None = None
    dataset_options: dict[str, Any] = Field(default_factory=dict)
    hyper: dict[str, Any] = Field(default_factory=dict)


LABEL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
#: Most choices a search section may hold (each is one decision or shares one by its label).
MAX_CHOICES = 1000
#: Most values a ``values`` domain may list.
MAX_DOMAIN_VALUES = 1000


class Domain(_Model):
    """The values a searched param may take: a list, an integer range (``step`` or ``log``
    scale) or a float range. Kept as plain data so a search space is part of the file."""

    kind: Literal["values", "int", "float"]
    values: list[ParamValue] | None = Field(default=None, max_length=MAX_DOMAIN_VALUES)
    low: int | float | None = None
    high: int | float | None = None
    step: int | None = Field(default=None, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "Domain":
        if self.kind == "values":
            if not self.values:
                raise ValueError("a 'values' domain lists at least one value")
            if self.low is not None or self.high is not None:
                raise ValueError("a 'values' domain has no low/high; list the values instead")
            return self
        if self.values is not None:
            raise ValueError(f"an '{self.kind}' range has low and high, not a list of values")
        if self.low is None or self.high is None:
            raise ValueError(f"an '{self.kind}' range needs both low and high")
        if self.kind == "int" and not (_is_int(self.low) and _is_int(self.high)):
            raise ValueError("an 'int' range needs integer low and high")
        if self.low > self.high:
            raise ValueError(f"the range's low ({self.low}) is above its high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs a low above 0")
        if self.log and self.step not in (None, 1):
            raise ValueError("a log-scale range cannot also have a step")
        if self.kind == "float" and self.step is not None:
            raise ValueError("a 'float' range has no step; use a 'values' list for a grid")
        return self


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Choice(_Model):
    """One searched param: ``param`` of node ``node`` in network or block ``scope``. Choices
    with the same ``label`` share one decision (one width used in several places). For a block
    node, ``param`` may also be ``repeat`` (depth), ``block`` (which block fills the slot) or
    ``args.NAME`` (one of the block's own params)."""

    label: str = Field(pattern=LABEL_PATTERN)
    scope: Name
    node: NodeId
    param: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$",
                       max_length=200)
    domain: Domain


class SearchModel(_Model):
    """The search section: the space (choices) and the settings of the last search."""

    choices: list[Choice] = Field(default_factory=list, max_length=MAX_CHOICES)
    strategy: str = Field("evolution", pattern=r"^[a-z0-9_]{1,32}$")
    objective: Literal["params", "flops", "latency"] = "params"
    trials: int = Field(20, ge=1, le=100_000)
    steps: int | None = Field(default=None, ge=1)
    max_params: int | None = Field(default=None, ge=1)
    max_flops: int | None = Field(default=None, ge=1)
    seed: int = 0


class Project(_Model):
    format: Literal["layerloom"] = "layerloom"
    schema_version: int = SCHEMA_VERSION
    name: Name = "Untitled"
    description: Text = ""
    template: Name | None = None
    networks: list[NetworkModel] = Field(default_factory=list)
    blocks: list[BlockModel] = Field(default_factory=list)
    training: TrainingModel = Field(default_factory=TrainingModel)
    search: SearchModel = Field(default_factory=SearchModel)
    ui: dict[str, Any] = Field(default_factory=dict)

    def network(self, name: str) -> NetworkModel:
        for n in self.networks:
            if n.name == name:
                return n
        raise KeyError(f"no network named '{name}'")

    def block(self, name: str) -> BlockModel:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(f"no block named '{name}'")

    def has_block(self, name: str) -> bool:
        return any(b.name == name for b in self.blocks)

    def to_json(self) -> str:
        return self.model_dump_json(indent=1, exclude_none=False)


class ProjectLoadError(Exception):
    """One clear reason a file was refused, with the JSON path of the offending value."""

    def __init__(self, message: str, path: str = "", file: str | os.PathLike | None = None):
        self.message = message
        self.path = path
        self.file = str(file) if file is not None else None
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        at = f" (at {self.path})" if self.path else ""
        return f"{where}{self.message}{at}"


# ----------------------------------------------------------------------------------------------
# Migrations: version -> function that upgrades a raw dict by one version.
# ----------------------------------------------------------------------------------------------

MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def migration(from_version: int) -> Callable[[Callable[[dict], dict]], Callable[[dict], dict]]:
    def deco(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
        MIGRATIONS[from_version] = fn
        return fn
    return deco


@migration(0)
def _v0_to_v1(raw: dict) -> dict:
    """Version 0 (pre-release) kept ``networks`` as a name->network mapping."""
    nets = raw.get("networks")
    if isinstance(nets, dict):
        for key, value in nets.items():
            if not isinstance(value, dict):
                raise ProjectLoadError("a network must be a JSON object", f"networks.{key}")
        raw["networks"] = [dict(v, name=k) for k, v in nets.items()]
    raw["schema_version"] = 1
    return raw


@migration(1)
def _v1_to_v2(raw: dict) -> dict:
    """Version 2 adds the ``search`` section (architecture search); old files gain an empty one."""
    raw.setdefault("search", {})
    raw["schema_version"] = 2
    return raw


def migrate(raw: dict) -> dict:
    version = raw.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ProjectLoadError("schema_version must be an integer", "schema_version")
    if version > SCHEMA_VERSION:
        raise ProjectLoadError(
            f"this file was written by a newer Layerloom (schema {version}; this one reads up to "
            f"{SCHEMA_VERSION}); update Layerloom to open it", "schema_version")
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise ProjectLoadError(f"no migration from schema version {version}", "schema_version")
        raw = MIGRATIONS[version](raw)
        version = raw.get("schema_version", version + 1)
    return raw


# ----------------------------------------------------------------------------------------------
# Parsing (structure only) and saving
# ----------------------------------------------------------------------------------------------


def _json_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def pydantic_error(err: ValidationError, prefix: str = "") -> ProjectLoadError:
    """The first error of a pydantic ValidationError as a ProjectLoadError under ``prefix``."""
    first = err.errors()[0]
    path = _json_path(tuple(first.get("loc", ())))
    if prefix:
        path = prefix + ("." + path if path and not path.startswith("[") else path)
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return ProjectLoadError(message, path)


def _refuse_constant(name: str) -> Any:
    raise ProjectLoadError(f"{name} is not a number a project may hold; use a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ProjectLoadError(f"the number {text[:40]} is too large; use a finite number")
    return value


def _check_tree(raw: Any) -> None:
    """Refuse what would load but could not be written back or would cost without bound:
    lone surrogates (``to_json`` fails on them), nesting deeper than MAX_DEPTH (MAX_UI_DEPTH
    inside ``ui``) and a ``ui`` with more than MAX_UI_ITEMS values. Iterative, so a deep file
    cannot exhaust the stack here; scalars are checked in place, only containers are stacked."""
    stack: list[tuple[Any, tuple, int]] = [(raw, (), 0)]
    ui_items = 0
    while stack:
        value, loc, depth = stack.pop()
        in_ui = bool(loc) and loc[0] == "ui"
        limit = MAX_UI_DEPTH if in_ui else MAX_DEPTH
        if depth >= limit:
            raise ProjectLoadError(f"nested more than {limit} levels deep", _json_path(loc))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                _check_string(key, loc + (key,))
            if in_ui or (not loc and key == "ui"):
                ui_items += 1
                if ui_items > MAX_UI_ITEMS:
                    raise ProjectLoadError(f"ui holds more than {MAX_UI_ITEMS} values", "ui")
            if isinstance(item, str):
                _check_string(item, loc + (key,))
            elif isinstance(item, (dict, list)):
                stack.append((item, loc + (key,), depth + 1))


def _check_string(text: str, loc: tuple) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProjectLoadError("text holds a lone surrogate (\\ud800-\\udfff), which is not "
                               "valid Unicode", _json_path(loc)) from None


def parse_json(text: str, *, source: str | None = None) -> dict:
    """JSON text to a raw dict, refusing NaN/Infinity, oversized numbers and deep nesting."""
    try:
        raw = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except ProjectLoadError as err:
        err.file = source
        raise
    except json.JSONDecodeError as err:
        raise ProjectLoadError(f"not valid JSON: {err.msg} at line {err.lineno} column {err.colno}",
                               file=source) from None
    except RecursionError:
        raise ProjectLoadError("JSON nested too deeply", file=source) from None
    except ValueError:  # an integer literal longer than Python's 4,300-digit limit
        raise ProjectLoadError("a number in the file has more than 4,300 digits",
                               file=source) from None
    if not isinstance(raw, dict):
        raise ProjectLoadError("a project file must hold a JSON object", file=source)
    return raw


def parse(text: str, *, source: str | None = None) -> Project:
    """Structure only: JSON, migration, pydantic and the string/tree limits of this module.

    It does not know node types, so it is not a full load: use ``compiler.loading.loads``.
    """
    raw = parse_json(text, source=source)
    try:
        _check_tree(raw)
        if raw.get("format", "layerloom") != "layerloom":
            raise ProjectLoadError("not a Layerloom project (format is not 'layerloom')", "format")
        return Project.model_validate(migrate(raw))
    except ValidationError as err:
        e = pydantic_error(err)
        e.file = source
        raise e from None
    except ProjectLoadError as err:
        err.file = source
        raise


def read_text(path: str | os.PathLike) -> str:
    """A project file's text: size-checked, UTF-8, every failure a ProjectLoadError."""
    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
            raise ProjectLoadError("cannot read the file: not a regular file", file=p)
        size = st.st_size
        if size > MAX_FILE_BYTES:
            raise ProjectLoadError(f"file is {size} bytes; the limit is {MAX_FILE_BYTES}", file=p)
        data = p.read_bytes()
    except OSError as err:
        raise ProjectLoadError(f"cannot read the file: {err.strerror or err}", file=p) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProjectLoadError(f"not UTF-8 text (byte {err.start})", file=p) from None


def save(project: Project, path: str | os.PathLike) -> None:
    """Atomic: write a temp file beside the target, fsync, then rename over it."""
    atomic_write_text(Path(path), project.to_json() + "\n")


def _new_file_mode() -> int:
    """0666 less the umask: the mode ``open()`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _remove_stale_temps(path: Path) -> None:
    """Temp files of saves that were killed before their rename: older than a minute, gone."""
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - tmp.lstat().st_mtime > STALE_TMP_SECONDS and tmp.is_file():
                tmp.unlink()
        except OSError:
            pass  # another process may be mid-save or have removed it: not ours to fail on


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a crash leaves either the old or the new file, never half.

    The target keeps its mode (mkstemp would make it 0600); a new file gets 0666 less the umask.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """:func:`atomic_write_text` for bytes (a data file the export copies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = _new_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

