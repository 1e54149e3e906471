"""The typed editing API over one network or block of a project.

Templates, tests and the GUI's undo commands all edit through :class:`Graph`, so there is one set
of rules for what an edit may do. An edit that cannot be made raises :class:`GraphEditError` with a
reason a user can read; nothing is changed in that case. Every successful edit calls ``notify``
(the document's change hook) with a short event name.
"""

from __future__ import annotations

import copy
import re
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, Sequence

import networkx as nx
from pydantic import ValidationError

from nodes import registry
from nodes.io import Role, role_of

from .loading import SHARED_LABEL_HINT, choice_problem, choice_target, domains_agree
from .ports import is_ref, ports_of, resolve_params
from .project import (
    PARAM_REF_KEY,
    BlockModel,
    BlockParam,
    Choice,
    EdgeModel,
    NetworkModel,
    NodeModel,
    Project,
    SearchModel,
    TrainingModel,
    new_id,
)


class Change(str, Enum):
    """What an edit changed: the event the document announces and views follow. A ``str`` enum, so
    it travels through Qt signals as text and compares equal to its value."""

    NODE_ADDED = "node_added"
    NODE_REMOVED = "node_removed"
    NODE_CHANGED = "node_changed"
    EDGES_CHANGED = "edges_changed"
    POSITIONS = "positions"
    STRUCTURE = "structure"  # networks or blocks reshaped (make/expand block, paste, restore)
    TRAINING = "training"
    SEARCH = "search"  # the search section: choices or search settings
    RESET = "reset"  # a different project was loaded


Notify = Callable[[Change, dict], None]


class GraphEditError(ValueError):
    """An edit refused, with the reason (shown in the status bar / raised to scripts)."""


def _no_notify(event: Change, info: dict) -> None:
    pass


def _base_name(type_id: str) -> str:
    name = registry.get(type_id).name.lower()
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_") or "node"



