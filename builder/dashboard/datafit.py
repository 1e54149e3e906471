"""Does the chosen dataset fit the model? Checked before a run starts (Qt-free).

A dataset whose samples do not match the Input node, or whose class count does not match the
classifier's output width, would make the runner fail seconds later; here the panel says so at
once and offers the edit that adapts the model to the data: the Input's shape and the width of
the layer that feeds the Output (``changes``, applied as one undoable command by the editor).
"""

from __future__ import annotations

import json
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from compiler import Project
from compiler.shapes import analyze
from nodes.base import TensorSpec

_CACHE: dict[str, tuple[list[int], int, str]] = {}


@dataclass
class Misfit:
    """What does not fit, whether a run would fail on it, and the edit that fixes it."""

    reason: str
    blocking: bool
    network: str
    #: (node id, params) that make the model take this data; empty when none is known.
    changes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    summary: str = ""  # the fix in words: "Input [N, 3, 32, 32], fc2 out_features 4"


_POOL: ThreadPoolExecutor | None = None
_PENDING: dict[str, Future] = {}


def _data_facts(dataset: str, options: dict, wait: bool) -> tuple[list[int], int, str] | None:
    """(per-sample shape, class count (0: none), data kind), cached per dataset and options.
    The first look loads the data (and torch: a second or two) in a worker thread, so picking
    a dataset never freezes the window; until then the answer is None (``pending()``)."""
    global _POOL
    key = json.dumps([dataset, options], sort_keys=True, default=str)
    if key in _CACHE:
        _PENDING.pop(key, None)
        return _CACHE[key]
    if key not in _PENDING:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(1, thread_name_prefix="layerloom-datafit")
        _PENDING[key] = _POOL.submit(_load_facts, key, dataset, options)
    if not wait and not _PENDING[key].done():
        return None
    _PENDING.pop(key).result()
    return _CACHE.get(key)


def pending() -> bool:
    """A dataset is still being looked at: ask again shortly."""
    return any(not f.done() for f in _PENDING.values())


def _load_facts(key: str, dataset: str, options: dict) -> None:
    from training.data import DataError, load

    try:
        data = load(dataset, options, 0)
    except (DataError, OSError, ValueError):
        facts: tuple[list[int], int, str] = ([], 0, "unreadable")  # Start names the problem
    except Exception:  # the data's own bug: never a crash of the panel
        facts = ([], 0, "unreadable")
    else:
        if data.kind != "tensors":
            facts = ([], 0, data.kind)
        else:
            x = data.train[0]
            facts = (list(x.shape[1:]) if x.dtype.is_floating_point else [],
                     int(data.info.get("num_classes") or 0), data.kind)
    _CACHE[key] = facts


def check_fit(project: Project, wait: bool = False) -> Misfit | None:
    """None when the data fits (or there is nothing to compare yet: see ``pending()``);
    ``wait``: load the data now if it was not looked at yet (as F5 does)."""
    from training import recipes
    from training.plan import PlanError, match_roles

    t = project.training
    if not t.recipe or not t.dataset:
        return None
    try:
        recipe_cls = recipes.get(t.recipe)
        roles = match_roles(recipe_cls, project)
    except (KeyError, PlanError):
        return None  # the plan check names these
    facts = _data_facts(t.dataset, dict(t.dataset_options), wait)
    if not facts or facts[2] != "tensors" or not roles:
        return None
    have, classes, _ = facts
    net_name = next(iter(roles.values()))
    result = analyze(project).networks.get(net_name)
    if result is None:
        return None
    reasons, changes, fixes, blocking = [], [], [], False
    inputs = [r for r in result.inputs() if r.node.type == "io.input"]
    if have and len(inputs) == 1:
        node = inputs[0].node
        spec = inputs[0].outs.get("y")
        dims = list(spec.dims) if isinstance(spec, TensorSpec) else []
        want = dims[1:] if dims and dims[0] == "N" else []
        if want and not _fits(have, want):
            shape = ["N", math.prod(have)] if len(want) == 1 and len(have) > 1 else ["N", *have]
            reasons.append(f"the dataset's samples are {have} but the Input '{node.name}' takes "
                           f"[{', '.join(map(str, want))}]")
            changes.append((node.id, {"shape": shape}))
            fixes.append(f"{node.name} shape [{', '.join(map(str, shape))}]")
            blocking = True
    if classes and t.recipe == "classification":
        width, feeder = _output_width(result)
        if width is not None and width != classes:
            reasons.append(f"the dataset has {classes} classes but the model outputs {width}")
            blocking = blocking or width < classes
            if feeder is not None:
                changes.append((feeder[0], {feeder[1]: classes}))
                fixes.append(f"{feeder[2]} {feeder[1]} {classes}")
    if not reasons:
        return None
    return Misfit("; ".join(reasons), blocking, net_name, changes, ", ".join(fixes))


def _fits(have: list[int], want: list) -> bool:
    """As the runner sees it: equal dims (names match any size), or the same element count
    with fixed dims (the runner reshapes those silently)."""
    if len(have) == len(want) and all(isinstance(w, str) or w == h
                                      for h, w in zip(have, want, strict=True)):
        return True
    return all(isinstance(w, int) for w in want) and math.prod(want) == math.prod(have)


def _output_width(result) -> tuple[int | None, tuple[str, str, str] | None]:
    """The last dim of what reaches the (first) Output, and (node id, param, name) of the layer
    that sets it when that is a plain width param."""
    outs = result.outputs()
    if not outs:
        return None, None
    spec = outs[0].ins.get("x")
    if not isinstance(spec, TensorSpec) or not spec.dims or not isinstance(spec.dims[-1], int):
        return None, None
    width = int(spec.dims[-1])
    edges = [e for e in result.net.edges if e.dst == outs[0].node.id]
    feeder = None
    if edges:
        src = result.nodes.get(edges[0].src)
        if src is not None:
            for param in ("out_features", "num_classes", "classes"):
                if param in type(src.params).model_fields:
                    feeder = (src.node.id, param, src.node.name)
                    break
    return width, feeder
