"""Ports and params of a node in the context of its project (block nodes take both from a block)."""

from __future__ import annotations

from typing import Any, Mapping

from nodes import Port, registry
from nodes.base import Params
from nodes.io import role_of

from .project import PARAM_REF_KEY, NodeModel, Project


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
            ref = value[PARAM_REF_KEY]
            if block_values is None:
                raise ValueError(f"param '{key}' refers to block param '{ref}' outside a block")
            if ref not in block_values:
                raise KeyError(f"param '{key}' refers to unknown block param '{ref}'")
            value = block_values[ref]
        raw[key] = value
    params = cls.Params.model_validate(raw)
    if role_of(cls) == "block":
        block = project.block(params.block)  # KeyError names the missing block
        declared = {p.name for p in block.params}
        unknown = set(params.args) - declared
        if unknown:
            raise KeyError(f"block '{block.name}' has no param '{sorted(unknown)[0]}'")
    return params


def block_args(project: Project, params: Any) -> dict[str, Any]:
    """A block node's full argument values: the block's defaults overridden by the node's args."""
    values = project.block(params.block).param_defaults()
    values.update(params.args)
    return values


def ports_of(project: Project, node: NodeModel) -> tuple[tuple[Port, ...], tuple[Port, ...]]:
    """(inputs, outputs) of a node; for a block node, its block's Block Input/Output nodes."""
    cls = registry.get(node.type)
    if role_of(cls) != "block":
        return cls.inputs, cls.outputs
    name = node.params.get("block")
    if not isinstance(name, str) or not project.has_block(name):
        return (), ()
    block = project.block(name)
    ins, outs = [], []
    for inner in block.nodes:
        role = role_of(registry.get(inner.type))
        if role == "block_input":
            kind = inner.params.get("kind", "tensor")
            ins.append(Port(inner.name, kind=kind if isinstance(kind, str) else "tensor"))
        elif role == "block_output":
            outs.append(Port(inner.name, kind="any"))
    return tuple(ins), tuple(outs)
