"""Ports and params of a node in the context of its project (block nodes take both from a block)."""

from __future__ import annotations

from typing import Any, Mapping

from nodes import Port, registry
from nodes.base import Params
from nodes.io import Role, role_of

from .project import PARAM_REF_KEY, EdgeModel, NodeModel, Project


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {PARAM_REF_KEY}


def resolve_params(project: Project, node: NodeModel,
                   block_values: Mapping[str, Any] | None = None) -> Params:
    """The node's validated Params, with ``{"$param": name}`` replaced from the enclosing block.

    Raises pydantic's ValidationError for bad values and KeyError/ValueError for bad references.
    """
    cls = registry.get(node.type)
    raw: dict[str, Any] = {}
    for key, value in node.params.items():
        if is_ref(value):
            value = _resolve_ref(key, value, block_values)
        raw[key] = value
    if role_of(cls) == Role.BLOCK and isinstance(raw.get("args"), dict):
        # A nested block node may pass the enclosing block's param on: args {"planes": $param}.
        raw["args"] = {k: _resolve_ref(f"args.{k}", v, block_values) if is_ref(v) else v
                       for k, v in raw["args"].items()}
    params = cls.Params.model_validate(raw)
    if role_of(cls) == Role.BLOCK:
        block = project.block(params.block)  # KeyError names the missing block
        declared = {p.name for p in block.params}
        unknown = set(params.args) - declared
        if unknown:
            raise KeyError(f"block '{block.name}' has no param '{sorted(unknown)[0]}'")
    return params


def _resolve_ref(key: str, value: dict, block_values: Mapping[str, Any] | None) -> Any:
    ref = value[PARAM_REF_KEY]
    if not isinstance(ref, str):
        raise ValueError(f"param '{key}': a block param reference names a param, "
                         f"e.g. {{\"{PARAM_REF_KEY}\": \"planes\"}}")
    if block_values is None:
        raise ValueError(f"param '{key}' refers to block param '{ref}' outside a block")
    if ref not in block_values:
        raise KeyError(f"param '{key}' refers to unknown block param '{ref}'")
    return block_values[ref]


def find_port(ports: tuple[Port, ...], name: str) -> Port | None:
    """The port called ``name``; the one lookup that loading, validation and editing share."""
    return next((p for p in ports if p.name == name), None)


def wire_problem(project: Project, edge: EdgeModel,
                 by_id: Mapping[str, NodeModel]) -> tuple[str, str] | None:
    """Why a wire cannot exist in its network, as (message, offending field), or None.

    Checks what makes a document inconsistent (ends that name no node or no port, a node wired to
    itself); kinds and counts of wires are diagnostics of ``compiler.validate``.
    """
    for end, port_attr, side in (("src", "src_port", 1), ("dst", "dst_port", 0)):
        node_id = getattr(edge, end)
        if node_id not in by_id:
            return f"wire to a missing node '{node_id}'", end
        port = getattr(edge, port_attr)
        if find_port(ports_of(project, by_id[node_id])[side], port) is None:
            what = "output" if side else "input"
            return f"node '{by_id[node_id].name}' has no {what} port '{port}'", port_attr
    if edge.src == edge.dst:
        return f"node '{by_id[edge.src].name}' is wired to itself", "dst"
    return None


def block_args(project: Project, params: Any) -> dict[str, Any]:
    """A block node's full argument values: the block's defaults overridden by the node's args."""
    values = project.block(params.block).param_defaults()
    values.update(params.args)
    return values


def ports_of(project: Project, node: NodeModel) -> tuple[tuple[Port, ...], tuple[Port, ...]]:
    """(inputs, outputs) of a node; for a block node, its block's Block Input/Output nodes."""
    cls = registry.get(node.type)
    if role_of(cls) != Role.BLOCK:
        return cls.inputs, cls.outputs
    name = node.params.get("block")
    if not isinstance(name, str) or not project.has_block(name):
        return (), ()
    block = project.block(name)
    ins, outs = [], []
    for inner in block.nodes:
        if not registry.has(inner.type):
            continue  # an unknown inner type is the block's own diagnostic, not its ports'
        role = role_of(registry.get(inner.type))
        if role == Role.BLOCK_INPUT:
            kind = inner.params.get("kind", "tensor")
            ins.append(Port(inner.name, kind=kind if isinstance(kind, str) else "tensor"))
        elif role == Role.BLOCK_OUTPUT:
            outs.append(Port(inner.name, kind="any"))
    return tuple(ins), tuple(outs)
