"""The search space of a project: its choices grouped into decisions, and their resolution.

A *decision* is one label: every choice with that label moves together (one width used in several
places; a kernel [3, 5] with its padding [1, 2]: the decision is then a position in each list).
:func:`resolve` turns an assignment ``{label: value}`` into an ordinary project, with every chosen
param written in and the search section emptied, so a sampled architecture goes through the same
analysis, codegen, build and training as any project: there is no second interpreter of a graph.
No torch and no Qt here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from compiler.loading import choice_target
from compiler.project import Choice, Domain, Project, SearchModel


@dataclass
class Decision:
    """One label of the space: its domain (of the first choice) and every choice it sets."""

    label: str
    domain: Domain
    choices: list[Choice] = field(default_factory=list)

    @property
    def size(self) -> int | None:
        """How many values it can take (None for a float range: continuous)."""
        return domain_size(self.domain)

    def values(self) -> list[Any] | None:
        """Every value in order, or None for a float range."""
        d = self.domain
        if d.kind == "values":
            return list(d.values or [])
        if d.kind == "float":
            return None
        low, high = int(d.low), int(d.high)  # type: ignore[arg-type]
        return list(range(low, high + 1, d.step or 1))

    def index_of(self, value: Any) -> int:
        """The position of ``value`` in a list domain (ValueError naming the label if absent)."""
        for i, v in enumerate(self.domain.values or []):
            if v == value and type(v) is type(value):
                return i
        for i, v in enumerate(self.domain.values or []):
            if v == value:
                return i
        raise ValueError(f"decision '{self.label}' has no value {value!r}; its values are "
                         f"{self.domain.values}")

    def check(self, value: Any) -> None:
        """Refuse a value outside the domain, naming the decision and its domain."""
        d = self.domain
        if d.kind == "values":
            self.index_of(value)
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"decision '{self.label}' takes a number, not {value!r}")
        if not d.low <= value <= d.high:  # type: ignore[operator]
            raise ValueError(f"decision '{self.label}': {value} is outside [{d.low}, {d.high}]")
        if d.kind == "int" and (value != int(value) or (int(value) - int(d.low)) % (d.step or 1)):
            raise ValueError(f"decision '{self.label}': {value} is not on the range's grid "
                             f"(from {d.low} in steps of {d.step or 1})")


def domain_size(d: Domain) -> int | None:
    if d.kind == "values":
        return len(d.values or [])
    if d.kind == "float":
        return None
    return (int(d.high) - int(d.low)) // (d.step or 1) + 1  # type: ignore[arg-type]


def active_choices(project: Project) -> list[Choice]:
    """Choices whose scope and node exist (the others wait for an undo to bring the node back)."""
    return [c for c in project.search.choices if choice_target(project, c) is not None]


def stale_choices(project: Project) -> list[Choice]:
    """Choices whose node or scope is gone: kept in the file, ignored by a search."""
    return [c for c in project.search.choices if choice_target(project, c) is None]


def decisions(project: Project) -> list[Decision]:
    """One decision per label of the active choices, in the order labels first appear."""
    out: dict[str, Decision] = {}
    for c in active_choices(project):
        if c.label not in out:
            out[c.label] = Decision(c.label, c.domain)
        out[c.label].choices.append(c)
    return list(out.values())


def space_size(project: Project) -> int | None:
    """How many architectures the space holds; None when a float range makes it continuous."""
    total = 1
    for d in decisions(project):
        size = d.size
        if size is None:
            return None
        total *= size
    return total


def current_value(project: Project, choice: Choice) -> Any:
    """The value the base project has for a choice's param (its default when unset)."""
    target = choice_target(project, choice)
    if target is None:
        return None
    _, node = target
    head, _, arg = choice.param.partition(".")
    if arg:
        args = node.params.get("args") or {}
        if arg in args:
            return args[arg]
        if isinstance(node.params.get("block"), str) and project.has_block(node.params["block"]):
            return project.block(node.params["block"]).param_defaults().get(arg)
        return None
    if head in node.params:
        return node.params[head]
    from nodes import registry

    fld = registry.get(node.type).Params.model_fields.get(head)
    return None if fld is None or fld.is_required() else fld.get_default(call_default_factory=True)


def base_assignment(project: Project) -> dict[str, Any]:
    """The assignment the drawn project itself makes (None for a label whose value is off the
    domain), so a search can say how a found architecture differs from the base."""
    out: dict[str, Any] = {}
    for d in decisions(project):
        value = current_value(project, d.choices[0])
        try:
            d.check(value)
        except (ValueError, TypeError):
            value = None
        out[d.label] = value
    return out


def resolve(project: Project, assignment: dict[str, Any]) -> Project:
    """A copy of ``project`` with every decision of ``assignment`` written into its params and
    the search section emptied: an ordinary project. A label missing from ``assignment`` keeps
    the base value; an unknown label or a value off its domain is a ValueError naming it."""
    decs = {d.label: d for d in decisions(project)}
    unknown = set(assignment) - set(decs)
    if unknown:
        raise ValueError(f"no decision labelled '{sorted(unknown)[0]}' in this search space; "
                         f"labels: {sorted(decs)}")
    out = project.model_copy(deep=True)
    out.search = SearchModel()
    for label, value in assignment.items():
        dec = decs[label]
        dec.check(value)
        index = dec.index_of(value) if dec.domain.kind == "values" else None
        for choice in dec.choices:
            target = choice_target(out, choice)
            assert target is not None  # active in ``project``, and ``out`` is its copy
            v = value if index is None else (choice.domain.values or [])[index]
            _set_param(target[1].params, choice.param, v)
    return out


def _set_param(params: dict[str, Any], name: str, value: Any) -> None:
    head, _, arg = name.partition(".")
    if arg:
        params["args"] = {**dict(params.get("args") or {}), arg: value}
    else:
        params[head] = value


@dataclass(frozen=True)
class Difference:
    """One param an assignment changes: where (scope, node id and name), what, from and to."""

    scope: str
    node: str
    name: str
    param: str
    old: Any
    new: Any

    @property
    def change(self) -> str:
        """``param: old → new``, as the node's tooltip says it."""
        return f"{self.param}: {_show(self.old)} → {_show(self.new)}"

    @property
    def line(self) -> str:
        """``scope/name.param: old → new``, as the trials table and the trial's dock say it."""
        return f"{self.scope}/{self.name}.{self.change}"


def differences(project: Project, assignment: dict[str, Any]) -> list[Difference]:
    """Every param an assignment changes against the base project, in the space's order (the
    opened trial's dock lists them and its canvas marks their nodes)."""
    decs = {d.label: d for d in decisions(project)}
    out: list[Difference] = []
    for label, value in assignment.items():
        dec = decs.get(label)
        if dec is None:
            continue
        index = dec.index_of(value) if dec.domain.kind == "values" else None
        for choice in dec.choices:
            new = value if index is None else (choice.domain.values or [])[index]
            old = current_value(project, choice)
            if old != new:
                target = choice_target(project, choice)
                name = target[1].name if target else choice.node
                out.append(Difference(choice.scope, choice.node, name, choice.param, old, new))
    return out


def describe(project: Project, assignment: dict[str, Any]) -> list[str]:
    """What an assignment changes against the base project, one line per changed param, e.g.
    ``net/fc1.out_features: 128 → 64`` (for the trials table and "open as project")."""
    return [d.line for d in differences(project, assignment)]


def _show(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)