class Graph:
    """Edit one network (or block) of ``project``. Cheap to create; holds no state of its own."""

    def __init__(self, project: Project, network: NetworkModel | str,
                 notify: Notify | None = None) -> None:
        self.project = project
        if isinstance(network, str):
            network = self._find(project, network)
        self.net = network
        self.notify = notify or _no_notify

    @staticmethod
    def _find(project: Project, name: str) -> NetworkModel:
        for n in project.networks:
            if n.name == name:
                return n
        for b in project.blocks:
            if b.name == name:
                return b
        raise KeyError(f"no network or block named '{name}'")

    @property
    def is_block(self) -> bool:
        return isinstance(self.net, BlockModel)

    # -- queries ------------------------------------------------------------------------------
    def node(self, node_id: str) -> NodeModel:
        try:
            return self.net.node(node_id)
        except KeyError:
            raise GraphEditError(f"no node with id '{node_id}'") from None

    def find(self, name: str) -> str:
        """The id of the node called ``name``."""
        try:
            return self.net.node_by_name(name).id
        except KeyError:
            raise GraphEditError(f"no node named '{name}' in '{self.net.name}'") from None

    def ports(self, node_id: str):
        return ports_of(self.project, self.node(node_id))

    def edges_into(self, node_id: str, port: str | None = None) -> list[EdgeModel]:
        return [e for e in self.net.edges
                if e.dst == node_id and (port is None or e.dst_port == port)]

    def edges_from(self, node_id: str, port: str | None = None) -> list[EdgeModel]:
        return [e for e in self.net.edges
                if e.src == node_id and (port is None or e.src_port == port)]

    def unique_name(self, base: str) -> str:
        taken = {n.name for n in self.net.nodes}
        if base not in taken:
            return base
        stem = re.sub(r"_?\d+$", "", base) or base
        i = 1
        while f"{stem}_{i}" in taken:
            i += 1
        return f"{stem}_{i}"

    # -- nodes --------------------------------------------------------------------------------
    def add(self, type_id: str, name: str | None = None, *, node_id: str | None = None,
            **params: Any) -> str:
        """Add a node; returns its id. Params are validated now, so a bad value never lands."""
        if not registry.has(type_id):
            raise GraphEditError(f"unknown node type '{type_id}'")
        node = NodeModel(id=node_id or new_id(), type=registry.canonical_id(type_id),
                         name=self.unique_name(name or _base_name(type_id)), params=dict(params))
        self._check_params(node)
        if name is not None and node.name != name:
            raise GraphEditError(f"a node named '{name}' already exists in '{self.net.name}'")
        self.insert_node(node)
        return node.id

    def insert_node(self, node: NodeModel, index: int | None = None) -> None:
        """Insert a ready node (undo of a removal uses this with the original index)."""
        if any(n.id == node.id for n in self.net.nodes):
            raise GraphEditError(f"node id '{node.id}' already exists")
        if index is None:
            self.net.nodes.append(node)
        else:
            self.net.nodes.insert(index, node)
        self.notify(Change.NODE_ADDED, {"network": self.net.name, "node": node.id})

    def remove(self, node_id: str) -> tuple[NodeModel, int, list[tuple[int, EdgeModel]]]:
        """Remove a node and its wires; returns what undo needs to put them back."""
        node = self.node(node_id)
        index = self.net.nodes.index(node)
        wires = [(i, e) for i, e in enumerate(self.net.edges) if node_id in (e.src, e.dst)]
        self.net.edges = [e for e in self.net.edges if node_id not in (e.src, e.dst)]
        self.net.nodes.remove(node)
        self.notify(Change.NODE_REMOVED, {"network": self.net.name, "node": node_id})
        return node, index, wires

    def restore(self, node: NodeModel, index: int, wires: Sequence[tuple[int, EdgeModel]]) -> None:
        self.insert_node(node, index)
        for i, e in sorted(wires, key=lambda w: w[0]):
            self.net.edges.insert(min(i, len(self.net.edges)), e)
        self.notify(Change.EDGES_CHANGED, {"network": self.net.name})

    def rename(self, node_id: str, name: str) -> None:
        node = self.node(node_id)
        name = name.strip()
        if not name:
            raise GraphEditError("a node name cannot be empty")
        if len(name) > 100:
            raise GraphEditError("a node name is limited to 100 characters")
        if any(n.name == name and n.id != node_id for n in self.net.nodes):
            raise GraphEditError(f"a node named '{name}' already exists")
        node.name = name
        self.notify(Change.NODE_CHANGED, {"network": self.net.name, "node": node_id})

    def set_params(self, node_id: str, **params: Any) -> dict[str, Any]:
        """Change params; returns the old values of those keys (absent keys map to a sentinel)."""
        node = self.node(node_id)
        old = {k: node.params.get(k, _MISSING) for k in params}
        trial = copy.copy(node)
        trial.params = {**node.params, **params}
        for k, v in params.items():
            if v is _MISSING:
                trial.params.pop(k, None)
        self._check_params(trial)
        node.params = trial.params
        self.notify(Change.NODE_CHANGED, {"network": self.net.name, "node": node_id})
        return old

    def _check_params(self, node: NodeModel) -> None:
        defaults = self.net.param_defaults() if isinstance(self.net, BlockModel) else None
        try:
            resolve_params(self.project, node, defaults)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ())) or "params"
            raise GraphEditError(f"{node.name}: {field}: {first.get('msg')}") from None
        except (KeyError, ValueError) as err:
            raise GraphEditError(f"{node.name}: {str(err).strip(chr(39))}") from None

    # -- wires --------------------------------------------------------------------------------
    def connect(self, src: str, dst: str, src_port: str | None = None, dst_port: str | None = None,
                *, replace: bool = False, index: int | None = None) -> EdgeModel:
        """Wire ``src.src_port`` to ``dst.dst_port`` (first ports by default).

        A second wire into a single input is refused unless ``replace`` (then the old wire goes).
        """
        a, b = self.node(src), self.node(dst)
        _, outs = ports_of(self.project, a)
        ins, _ = ports_of(self.project, b)
        if not outs:
            raise GraphEditError(f"'{a.name}' has no outputs")
        if not ins:
            raise GraphEditError(f"'{b.name}' has no inputs")
        sp = next((p for p in outs if p.name == (src_port or outs[0].name)), None)
        dp = next((p for p in ins if p.name == (dst_port or ins[0].name)), None)
        if sp is None:
            raise GraphEditError(f"'{a.name}' has no output '{src_port}'")
        if dp is None:
            raise GraphEditError(f"'{b.name}' has no input '{dst_port}'")
        if src == dst:
            raise GraphEditError(f"'{a.name}' cannot feed itself")
        if "any" not in (sp.kind, dp.kind) and sp.kind != dp.kind:
            raise GraphEditError(f"'{a.name}.{sp.name}' carries a {sp.kind} but "
                                 f"'{b.name}.{dp.name}' takes a {dp.kind}")
        if any(e.src == src and e.src_port == sp.name and e.dst == dst and e.dst_port == dp.name
               for e in self.net.edges):
            raise GraphEditError(f"'{a.name}' is already wired to '{b.name}.{dp.name}'")
        if self._reaches(dst, src):
            raise GraphEditError(f"wiring '{a.name}' into '{b.name}' would make a cycle")
        existing = self.edges_into(dst, dp.name)
        if existing and not dp.variadic:
            if not replace:
                raise GraphEditError(f"'{b.name}.{dp.name}' already has a wire (from "
                                     f"'{self.node(existing[0].src).name}')")
            for e in existing:
                self.net.edges.remove(e)
        edge = EdgeModel(src=src, src_port=sp.name, dst=dst, dst_port=dp.name)
        if index is None:
            self.net.edges.append(edge)
        else:
            self.net.edges.insert(index, edge)
        self.notify(Change.EDGES_CHANGED, {"network": self.net.name})
        return edge

    def disconnect(self, edge: EdgeModel) -> int:
        """Remove a wire; returns its index for undo."""
        for i, e in enumerate(self.net.edges):
            if e == edge:
                del self.net.edges[i]
                self.notify(Change.EDGES_CHANGED, {"network": self.net.name})
                return i
        raise GraphEditError("that wire does not exist")

    def insert_edge(self, edge: EdgeModel, index: int | None = None) -> None:
        """Put a wire back at ``index`` (undo of a disconnect or a replaced wire)."""
        for end, node_id in (("source", edge.src), ("target", edge.dst)):
            if not any(n.id == node_id for n in self.net.nodes):
                raise GraphEditError(f"the wire's {end} node '{node_id}' does not exist")
        at = len(self.net.edges) if index is None else min(max(index, 0), len(self.net.edges))
        self.net.edges.insert(at, edge)
        self.notify(Change.EDGES_CHANGED, {"network": self.net.name})

    # -- layout -------------------------------------------------------------------------------
    def positions(self) -> dict[str, list[float]]:
        """Node positions of this network, kept in ``project.ui`` so files carry the layout.
        Read-only use: change them with :meth:`set_positions`."""
        return self.project.ui.get("positions", {}).get(self.net.name, {})

    def set_positions(self, values: Mapping[str, Sequence[float] | None]) -> dict[str, Any]:
        """Move nodes (``None`` forgets a stored position); returns the old values for undo."""
        store = self.project.ui.setdefault("positions", {}).setdefault(self.net.name, {})
        old = {k: copy.copy(store.get(k)) for k in values}
        for k, v in values.items():
            if v is None:
                store.pop(k, None)
            else:
                store[k] = [float(v[0]), float(v[1])]
        self.notify(Change.POSITIONS, {"network": self.net.name, "nodes": list(values)})
        return old

    def _reaches(self, start: str, target: str) -> bool:
        seen, stack = set(), [start]
        succ: dict[str, list[str]] = {}
        for e in self.net.edges:
            succ.setdefault(e.src, []).append(e.dst)
        while stack:
            n = stack.pop()
            if n == target:
                return True
            if n in seen:
                continue
            seen.add(n)
            stack.extend(succ.get(n, ()))
        return False

    def chain(self, *items: Any) -> list[str]:
        """Add and wire nodes in a row. Each item is a node id already in the graph, a type id,
        ``(type_id, params)``, or ``(type_id, params, name)``; returns the ids in order."""
        ids: list[str] = []
        for item in items:
            if isinstance(item, str) and any(n.id == item for n in self.net.nodes):
                node_id = item
            elif isinstance(item, str):
                node_id = self.add(item)
            else:
                type_id, params, *rest = item
                node_id = self.add(type_id, rest[0] if rest else None, **params)
            if ids:
                self.connect(ids[-1], node_id)
            ids.append(node_id)
        return ids

    # -- networkx -----------------------------------------------------------------------------
    def to_networkx(self) -> nx.MultiDiGraph:
        g = nx.MultiDiGraph(name=self.net.name)
        for n in self.net.nodes:
            g.add_node(n.id, type=n.type, name=n.name, params=copy.deepcopy(n.params))
        for i, e in enumerate(self.net.edges):
            g.add_edge(e.src, e.dst, key=i, src_port=e.src_port, dst_port=e.dst_port)
        return g

    @staticmethod
    def from_networkx(project: Project, g: nx.MultiDiGraph, name: str | None = None) -> "Graph":
        """Add a network built from a MultiDiGraph (node attrs: type, name, params; edge attrs:
        src_port, dst_port; edge keys order variadic inputs) to ``project``."""
        net = NetworkModel(name=name or g.graph.get("name") or "net")
        project.networks.append(net)
        graph = Graph(project, net)
        for node_id, data in g.nodes(data=True):
            graph.add(data["type"], data.get("name"), node_id=str(node_id),
                      **dict(data.get("params", {})))
        for u, v, _k, data in sorted(g.edges(keys=True, data=True), key=lambda t: str(t[2])):
            graph.connect(str(u), str(v), data.get("src_port"), data.get("dst_port"))
        return graph


_MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------


def make_block(project: Project, network: str, node_ids: Iterable[str], block_name: str,
               node_name: str | None = None) -> str:
    """Move ``node_ids`` of ``network`` into a new block; put one block node in their place.

    Wires crossing the boundary become Block Inputs (one per distinct outside source) and Block
    Outputs (one per distinct inside source). Returns the new block node's id.
    """
    graph = Graph(project, network)
    chosen = set(node_ids)
    if not chosen:
        raise GraphEditError("select at least one node to make a block")
    if project.has_block(block_name) or any(n.name == block_name for n in project.networks):
        raise GraphEditError(f"a block or network named '{block_name}' already exists")
    for nid in chosen:
        node = graph.node(nid)
        if registry.get(node.type).role in (Role.INPUT, Role.OUTPUT):
            raise GraphEditError(f"'{node.name}' is a network input/output and cannot go in a "
                                 "block")
    block = BlockModel(name=block_name)
    inner = Graph(project, block)
    inner_nodes = [n for n in graph.net.nodes if n.id in chosen]
    for n in inner_nodes:
        block.nodes.append(n.model_copy(deep=True))
    incoming: dict[tuple[str, str], str] = {}
    outgoing: dict[tuple[str, str], str] = {}
    outside_edges: list[EdgeModel] = []
    for e in graph.net.edges:
        s_in, d_in = e.src in chosen, e.dst in chosen
        if s_in and d_in:
            block.edges.append(e.model_copy())
        elif d_in:
            key = (e.src, e.src_port)
            if key not in incoming:
                incoming[key] = inner.unique_name("x" if not incoming else f"x{len(incoming)}")
                block.nodes.insert(0, NodeModel(type="io.block_input", name=incoming[key]))
            block.edges.append(EdgeModel(src=block.node_by_name(incoming[key]).id, src_port="y",
                                         dst=e.dst, dst_port=e.dst_port))
        elif s_in:
            key = (e.src, e.src_port)
            if key not in outgoing:
                outgoing[key] = inner.unique_name("y" if not outgoing else f"y{len(outgoing)}")
                out = NodeModel(type="io.block_output", name=outgoing[key])
                block.nodes.append(out)
                block.edges.append(EdgeModel(src=e.src, src_port=e.src_port, dst=out.id,
                                             dst_port="x"))
            outside_edges.append(e)
        else:
            outside_edges.append(e)
    project.blocks.append(block)
    # Replace the chosen nodes by one block node, rewiring the boundary.
    boundary_in = [e for e in graph.net.edges if e.dst in chosen and e.src not in chosen]
    boundary_out = [e for e in graph.net.edges if e.src in chosen and e.dst not in chosen]
    graph.net.nodes = [n for n in graph.net.nodes if n.id not in chosen]
    graph.net.edges = [e for e in graph.net.edges if e.src not in chosen and e.dst not in chosen]
    block_node = graph.add("block.block", node_name or block_name.lower(), block=block_name)
    done: set[tuple[str, str]] = set()
    for e in boundary_in:
        key = (e.src, e.src_port)
        if key not in done:
            done.add(key)
            graph.connect(e.src, block_node, e.src_port, incoming[key])
    for e in boundary_out:
        graph.connect(block_node, e.dst, outgoing[(e.src, e.src_port)], e.dst_port)
    graph.notify(Change.STRUCTURE, {"block": block_name})
    return block_node


