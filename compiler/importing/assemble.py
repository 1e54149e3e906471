"""Converted scopes -> a Project: equal submodules become one block, Sequential runs a repeat.

Submodule calls of one class that converted to the same subgraph (same nodes, wires and every
param that is not a plain number equal) become one block; numbers that differ between them (a
stage's width) become block params, named after the constructor argument with those values
(``planes``) where one matches, so a torchvision ``BasicBlock`` is one block used in every stage.
Consecutive calls of one block with equal args inside one ``Sequential``, each feeding only the
next, become one block node with ``repeat`` N named after the Sequential (``layer1``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from compiler.graph import Graph, add_block, add_network, ref
from compiler.project import Project

from .scopes import FNode, Scope

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LIFTABLE = (int, float, bool, str)


def _liftable(v: Any) -> bool:
    return type(v) in _LIFTABLE


def all_scopes(root: Scope) -> list[Scope]:
    out: list[Scope] = []

    def walk(sc: Scope) -> None:
        for n in sc.nodes:
            for c in n.children:
                walk(c)
                out.append(c)

    walk(root)
    return out


def _block_params(n: FNode) -> dict[str, Any]:
    child = n.children[0]
    return {"block": child.block, "repeat": len(n.children), "args": dict(child.args)}


def _effective(n: FNode) -> dict[str, Any]:
    return _block_params(n) if n.type == "block.block" else n.params


def _flat(sc: Scope) -> list[tuple[tuple[str, ...], Any]]:
    """Every (node, param[, arg]) value of a scope, in order."""
    out: list[tuple[tuple[str, ...], Any]] = []
    for n in sc.nodes:
        for k, v in _effective(n).items():
            if k == "args" and n.type == "block.block":
                for a, av in v.items():
                    out.append(((n.name, "args", a), av))
            else:
                out.append(((n.name, k), v))
    return out


def _signature(sc: Scope) -> str:
    nodes = []
    for n in sc.nodes:
        params: dict[str, Any] = {}
        for k, v in _effective(n).items():
            if k == "args" and n.type == "block.block":
                params[k] = {a: ["*", type(av).__name__] for a, av in v.items()}
            elif _liftable(v) and k not in ("block", "module"):
                params[k] = ["*", type(v).__name__]
            else:
                params[k] = v
        nodes.append([n.name, n.type, n.inputs, params])
    return json.dumps([type(sc.module).__qualname__, sc.inputs, sc.outputs, nodes],
                      sort_keys=True, default=repr)


def merge_repeats(sc: Scope) -> None:
    """Runs of equal single-in single-out block nodes in one Sequential -> one repeated node."""
    i = 0
    while i < len(sc.nodes):
        run = [sc.nodes[i]]
        while True:
            nxt = _next_in_run(sc, run[-1])
            if nxt is None:
                break
            run.append(nxt)
        if len(run) > 1:
            _merge(sc, run)
        i += 1


def _seq_parent(qual: str) -> tuple[str, int] | None:
    parent, _, last = qual.rpartition(".")
    return (parent, int(last)) if last.isdigit() and parent else None


def _next_in_run(sc: Scope, a: FNode) -> FNode | None:
    if a.type != "block.block" or len(a.children) != 1:
        return None
    if len(a.children[0].inputs) != 1 or len(a.children[0].outputs) != 1:
        return None
    pa = _seq_parent(a.qualname)
    users = [n for n in sc.nodes if any(src == a.name for _, src, _ in n.inputs)]
    if pa is None or len(users) != 1:
        return None
    b = users[0]
    if b.type != "block.block" or len(b.inputs) != 1 or _seq_parent(b.qualname) != (
            pa[0], pa[1] + 1) or len(b.children) != 1:
        return None
    if _block_params(a) != _block_params(b):
        return None
    return b


def _merge(sc: Scope, run: list[FNode]) -> None:
    first, last = run[0], run[-1]
    parent = _seq_parent(first.qualname)
    assert parent is not None
    first.children = [n.children[0] for n in run]
    for n in sc.nodes:
        n.inputs = [(p, first.name if src == last.name else src, sp) for p, src, sp in n.inputs]
    for n in run[1:]:
        sc.nodes.remove(n)
    whole = [n for n in sc.nodes if n.qualname.startswith(parent[0] + ".")]
    if parent[1] == 0 and whole == [first]:
        old = first.name
        first.name = sc.unique(parent[0].replace(".", "_"))
        for n in sc.nodes:
            n.inputs = [(p, first.name if src == old else src, sp) for p, src, sp in n.inputs]
    first.qualname = parent[0]


def assign_blocks(root: Scope) -> list[tuple[str, Scope, dict[str, Any]]]:
    """Give every child scope its block and args; returns (name, representative, param
    defaults) per block (each member's ``lifted`` says which values became params)."""
    scopes = all_scopes(root)
    blocks: list[tuple[str, Scope, dict[str, Any]]] = []
    taken: set[str] = set()
    by_height: dict[int, list[Scope]] = defaultdict(list)
    for sc in scopes:
        by_height[sc.height()].append(sc)
    for h in sorted(by_height):
        level = by_height[h]
        for sc in level:
            merge_repeats(sc)
        groups: dict[str, list[Scope]] = {}
        for sc in level:
            groups.setdefault(_signature(sc), []).append(sc)
        for members in groups.values():
            name = _block_name(type(members[0].module).__name__, taken)
            defaults = _lift(members)
            for sc in members:
                sc.block = name
            blocks.append((name, members[0], defaults))
    merge_repeats(root)
    return blocks


def _block_name(cls: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", cls)[:90] or "Block"
    name, i = base, 2
    while name in taken:
        name = f"{base}_{i}"
        i += 1
    taken.add(name)
    return name


def _lift(members: list[Scope]) -> dict[str, Any]:
    """Values that differ between the members become block params (named after a constructor
    argument with the same values, else ``node_param``); returns the params' defaults."""
    flats = [dict(_flat(sc)) for sc in members]
    keys = list(flats[0])
    lifted: dict[tuple[str, ...], str] = {}
    defaults: dict[str, Any] = {}
    vectors: dict[tuple, str] = {}
    for key in keys:
        values = tuple(f[key] for f in flats)
        if len({json.dumps(v) for v in values}) == 1 or not all(_liftable(v) for v in values):
            continue
        typed = tuple((type(v).__name__, v) for v in values)
        if typed in vectors:
            lifted[key] = vectors[typed]
            continue
        pname = _ctor_name(members, values, set(defaults)) or _param_name(key, set(defaults))
        vectors[typed] = pname
        lifted[key] = pname
        defaults[pname] = values[0]
    for sc, flat in zip(members, flats, strict=True):
        sc.args = {p: flat[k] for k, p in lifted.items()}
        sc.lifted = lifted
    return defaults


def _ctor_name(members: list[Scope], values: tuple, used: set[str]) -> str | None:
    ctors = [sc.ctor or {} for sc in members]
    # an input size (in_channels, inplanes, c_in) is inferred, so an output name reads better
    names = sorted(ctors[0], key=lambda a: a.startswith("in") or a.endswith("_in"))
    for name in names:
        if name in used or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            continue
        vec = tuple(c.get(name) for c in ctors)
        if vec == values and all(type(a) is type(b) for a, b in zip(vec, values, strict=True)):
            return name
    return None


def _param_name(key: tuple[str, ...], used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(key[:1] + key[-1:]))
    if base[0].isdigit():
        base = "p_" + base
    name, i = base, 2
    while name in used:
        name = f"{base}_{i}"
        i += 1
    return name


# -- writing the project ---------------------------------------------------------------------


def node_id(n: FNode) -> str:
    return n.name if _ID.match(n.name) else n.name[:48] + "_" + str(abs(hash(n.name)) % 10**8)


def _write(g: Graph, sc: Scope, lifted: dict[tuple[str, ...], str]) -> None:
    for n in sc.nodes:
        params = dict(_effective(n))
        for key, pname in lifted.items():
            if key[0] != n.name:
                continue
            if len(key) == 3:
                params["args"] = {**params["args"], key[2]: ref(pname)}
            else:
                params[key[1]] = ref(pname)
        g.add(n.type, n.name, node_id=node_id(n), **params)
    for n in sc.nodes:
        for port, src, sport in n.inputs:
            g.connect(node_id(sc.node(src)), node_id(n), sport, port)


def build_project(root: Scope, name: str, description: str,
                  blocks: list[tuple[str, Scope, dict[str, Any]]]) -> Project:
    project = Project(name=name[:100] or "Imported", description=description)
    for bname, rep, defaults in blocks:
        doc = f"Imported from {type(rep.module).__qualname__} ({rep.qualname})."
        g = add_block(project, bname, defaults, description=doc)
        _write(g, rep, rep.lifted)
    _write(add_network(project, "net"), root, {})
    return project
