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

from .ports import ports_of, resolve_params, wire_problem
from .project import (
    BlockModel,
    Choice,
    Domain,
    NetworkModel,
    NodeModel,
    Project,
    ProjectLoadError,
    parse,
    pydantic_error,
    read_text,
)


def loads(text: str, *, source: str | None = None) -> Project:
    """Parse, migrate and fully check a project; raise ProjectLoadError with a JSON path."""
    project = parse(text, source=source)
    try:
        canonicalise_types(project)
        check_semantics(project)
        check_search(project)
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


# ----------------------------------------------------------------------------------------------
# The search section
# ----------------------------------------------------------------------------------------------


def choice_target(project: Project, choice: Choice) -> tuple[NetworkModel, NodeModel] | None:
    """The (scope, node) a choice binds, or None when either is gone (a deleted node: the choice
    is kept but inactive, so undoing the deletion brings the search back)."""
    scope = next((n for n in (*project.networks, *project.blocks) if n.name == choice.scope), None)
    if scope is None:
        return None
    node = next((n for n in scope.nodes if n.id == choice.node), None)
    return None if node is None else (scope, node)


def domain_samples(choice: Choice) -> list[Any]:
    """The values that stand for a domain when it is checked: every listed value, or the ends."""
    d = choice.domain
    return list(d.values or []) if d.kind == "values" else [d.low, d.high]


def choice_problem(project: Project, choice: Choice) -> str | None:
    """Why an active choice cannot hold (a param the node lacks, a value it refuses), or None.
    An inactive choice (its node is gone) has no problem: it is ignored until the node returns."""
    target = choice_target(project, choice)
    if target is None:
        return None
    scope, node = target
    cls = registry.get(node.type)
    fields = cls.Params.model_fields
    head, _, arg = choice.param.partition(".")
    is_block = "block" in fields and "repeat" in fields and "args" in fields
    if arg and not (is_block and head == "args"):
        return (f"node '{node.name}' in '{scope.name}': '{choice.param}' is not a param; only a "
                "block node's own params are searched as 'args.NAME'")
    if not arg and (head not in fields or (is_block and head == "args")):
        return (f"node '{node.name}' in '{scope.name}' has no param '{head}' to search over; "
                f"pick one of {sorted(k for k in fields if k != 'args')}")
    defaults = scope.param_defaults() if isinstance(scope, BlockModel) else None
    for value in domain_samples(choice):
        trial = node.model_copy(deep=True)
        if arg:
            trial.params["args"] = {**dict(trial.params.get("args") or {}), arg: value}
        else:
            trial.params[head] = value
        try:
            resolve_params(project, trial, defaults)
        except ValidationError as err:
            first = err.errors()[0]
            return (f"node '{node.name}' in '{scope.name}': {choice.param}={value!r} is refused "
                    f"({first.get('msg')}); change the domain of choice '{choice.label}'")
        except (KeyError, ValueError, TypeError) as err:
            return (f"node '{node.name}' in '{scope.name}': {choice.param}={value!r} is refused "
                    f"({str(err).strip(chr(39))}); change the domain of choice '{choice.label}'")
        swapped = head == "block" and is_block
        if swapped and _port_names(project, trial) != _port_names(project, node):
            return (f"node '{node.name}' in '{scope.name}': block '{value}' has other ports than "
                    f"'{node.params.get('block')}'; a block slot only takes blocks with the same "
                    "Block Input/Output names")
    return None


def _port_names(project: Project, node: NodeModel) -> tuple[list[str], list[str]]:
    ins, outs = ports_of(project, node)
    return [p.name for p in ins], [p.name for p in outs]


SHARED_LABEL_HINT = (
    "choices labelled '{label}' share one decision but their domains do not agree: value lists "
    "need the same length (the decision is a position in each list, e.g. kernel [3, 5] with "
    "padding [1, 2]) and ranges must be equal; align the domains or use different labels")


def domains_agree(a: Domain, b: Domain) -> bool:
    """Whether two domains can share one decision: lists of one length (a decision is then the
    position in each list, so kernel [3, 5] and padding [1, 2] move together) or equal ranges."""
    if a.kind == "values" and b.kind == "values":
        return len(a.values or []) == len(b.values or [])
    return a == b


def check_search(project: Project) -> None:
    """Choices bind real params with values those params accept; one label, one domain."""
    seen: dict[tuple[str, str, str], int] = {}
    domains: dict[str, Any] = {}
    for i, choice in enumerate(project.search.choices):
        at = f"search.choices[{i}]"
        key = (choice.scope, choice.node, choice.param)
        if key in seen:
            raise ProjectLoadError(f"param '{choice.param}' of node '{choice.node}' is searched "
                                   f"twice (choices {seen[key]} and {i}); remove one", at)
        seen[key] = i
        first = domains.setdefault(choice.label, choice.domain)
        if not domains_agree(first, choice.domain):
            raise ProjectLoadError(SHARED_LABEL_HINT.format(label=choice.label), f"{at}.domain")
        problem = choice_problem(project, choice)
        if problem is not None:
            raise ProjectLoadError(problem, at)
