"""Converted scopes -> a Project: equal submodules become one block, Sequential runs a repeat.

Submodule calls of one class that converted to the same subgraph (same nodes, wires and every
param that is not a plain number equal) become one block; numbers that differ between them (a
stage's width) become block params, named after the constructor argument with those values
(``planes``) where one matches, so a torchvision ``BasicBlock`` is one block used in every stage.
Consecutive calls of one block with equal args inside one ``Sequential``, each feeding only the
next, become one block node with ``repeat`` N named after the Sequential (``layer1``).

The original's attribute names are kept wherever the structure allows, so its ``state_dict``
loads by name (``strict=True``): fx traces through containers, so the nodes of one
``nn.Sequential`` attribute that form a chain are first gathered into a block of their own, a
chain, which codegen writes back as an ``nn.Sequential`` named after the attribute (``features``,
``layer2``, ``downsample``: keys ``layer2.0.downsample.1.weight``); one that holds a single
repeated block is that block node. Nodes are written in the original's registration order where
the wires allow, so the keys come out in the original's order too.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from torch import nn

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


# -- nn.Sequential attributes -> chain blocks ------------------------------------------------


def group_sequentials(sc: Scope) -> None:
    """In ``sc`` and every scope below it: the nodes converted from one ``nn.Sequential``
    attribute that form a chain become one block node (named after the attribute) holding them
    in a child scope, so the generated model has that Sequential again."""
    groups: dict[str, list[FNode]] = {}
    for n in sc.nodes:
        seq = _sequential_of(sc, n.qualname)
        if seq is not None:
            groups.setdefault(seq, []).append(n)
    for seq, members in groups.items():
        chain = _chain_of(sc, members)
        if chain is not None:
            _wrap(sc, seq, chain)
    for n in sc.nodes:
        for child in n.children:
            group_sequentials(child)


def _relative(sc: Scope, qual: str) -> str | None:
    if not sc.qualname:
        return qual or None
    return qual[len(sc.qualname) + 1:] if qual.startswith(sc.qualname + ".") else None


def _sequential_of(sc: Scope, qual: str) -> str | None:
    """The outermost plain ``nn.Sequential`` of ``sc.module`` that holds the module ``qual``."""
    rel = _relative(sc, qual)
    if not rel:
        return None
    parts = rel.split(".")
    for k in range(1, len(parts)):
        path = ".".join(parts[:k])
        try:
            m = sc.module.get_submodule(path)
        except AttributeError:
            return None
        if type(m) is nn.Sequential:
            return path
    return None


def _users(sc: Scope, name: str) -> list[tuple[FNode, str]]:
    return [(n, sport) for n in sc.nodes for _, src, sport in n.inputs if src == name]


def _chain_of(sc: Scope, members: list[FNode]) -> list[FNode] | None:
    """``members`` in chain order when they are one: one value in, each node's one input the
    previous node's output (used by nothing else), one output port of the last used outside."""
    names = {n.name for n in members}
    if any(len(n.inputs) != 1 for n in members):
        return None
    heads = [n for n in members if n.inputs[0][1] not in names]
    if len(heads) != 1:
        return None
    chain = [heads[0]]
    while len(chain) < len(members):
        users = _users(sc, chain[-1].name)
        if len(users) != 1 or users[0][0].name not in names:
            return None
        chain.append(users[0][0])
    if len({sport for _, sport in _users(sc, chain[-1].name)}) > 1:
        return None
    return chain


def _wrap(sc: Scope, seq: str, chain: list[FNode]) -> None:
    """Move ``chain`` into a child scope for the Sequential ``seq`` of ``sc.module``; a
    Sequential of one layer is that layer, named after the attribute (a block of one node
    would only add a level: codegen writes a one-layer chain as the bare layer anyway)."""
    qual = f"{sc.qualname}.{seq}" if sc.qualname else seq
    if len(chain) == 1 and chain[0].type != "block.block" and not chain[0].children:
        if not sc.sequential:  # inside a Sequential, members are named by kind and index
            old, chain[0].name = chain[0].name, sc.unique(seq.replace(".", "_"))
            for n in sc.nodes:
                n.inputs = [(p, chain[0].name if s == old else s, sp) for p, s, sp in n.inputs]
        return
    inner = Scope(sc.module.get_submodule(seq), qual, sequential=True)
    taken = {n.name for n in chain}
    x = _fresh("x", taken)
    y = _fresh("y", taken | {x})
    port, src, sport = chain[0].inputs[0]
    out_ports = {p for _, p in _users(sc, chain[-1].name)}
    last_port = next(iter(out_ports), "y")
    inner.nodes.append(FNode(x, "io.block_input", {"kind": "tensor"}))
    inner.inputs.append(x)
    chain[0].inputs = [(port, x, "y")]
    inner.nodes.extend(chain)
    inner.nodes.append(FNode(y, "io.block_output", {}, inputs=[("x", chain[-1].name, last_port)]))
    inner.outputs.append(y)
    at = sc.nodes.index(chain[0])
    last = chain[-1].name
    for n in chain:
        sc.nodes.remove(n)
    _rename_members(inner)
    label = f"sequential_{seq}" if sc.sequential and seq.isdigit() else seq.replace(".", "_")
    wrapper = FNode(sc.unique(label), "block.block",
                    {"block": "Sequential", "repeat": 1, "args": {}},
                    inputs=[(x, src, sport)], children=[inner], qualname=qual)
    sc.nodes.insert(at, wrapper)
    for n in sc.nodes:
        n.inputs = [(p, wrapper.name, y) if s == last else (p, s, sp)
                    for p, s, sp in n.inputs]


