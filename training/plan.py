"""From a project to what a run needs: recipe, networks by role, input specs, data, settings.

``check(project)`` gives the problems as readable strings (the train panel shows them before a run);
``prepare`` raises :class:`PlanError` with the first one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler import Project, analyze, build
from compiler.build import BuiltModule
from nodes.base import TensorSpec

from . import recipes
from .config import Hyper, HyperError, resolve
from .data import Data, DataError, load
from .engine import Recipe


class PlanError(Exception):
    def __init__(self, reason: str, hint: str = "", kind: str = "error") -> None:
        super().__init__(reason)
        self.reason, self.hint, self.kind = reason, hint, kind


@dataclass
class Plan:
    project: Project
    recipe_cls: type[Recipe]
    roles: dict[str, str]  # role -> network name (they are equal today; kept apart for clarity)
    input_specs: dict[str, list[tuple[tuple, str]]]
    hyper: Hyper
    built: BuiltModule
    data: Data | None = None

    @property
    def graph_cls(self) -> Any:
        return getattr(self.built.module, "Graph", None)


def _fmt(names: list[str]) -> str:
    return " and ".join(f"'{n}'" for n in names) if len(names) < 3 else \
        ", ".join(f"'{n}'" for n in names[:-1]) + f" and '{names[-1]}'"


def match_roles(recipe_cls: type[Recipe], project: Project) -> dict[str, str]:
    have = [n.name for n in project.networks]
    sets = [recipe_cls.networks, *getattr(recipe_cls, "alternatives", [])]
    for roles in sets:
        if all(r in have for r in roles):
            return {r: r for r in roles}
    need = " or ".join(_fmt(list(s)) for s in sets)
    return_hint = "; ".join(f"'{r}' {what}" for s in sets for r, what in s.items())
    raise PlanError(f"the {recipe_cls.name} recipe needs networks {need}; this project has "
                    f"{_fmt(have) if have else 'none'}",
                    f"name the networks so: {return_hint}")


def prepare(project: Project, overrides: dict[str, Any] | None = None,
            load_data: bool = True, trust: tuple[str, ...] = ()) -> Plan:
    t = project.training
    if not t.recipe:
        raise PlanError("the project has no training recipe",
                        "choose one in the Train panel: " + ", ".join(recipes.NAMES))
    try:
        recipe_cls = recipes.get(t.recipe)
    except KeyError as err:
        raise PlanError(str(err).strip("'\""), "choose one of " + ", ".join(recipes.NAMES)) \
            from None
    roles = match_roles(recipe_cls, project)
    analysis = analyze(project)
    if analysis.errors:
        first = analysis.errors[0]
        raise PlanError(f"the model has {len(analysis.errors)} problem(s); first: {first}",
                        first.hint or "fix the problems listed under the canvas")
    input_specs: dict[str, list[tuple[tuple, str]]] = {}
    for role, net in roles.items():
        specs = []
        for res in analysis.networks[net].inputs():
            for spec in res.outs.values():
                if isinstance(spec, TensorSpec):
                    specs.append((spec.dims, spec.dtype))
        input_specs[role] = specs
    try:
        hyper = resolve(recipe_cls.defaults, t.hyper, overrides)
    except HyperError as err:
        raise PlanError(str(err), "fix the value in the Train panel") from None
    from compiler.usercode import UntrustedCodeError

    try:
        built = build(project, trust=trust)  # opaque nodes import the user's code: trusted only
    except UntrustedCodeError as err:
        raise PlanError(str(err), "trust the file: layerloom train --trust-code FILE, or "
                        "confirm in the app when it asks") from None
    plan = Plan(project, recipe_cls, roles, input_specs, hyper, built)
    if load_data:
        if not t.dataset:
            raise PlanError("the project has no dataset", "choose one in the Train panel", "data")
        try:
            plan.data = load(t.dataset, t.dataset_options, hyper.seed)
        except DataError as err:
            raise PlanError(str(err), err.expected and f"expected {err.expected}", "data") \
                from None
    return plan


def check(project: Project) -> list[str]:
    try:
        prepare(project, load_data=False)
    except PlanError as err:
        return [err.reason + (f" — {err.hint}" if err.hint else "")]
    return []
