"""The project file: a pydantic model of networks, blocks, training settings and UI metadata.

A ``.loom`` file is JSON of :class:`Project`. Loading never executes code: it parses JSON, migrates
old schema versions, validates the structure with pydantic, then checks what pydantic cannot (node
types exist, params are valid, wires name real nodes and ports). The first problem becomes one
:class:`ProjectLoadError` whose ``path`` is a JSON path such as ``networks[0].nodes[3].params``.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1
EXTENSION = ".loom"
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_NODES = 20_000

ParamValue = Any
PARAM_REF_KEY = "$param"
"""An inner node param ``{"$param": "planes"}`` takes the value of the enclosing block's param."""


def new_id() -> str:
    return uuid.uuid4().hex


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NodeModel(_Model):
    id: str = Field(default_factory=new_id, min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=100)
    params: dict[str, ParamValue] = Field(default_factory=dict)


class EdgeModel(_Model):
    src: str
    src_port: str = "y"
    dst: str
    dst_port: str = "x"


class NetworkModel(_Model):
    """A graph of nodes: a network trained by a recipe, or (as BlockModel) a reusable block."""

    name: str = Field(min_length=1, max_length=100)
    description: str = ""
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
    description: str = ""


class BlockModel(NetworkModel):
    """A subgraph used as one node. Its Block Input/Output nodes, by name, are its ports."""

    params: list[BlockParam] = Field(default_factory=list)

    def param_defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


class TrainingModel(_Model):
    """What the train panel and ``layerloom train`` use. Recipes validate ``hyper`` themselves."""

    recipe: str | None = None
    dataset: str | None = None
    dataset_options: dict[str, Any] = Field(default_factory=dict)
    hyper: dict[str, Any] = Field(default_factory=dict)


class Project(_Model):
    format: Literal["layerloom"] = "layerloom"
    schema_version: int = SCHEMA_VERSION
    name: str = "Untitled"
    description: str = ""
    template: str | None = None
    networks: list[NetworkModel] = Field(default_factory=list)
    blocks: list[BlockModel] = Field(default_factory=list)
    training: TrainingModel = Field(default_factory=TrainingModel)
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
        raw["networks"] = [dict(v, name=k) for k, v in nets.items()]
    raw["schema_version"] = 1
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
# Loading and saving
# ----------------------------------------------------------------------------------------------


def _json_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _pydantic_error(err: ValidationError, prefix: str = "") -> ProjectLoadError:
    first = err.errors()[0]
    path = _json_path(tuple(first.get("loc", ())))
    if prefix:
        path = prefix + ("." + path if path and not path.startswith("[") else path)
    return ProjectLoadError(first.get("msg", "invalid value"), path)


def loads(text: str, *, source: str | None = None) -> Project:
    """Parse, migrate and fully check a project; raise ProjectLoadError with a JSON path."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProjectLoadError(f"not valid JSON: {err.msg} at line {err.lineno} column {err.colno}",
                               file=source) from None
    except RecursionError:
        raise ProjectLoadError("JSON nested too deeply", file=source) from None
    if not isinstance(raw, dict):
        raise ProjectLoadError("a project file must hold a JSON object", file=source)
    if raw.get("format", "layerloom") != "layerloom":
        raise ProjectLoadError("not a Layerloom project (format is not 'layerloom')", "format", source)
    try:
        raw = migrate(raw)
        project = Project.model_validate(raw)
        check_semantics(project)
    except ValidationError as err:
        e = _pydantic_error(err)
        e.file = source
        raise e from None
    except ProjectLoadError as err:
        err.file = source
        raise
    return project


def load(path: str | os.PathLike) -> Project:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ProjectLoadError(f"file is {size} bytes; the limit is {MAX_FILE_BYTES}", file=p)
        data = p.read_bytes()
    except OSError as err:
        raise ProjectLoadError(f"cannot read the file: {err.strerror or err}", file=p) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProjectLoadError(f"not UTF-8 text (byte {err.start})", file=p) from None
    return loads(text, source=str(p))


def save(project: Project, path: str | os.PathLike) -> None:
    """Atomic: write a temp file beside the target, fsync, then rename over it."""
    atomic_write_text(Path(path), project.to_json() + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------------------------
# Semantic checks that pydantic's structure cannot express
# ----------------------------------------------------------------------------------------------


def check_semantics(project: Project) -> None:
    """Refuse what would make the document inconsistent; graph-level problems (cycles, missing
    wires, shapes) are diagnostics of validate.py, not load errors, so the user can fix them."""
    from nodes import registry

    from .ports import ports_of, resolve_params

    names: set[str] = set()
    for i, net in enumerate(project.networks):
        if net.name in names:
            raise ProjectLoadError(f"two networks are named '{net.name}'", f"networks[{i}].name")
        names.add(net.name)
    block_names: set[str] = set()
    for i, blk in enumerate(project.blocks):
        if blk.name in block_names:
            raise ProjectLoadError(f"two blocks are named '{blk.name}'", f"blocks[{i}].name")
        block_names.add(blk.name)

    groups = [("networks", project.networks), ("blocks", project.blocks)]
    for group, items in groups:
        for i, net in enumerate(items):
            base = f"{group}[{i}]"
            ids: dict[str, Any] = {}
            for j, node in enumerate(net.nodes):
                at = f"{base}.nodes[{j}]"
                if node.id in ids:
                    raise ProjectLoadError(f"node id '{node.id}' is used twice", f"{at}.id")
                if not registry.has(node.type):
                    raise ProjectLoadError(f"unknown node type '{node.type}'", f"{at}.type")
                node.type = registry.canonical_id(node.type)
                ids[node.id] = node
                defaults = project.block(net.name).param_defaults() if group == "blocks" else None
                try:
                    resolve_params(project, node, defaults)
                except ValidationError as err:
                    raise _pydantic_error(err, f"{at}.params") from None
                except (KeyError, ValueError) as err:
                    raise ProjectLoadError(str(err).strip("'\""), f"{at}.params") from None
            for j, edge in enumerate(net.edges):
                at = f"{base}.edges[{j}]"
                for end, port_attr, side in (("src", "src_port", "outputs"),
                                             ("dst", "dst_port", "inputs")):
                    node_id = getattr(edge, end)
                    if node_id not in ids:
                        raise ProjectLoadError(f"wire to a missing node '{node_id}'", f"{at}.{end}")
                    port = getattr(edge, port_attr)
                    ins, outs = ports_of(project, ids[node_id])
                    if port not in {p.name for p in (outs if side == "outputs" else ins)}:
                        raise ProjectLoadError(
                            f"node '{ids[node_id].name}' has no {side[:-1]} port '{port}'",
                            f"{at}.{port_attr}")
