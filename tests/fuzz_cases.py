"""Hypothesis strategies for mutated project files, and the in-process pipeline they go through.

Shared by ``tests/test_fuzz_project.py`` (a few hundred cases in CI) and ``scripts/fuzz_project.py``
(nightly-size runs). A case is JSON text; :func:`run_case` loads, analyses and generates it and
lets only the project's own error types through, so anything else is a bug to report.
"""

from __future__ import annotations

import copy
import json
import signal
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator

from hypothesis import strategies as st

#: Small templates covering plain chains, blocks (nested, with params), GNNs and several nets.
SEED_TEMPLATES = ("mlp-digits", "resnet18-small", "gpt-small", "vae-digits", "gcn-karate",
                  "lstm-charlm", "gan-dcgan-small", "efficientnet-small")

WEIRD_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 10**12, -10**12, 10**30, 0.5, -0.0, 1e308, "", "x",
    "N", "a" * 1000, "\u2028", "\r", "\ud800", [], {}, [1, 2], [[[[[[1]]]]]], {"$param": "nope"},
    {"$param": [1]}, {"$param": "planes", "x": 1}, {"a": {"b": {"c": []}}},
]


@lru_cache(maxsize=None)
def seed_texts() -> tuple[str, ...]:
    import templates

    return tuple(templates.build(name).to_json() for name in SEED_TEMPLATES)


class Hang(Exception):
    """A case ran past its time budget (a resource bomb that was not refused)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM-based limit on the main thread; a no-op where it is unavailable."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def _raise(signum, frame):  # noqa: ARG001
        raise Hang(f"ran past {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def allowed_errors() -> tuple[type[BaseException], ...]:
    from compiler.codegen import CodegenError
    from compiler.project import ProjectLoadError

    return (ProjectLoadError, CodegenError)


def run_case(text: str) -> str:
    """load -> analyze -> generate. Returns how far it got; raises for anything unexpected."""
    from compiler import analyze, generate
    from compiler.loading import loads

    try:
        project = loads(text)
    except allowed_errors():
        return "refused"
    analysis = analyze(project)
    if not analysis.ok:
        return "diagnosed"
    try:
        generate(analysis)
    except allowed_errors():
        return "codegen-error"
    return "generated"


# ----------------------------------------------------------------------------------------------
# JSON-aware mutations
# ----------------------------------------------------------------------------------------------


def _containers(tree: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) slot of a JSON tree, in a stable order."""
    out: list[tuple[Any, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k in sorted(node, key=str):
                out.append((node, k))
                stack.append(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                out.append((node, i))
                stack.append(node[i])
    return out


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutation(draw: st.DrawFn, tree: Any) -> None:
    """Apply one mutation in place: replace, delete, duplicate, retype, deepen, bomb."""
    slots = _containers(tree)
    if not slots:
        return
    parent, key = slots[draw(st.integers(0, len(slots) - 1))]
    kind = draw(st.sampled_from(["replace", "replace", "delete", "duplicate", "retype", "deep",
                                 "number", "string"]))
    value = parent[key]
    if kind == "replace":
        parent[key] = copy.deepcopy(draw(st.sampled_from(WEIRD_VALUES)))
    elif kind == "delete":
        del parent[key]
    elif kind == "duplicate" and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(value))
    elif kind == "retype":
        from nodes import registry

        ids = sorted(c.id for c in registry.all_types())
        parent[key] = draw(st.sampled_from(ids + ["nope.none", "block.block"]))
    elif kind == "deep":
        parent[key] = _nested(draw(st.integers(20, 80)))
    elif kind == "number":
        parent[key] = draw(st.one_of(st.integers(-10**6, 10**9), st.floats(allow_nan=True,
                                                                               allow_infinity=True)))
    elif kind == "string":
        parent[key] = draw(st.text(max_size=30))


def _recursive_blocks(raw: dict, mutual: bool) -> None:
    """Make the first block use itself (or two blocks use each other)."""
    blocks = raw.get("blocks") or []
    if not blocks:
        return
    names = [blocks[0]["name"], blocks[-1]["name"] if mutual else blocks[0]["name"]]
    for blk, target in ((blocks[0], names[1]), (blocks[-1], names[0])):
        blk["nodes"].append({"id": "rec", "type": "block.block", "name": "rec",
                             "params": {"block": target}})


def _many_nodes(raw: dict, n: int) -> None:
    net = raw["networks"][0]
    last = net["nodes"][0]["id"]
    for i in range(n):
        nid = f"m{i}"
        net["nodes"].append({"id": nid, "type": "activation.relu", "name": f"m{i}"})
        net["edges"].append({"src": last, "dst": nid})
        last = nid


@st.composite
def project_texts(draw: st.DrawFn, max_mutations: int = 4, max_extra_nodes: int = 300,
                  bombs: bool = False) -> str:
    """A mutated template project as JSON text (sometimes truncated or with bare NaN tokens)."""
    raw = json.loads(draw(st.sampled_from(seed_texts())))
    structural = draw(st.sampled_from(["none", "none", "recursive", "mutual", "many", "ref"]))
    if structural in ("recursive", "mutual"):
        _recursive_blocks(raw, structural == "mutual")
    elif structural == "many":
        _many_nodes(raw, draw(st.integers(1, max_extra_nodes)))
    elif structural == "ref":
        nodes = raw["networks"][0]["nodes"]
        node = nodes[draw(st.integers(0, len(nodes) - 1))]
        node.setdefault("params", {})["out_features"] = {"$param": draw(st.text(max_size=8))}
    for _ in range(draw(st.integers(0 if structural != "none" else 1, max_mutations))):
        draw(mutation(raw))
    if not bombs:
        _defuse(raw)
    text = json.dumps(raw, allow_nan=True)
    ending = draw(st.sampled_from(["keep"] * 8 + ["truncate", "nan"]))
    if ending == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif ending == "nan":
        text = text.replace("1", "NaN", 1) if draw(st.booleans()) else text.replace("1", "1e999", 1)
    return text


def _defuse(raw: Any) -> None:
    """Keep CI cases cheap: block repeats stay small (the bombs are their own, slower check)."""
    for parent, key in _containers(raw):
        if key == "repeat" and isinstance(parent[key], int) and not isinstance(parent[key], bool):
            parent[key] = max(-1, min(parent[key], 3))