def expand_block(project: Project, network: str, block_node_id: str) -> list[str]:
    """Inline a block node (all repeats) into its network; returns the new node ids."""
    graph = Graph(project, network)
    node = graph.node(block_node_id)
    outer = graph.net.param_defaults() if isinstance(graph.net, BlockModel) else None
    params = resolve_params(project, node, outer)
    if role_of(registry.get(node.type)) != Role.BLOCK:
        raise GraphEditError(f"'{node.name}' is not a block")
    block = project.block(params.block)
    values = block.param_defaults()
    values.update(params.args)
    # args passed on from the enclosing block ({"$param": ...}) stay references once inlined
    values.update({k: v for k, v in (node.params.get("args") or {}).items() if is_ref(v)})
    ins = {e.dst_port: (e.src, e.src_port) for e in graph.edges_into(block_node_id)}
    outs = graph.edges_from(block_node_id)
    graph.remove(block_node_id)
    current = dict(ins)
    created: list[str] = []
    for r in range(params.repeat):
        id_map: dict[str, str] = {}
        produced: dict[str, tuple[str, str]] = {}
        role = {n.id: role_of(registry.get(n.type)) for n in block.nodes}
        for n in block.nodes:
            if role[n.id].is_io:
                continue
            new_params = {k: (values[v[PARAM_REF_KEY]] if is_ref(v) else copy.deepcopy(v))
                          for k, v in n.params.items()}
            suffix = f"{node.name}_{r}_{n.name}" if params.repeat > 1 else f"{node.name}_{n.name}"
            id_map[n.id] = graph.add(n.type, graph.unique_name(suffix), **new_params)
            created.append(id_map[n.id])
        name_of = {n.id: n.name for n in block.nodes}
        for e in block.edges:
            if role[e.src] == Role.BLOCK_INPUT:
                source = current.get(name_of[e.src])
                if source is None:
                    continue
                src, sport = source
            else:
                src, sport = id_map[e.src], e.src_port
            if role[e.dst] == Role.BLOCK_OUTPUT:
                produced[name_of[e.dst]] = (src, sport)
                continue
            graph.connect(src, id_map[e.dst], sport, e.dst_port)
        current = {**current, **{k: v for k, v in produced.items() if k in current}}
        last = produced
    for e in outs:
        src, sport = last[e.src_port]
        graph.connect(src, e.dst, sport, e.dst_port)
    return created


