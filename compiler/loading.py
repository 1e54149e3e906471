"""Loading a project: the file model (``compiler.project``) plus the checks that need the catalogue.

``compiler.project`` is a leaf that knows the shape of a ``.loom`` file; this module adds the checks
that need node types: every type exists, params validate, wires name real nodes and ports. These
make a document *consistent*; graph problems a user can fix on the canvas (cycles, unwired inputs,
shapes) stay diagnostics of ``compiler.validate``. Old type ids are rewritten to canonical ones in
an explicit migration step (:func:`canonicalise_types`), never as a side effect of a check.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from nodes import registry

from .ports import resolve_params, wire_problem
from .project import NetworkModel, Project, ProjectLoadError, parse, pydantic_error, read_text


def loads(text: str, *, source: str | None = None) -> Project:
    """Parse, migrate and fully check a project; raise ProjectLoadError with a JSON path."""
    project = parse(text, source=source)
    try:
        canonicalise_types(project)
        check_semantics(project)
        check_serialisable(project)
    except ProjectLoadError as err:
        err.file = source
        raise
    return project


def load(path: str | os.PathLike) -> Project:
    """A project from a file; every way it can be unreadable or invalid is a ProjectLoadError."""
    return loads(read_text(path), source=str(path))


def canonicalise_types(project: Project) -> None:
    """Migration: legacy node type ids become the ids their types have now (unknown ones stay,
    for :func:`check_semantics` to refuse with their path)."""
    for net in (*project.networks, *project.blocks):
        for node in net.nodes:
            if registry.has(node.type):
                node.type = registry.canonical_id(node.type)


def check_semantics(project: Project) -> None:
    """Refuse what would make the document inconsistent. Reads, never rewrites, the project.

    Types are checked across all networks and blocks first, so a block's ports (read from its
    inner Block Input/Output nodes) are only ever computed over known types.
    """
    _unique([n.name for n in project.networks], "networks", "two networks are named")
    _unique([b.name for b in project.blocks], "blocks", "two blocks are named")
    groups: list[tuple[str, list[Any]]] = [("networks", project.networks),
                                           ("blocks", project.blocks)]
    for group, items in groups:
        for i, net in enumerate(items):
            for j, node in enumerate(net.nodes):
                if not registry.has(node.type):
                    raise ProjectLoadError(f"unknown node type '{node.type}'",
                                           f"{group}[{i}].nodes[{j}].type")
    for i, blk in enumerate(project.blocks):
        _unique([p.name for p in blk.params], f"blocks[{i}].params", "two block params are named")
    for group, items in groups:
        for i, net in enumerate(items):
            defaults = net.param_defaults() if group == "blocks" else None
            _check_network(project, net, f"{group}[{i}]", defaults)


def _unique(names: list[str], base: str, message: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ProjectLoadError(f"{message} '{name}'", f"{base}[{i}].name")
        seen.add(name)


def _check_network(project: Project, net: NetworkModel, base: str,
                   defaults: dict[str, Any] | None) -> None:
    by_id: dict[str, Any] = {}
    for j, node in enumerate(net.nodes):
        at = f"{base}.nodes[{j}]"
        if node.id in by_id:
            raise ProjectLoadError(f"node id '{node.id}' is used twice", f"{at}.id")
        by_id[node.id] = node
        try:
            resolve_params(project, node, defaults)
        except ValidationError as err:
            raise pydantic_error(err, f"{at}.params") from None
        except (KeyError, ValueError, TypeError) as err:
            raise ProjectLoadError(str(err).strip("'\""), f"{at}.params") from None
    for j, edge in enumerate(net.edges):
        problem = wire_problem(project, edge, by_id)
        if problem is not None:
            message, field = problem
            raise ProjectLoadError(message, f"{base}.edges[{j}].{field}")


def check_serialisable(project: Project) -> None:
    """A project that loads can be saved: refuse now what ``to_json`` would fail on later
    (the structural limits of ``compiler.project`` make this a last gate, not the first)."""
    try:
        project.to_json()
    except (PydanticSerializationError, ValueError, RecursionError) as err:
        raise ProjectLoadError(f"the project could not be saved again: {str(err)[:200]}") from None
