"""Param field types shared by the window families (conv, pool): sizes with bounds, and how an
int-or-[h, w] value becomes one entry per spatial dim."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

Kernel = Annotated[int, Field(ge=1, le=64)]
Step = Annotated[int, Field(ge=1, le=64)]
Pad = Annotated[int, Field(ge=0, le=64)]
Pair = Annotated[list[Annotated[int, Field(ge=0, le=64)]], Field(min_length=2, max_length=2)]


def pair(value: Any, n: int) -> tuple[int, ...]:
    """An int or an [h, w] list as one entry per spatial dim."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,) * n


def compact(value: tuple[int, ...]) -> int | tuple[int, ...]:
    """(3, 3) -> 3, so square sizes print as one number."""
    return value[0] if len(set(value)) == 1 else value
