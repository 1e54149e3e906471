"""The block node: one instance of a project block, applied ``repeat`` times in sequence.

Its ports are the block's Block Input/Output nodes (by name), so they live in the project, not in
this class; ``compiler.ports.ports_of`` resolves them. Shapes are inferred by the compiler, which
runs the block's own graph for each repeat.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from .base import NodeType, Params, Role
from .registry import register


class BlockParams(Params):
    block: str = Field(min_length=1, max_length=100, description="Which project block this is")
    repeat: int = Field(1, ge=1, le=1000,
                        description="How many times the block is applied in a row")
    args: dict[str, int | float | bool | str] = Field(
        default_factory=dict, description="Values for the block's own parameters")


@register
class Block(NodeType):
    id = "block.block"
    name = "Block"
    category = "Blocks"
    description = "A reusable subgraph; double-click to open it. Repeats run in sequence."
    role: ClassVar[Role] = Role.BLOCK
    Params = BlockParams
    inputs = ()
    outputs = ()
    key_params = ("repeat",)

    @classmethod
    def summary(cls, p: BlockParams) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in p.args.items())
        return f"×{p.repeat}" + (f"  {extra}" if extra else "")