def _rename_members(inner: Scope) -> None:
    """Nodes inside a Sequential are named by what they are and their index (``conv2d_0``,
    ``basicblock_1``: the index is the state_dict key's), not by the stage they are in, so equal
    stages (layer2, layer3 ...) have equal graphs and become one block."""
    renames: dict[str, str] = {}
    taken = set(inner.inputs) | set(inner.outputs)
    for n in inner.nodes:
        if n.name in inner.inputs or n.name in inner.outputs:
            continue
        rel = _relative(inner, n.qualname) or ""
        idx = rel.split(".")[0] if rel else ""
        module = n.module if n.module is not None else (
            n.children[0].module if n.children else None)
        label = type(module).__name__.lower() if module is not None else n.type.rpartition(".")[2]
        base = re.sub(r"[^a-z0-9_]", "_", f"{label}_{idx}" if idx.isdigit() else label)
        renames[n.name] = _fresh(base, taken)
        taken.add(renames[n.name])
    for n in inner.nodes:
        n.name = renames.get(n.name, n.name)
        n.inputs = [(p, renames.get(s, s), sp) for p, s, sp in n.inputs]


def _fresh(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        name = f"{base}_{i}"
        i += 1
    return name


def _parents(root: Scope) -> dict[int, tuple[Scope, FNode]]:
    out: dict[int, tuple[Scope, FNode]] = {}

    def walk(sc: Scope) -> None:
        for n in sc.nodes:
            for c in n.children:
                out[id(c)] = (sc, n)
                walk(c)

    walk(root)
    return out


def _unwrap(sc: Scope, parents: dict[int, tuple[Scope, FNode]]) -> bool:
    """A Sequential scope that is one (repeated) block node: its wrapper becomes that node, so
    ``layer1`` is the BasicBlock ×2 itself, not a block around it."""
    if not sc.sequential or id(sc) not in parents:
        return False
    body = [n for n in sc.nodes if n.name not in sc.inputs and n.name not in sc.outputs]
    if len(body) != 1 or body[0].type != "block.block" or not body[0].children:
        return False
    parent, wrapper = parents[id(sc)]
    if len(wrapper.children) != 1:
        return False
    kids = body[0].children
    if len(kids[0].inputs) != 1 or len(kids[0].outputs) != 1:
        return False
    old_out = sc.outputs[0]
    wrapper.children = kids
    wrapper.inputs = [(kids[0].inputs[0], s, sp) for _, s, sp in wrapper.inputs]
    for n in parent.nodes:
        n.inputs = [(p, s, kids[0].outputs[0] if s == wrapper.name and sp == old_out else sp)
                    for p, s, sp in n.inputs]
    for kid in kids:
        parents[id(kid)] = (parent, wrapper)
    return True


def _class_name(sc: Scope) -> str:
    """A block's name: the class's, or for a Sequential the attribute's (``Downsample``); one
    held by index in another Sequential is named after the nearest attribute and its indices
    (``features.0`` ``Features0``, ``features.2.0`` ``Features2_0``)."""
    if not sc.sequential:
        return type(sc.module).__name__
    parts = sc.qualname.split(".")
    named = max((i for i, w in enumerate(parts) if not w.isdigit()), default=-1)
    head = re.sub(r"(?<=[A-Za-z_])\d+$", "", parts[named]) if named >= 0 else "sequential"
    indices = parts[named + 1:]  # layer2..4 share one name (Layer); their items keep indices
    head = head[:1].upper() + head[1:]
    return head + "_".join(indices) if indices else head


def assign_blocks(root: Scope) -> list[tuple[str, Scope, dict[str, Any]]]:
    """Give every child scope its block and args; returns (name, representative, param
    defaults) per block (each member's ``lifted`` says which values became params)."""
    group_sequentials(root)
    parents = _parents(root)
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
        level = [sc for sc in level if not _unwrap(sc, parents)]
        groups: dict[str, list[Scope]] = {}
        for sc in level:
            groups.setdefault(_signature(sc), []).append(sc)
        for members in groups.values():
            name = _block_name(_class_name(members[0]), taken)
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
        pname = (_ctor_name(members, values, set(defaults))
                 or (_bare_name(key, set(defaults)) if members[0].sequential else None)
                 or _param_name(key, set(defaults)))
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


def _bare_name(key: tuple[str, ...], used: set[str]) -> str | None:
    """A Sequential has no constructor to name its params after: the layer's own argument
    (``out_channels``) where no other param took it."""
    name = key[-1]
    return name if name not in used and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else None


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


def registration_order(sc: Scope) -> list[FNode]:
    """``sc.nodes`` in the order their modules were registered in the original (its
    ``state_dict`` order); a node without a module comes right after its latest input. The
    project keeps this order and codegen breaks ties of the wiring by it, so the generated
    ``__init__`` assigns the submodules in the original's order where the wires allow (a
    ResNet block's ``downsample``, called first, still comes last)."""
    index = {name: i for i, (name, _) in enumerate(sc.module.named_modules())}
    rank: dict[str, float] = {}
    for n in sc.nodes:  # fx order: a node's inputs come before it
        rel = _relative(sc, n.qualname) if n.qualname else None
        after = max((rank.get(src, -1) for _, src, _ in n.inputs), default=-1)
        if n.name in sc.outputs:
            rank[n.name] = float("inf")
        elif rel is not None and rel in index:  # a module called twice: its second call later
            rank[n.name] = max(index[rel], after)
        else:
            rank[n.name] = after
    pos = {n.name: i for i, n in enumerate(sc.nodes)}
    return sorted(sc.nodes, key=lambda n: (rank[n.name], pos[n.name]))


def _write(g: Graph, sc: Scope, lifted: dict[tuple[str, ...], str]) -> None:
    for n in registration_order(sc):
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
