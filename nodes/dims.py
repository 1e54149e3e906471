"""Symbolic dimension maths shared by every family: products ("T*64"), primes ("T'"), and the
output sizes of convolution and pooling windows. Leaf module: imports nothing of the catalogue."""

from __future__ import annotations

import re
from typing import Iterable, Union

Dim = Union[int, str]
"""A size: a number, or a symbol such as "N", "T", "T*64" or "H'"."""

# ----------------------------------------------------------------------------------------------

Product = tuple[int, tuple[str, ...]]


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_product(d: Dim) -> Product:
    """A dim as coefficient times symbols; a sum ("T+S") stays one opaque symbol."""
    if isinstance(d, int):
        return d, ()
    coef, syms = 1, []
    for tok in _split_top(d.strip(), "*"):
        tok = tok.strip()
        if re.fullmatch(r"\d+", tok):
            coef *= int(tok)
        else:
            syms.append(tok)
    return coef, tuple(sorted(syms))


def format_product(coef: int, syms: Iterable[str]) -> Dim:
    syms = sorted(syms)
    if not syms:
        return coef
    if coef == 1 and len(syms) == 1:
        return syms[0]
    parts = [f"({s})" if len(_split_top(s, "+")) > 1 else s for s in syms]
    if coef != 1:
        parts.append(str(coef))
    return "*".join(parts)


def product(dims: Iterable[Dim]) -> Dim:
    """The number of elements of ``dims``: an int, or a symbolic product such as "T*64"."""
    coef, syms = 1, []
    for d in dims:
        c, s = parse_product(d)
        coef *= c
        syms.extend(s)
    return format_product(coef, syms)


def divide(d: Dim, k: int) -> Dim | None:
    """``d / k`` when it is exact for every value of the symbols, else None."""
    coef, syms = parse_product(d)
    if coef % k:
        return None
    return format_product(coef // k, syms)


def primed(d: Dim) -> str:
    """A size that depends on ``d`` in a way a product cannot express."""
    return f"{d}'" if re.fullmatch(r"[A-Za-z]+'*", str(d)) else f"({d})'"



def conv_out_dim(size: Dim, kernel: int, stride: int, padding: int, dilation: int = 1) -> Dim:
    if isinstance(size, str):
        if stride == 1 and 2 * padding == dilation * (kernel - 1):
            return size
        return primed(size)
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_out_dim(size: Dim, kernel: int, stride: int, padding: int, dilation: int = 1,
                 ceil_mode: bool = False) -> Dim:
    if isinstance(size, str):
        return size if (stride == 1 and 2 * padding == dilation * (kernel - 1)) else primed(size)
    num = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def conv_transpose_out_dim(size: Dim, kernel: int, stride: int, padding: int, output_padding: int,
                           dilation: int = 1) -> Dim:
    if isinstance(size, str):
        return primed(size)
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