def add_block(project: Project, name: str, params: dict[str, Any] | None = None,
              description: str = "") -> Graph:
    """Create an empty block (with declared params and defaults) and return its editing API."""
    if project.has_block(name):
        raise GraphEditError(f"a block named '{name}' already exists")
    block = BlockModel(name=name, description=description,
                       params=[BlockParam(name=k, default=v) for k, v in (params or {}).items()])
    project.blocks.append(block)
    return Graph(project, block)


def add_network(project: Project, name: str, description: str = "") -> Graph:
    if any(n.name == name for n in project.networks):
        raise GraphEditError(f"a network named '{name}' already exists")
    net = NetworkModel(name=name, description=description)
    project.networks.append(net)
    return Graph(project, net)


def ref(name: str) -> dict[str, str]:
    """A param value bound to the enclosing block's param ``name``."""
    return {PARAM_REF_KEY: name}


class ProjectEdits:
    """Project-wide edits with the same announce hook as :class:`Graph`: training settings and
    whole-state restores (the undo of edits that reshape networks and blocks)."""

    def __init__(self, project: Project, notify: Notify | None = None) -> None:
        self.project = project
        self.notify = notify or _no_notify

    def set_training(self, training: TrainingModel) -> TrainingModel:
        """Replace the training section; returns the old one."""
        old = self.project.training
        self.project.training = training.model_copy(deep=True)
        self.notify(Change.TRAINING, {})
        return old

    # -- the search space -----------------------------------------------------------------------
    def set_choice(self, choice: Choice) -> Choice | None:
        """Add ``choice``, or replace the one on the same (scope, node, param); returns the
        replaced one (None when it is new), which is what undo puts back or removes."""
        if choice_target(self.project, choice) is None:
            raise GraphEditError(f"no node '{choice.node}' in '{choice.scope}' to search over")
        problem = choice_problem(self.project, choice)
        if problem is not None:
            raise GraphEditError(problem)
        for other in self.project.search.choices:
            same = (other.scope, other.node, other.param) == (choice.scope, choice.node,
                                                               choice.param)
            if other.label == choice.label and not same and \
                    not domains_agree(other.domain, choice.domain):
                raise GraphEditError(SHARED_LABEL_HINT.format(label=choice.label))
        choices = self.project.search.choices
        key = (choice.scope, choice.node, choice.param)
        new = choice.model_copy(deep=True)
        for i, other in enumerate(choices):
            if (other.scope, other.node, other.param) == key:
                choices[i] = new
                self.notify(Change.SEARCH, {"network": choice.scope, "node": choice.node})
                return other
        choices.append(new)
        self.notify(Change.SEARCH, {"network": choice.scope, "node": choice.node})
        return None

    def remove_choice(self, scope: str, node: str, param: str) -> Choice | None:
        """Stop searching over one param; returns the removed choice (None if there was none)."""
        choices = self.project.search.choices
        for i, other in enumerate(choices):
            if (other.scope, other.node, other.param) == (scope, node, param):
                del choices[i]
                self.notify(Change.SEARCH, {"network": scope, "node": node})
                return other
        return None

    def set_search(self, settings: SearchModel) -> SearchModel:
        """Replace the whole search section (settings and choices); returns the old one."""
        old = self.project.search
        self.project.search = settings.model_copy(deep=True)
        self.notify(Change.SEARCH, {})
        return old

    def snapshot(self) -> dict[str, Any]:
        """The editable parts of the project (networks, blocks, layout), deep-copied."""
        return {"networks": [n.model_copy(deep=True) for n in self.project.networks],
                "blocks": [b.model_copy(deep=True) for b in self.project.blocks],
                "ui": copy.deepcopy(self.project.ui)}

    def reshaped(self, network: str | None = None) -> None:
        """Announce an edit that reshaped networks or blocks in place (make or expand a block)."""
        self.notify(Change.STRUCTURE, {"network": network} if network else {})

    def restore(self, snap: Mapping[str, Any], network: str | None = None) -> None:
        """Put back a :meth:`snapshot`; ``network`` names the one the views should show."""
        self.project.networks = [n.model_copy(deep=True) for n in snap["networks"]]
        self.project.blocks = [b.model_copy(deep=True) for b in snap["blocks"]]
        self.project.ui = copy.deepcopy(snap["ui"])
        self.reshaped(network)
