"""Weights into the generated module, and the check that it computes what the original does.

Which generated submodule belongs to which imported node is read from the generated code itself,
not from its attribute names: a forward pre-hook looks at the calling line of the generated
source, which ``node_lines`` maps to (network or block, node id); the lines of every enclosing
generated forward give the path through blocks, and the call order tells repeats apart. The
original side has the same paths from the conversion, so the two sides pair up one to one.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from typing import Any, Iterable

import torch
from torch import nn

from .assemble import node_id
from .scopes import Scope, Unsupported

Path_ = tuple[tuple[str, str], ...]
_MODULE_PY = os.path.join(os.path.dirname(torch.__file__), "nn", "modules", "module.py")
_CONTAINER_PY = os.path.join(os.path.dirname(torch.__file__), "nn", "modules", "container.py")
_MACHINERY = {_MODULE_PY, _CONTAINER_PY}


def original_modules(root: Scope) -> list[tuple[Path_, nn.Module, dict[str, str]]]:
    """(path, original module, key renames) of every node with weights, in call order."""
    out: list[tuple[Path_, nn.Module, dict[str, str]]] = []

    def walk(sc: Scope, prefix: Path_, scope_name: str) -> None:
        for n in sc.nodes:
            here = prefix + ((scope_name, node_id(n)),)
            if n.children:
                for child in n.children:
                    walk(child, here, child.block or "")
            elif n.module is not None and n.type != "linear.tied_linear" \
                    and n.module.state_dict():
                out.append((here, n.module, n.rename))

    walk(root, (), "net")
    return out


def generated_modules(model: nn.Module, filename: str,
                      node_lines: dict[tuple[str, str], list[int]],
                      example: list[torch.Tensor], skip: set[type]) -> dict[Path_, list[nn.Module]]:
    """Path -> the generated modules called there, in call order, found by running ``model``.

    The path is read from the generated lines on the stack; where the generator wrote a block
    as an ``nn.Sequential`` the inner modules are called by torch, so their path ends at the
    block node and their order tells them apart. Block classes and containers (``skip``) are
    not nodes and are left out."""
    owner = {line: key for key, lines in node_lines.items() for line in lines}
    calls: dict[Path_, list[nn.Module]] = defaultdict(list)

    def pre_hook(mod: nn.Module, args: Any) -> None:
        if type(mod) in skip or not mod.state_dict():
            return
        f = sys._getframe(1)
        while f is not None and f.f_code.co_filename in _MACHINERY:
            if f.f_code.co_filename == _CONTAINER_PY and type(f.f_locals.get("self")) not in (
                    nn.Sequential, nn.ModuleList):
                return
            f = f.f_back
        if f is None or f.f_code.co_filename != filename or f.f_lineno not in owner:
            return
        path = []
        g = f
        while g is not None:
            if g.f_code.co_filename == filename and g.f_lineno in owner:
                path.append(owner[g.f_lineno])
            g = g.f_back
        found = calls[tuple(reversed(path))]
        if all(m is not mod for m in found):
            found.append(mod)

    handles = [m.register_forward_pre_hook(pre_hook) for m in model.modules()]
    try:
        with torch.no_grad():
            model(*example)
    finally:
        for h in handles:
            h.remove()
    return calls


def copy_weights(root: Scope, model: nn.Module, filename: str,
                 node_lines: dict[tuple[str, str], list[int]],
                 example: list[torch.Tensor], skip: set[type]) -> None:
    """Load each original module's state into its generated counterpart; every generated
    tensor must be covered, or the import is refused (Unsupported)."""
    gen = generated_modules(model, filename, node_lines, example, skip)
    queues: dict[Path_, list[tuple[nn.Module, dict[str, str]]]] = defaultdict(list)
    # a block codegen wrote as an nn.Sequential has no forward of its own: its steps are never
    # on the generated stack, so the original paths skip them too
    seen = {step for p in gen for step in p}
    for path, module, rename in original_modules(root):
        path = tuple(step for step in path[:-1] if step in seen) + path[-1:]
        key = next((path[:i] for i in range(len(path), 0, -1) if path[:i] in gen), path)
        queues[key].append((module, rename))
    loaded: set[int] = set()
    for key, mods in queues.items():
        targets = gen.get(key, [])
        if len(targets) != len(mods):
            raise Unsupported(f"the generated model has {len(targets)} module(s) with weights "
                              f"where the original has {len(mods)} at {_label(key)}; this is a "
                              "Layerloom bug")
        for target, (source, rename) in zip(targets, mods, strict=True):
            state = source.state_dict()
            mapped = {k: state[rename.get(k, k)] for k in target.state_dict()
                      if rename.get(k, k) in state}
            try:
                target.load_state_dict(mapped, strict=True)
            except RuntimeError as err:
                raise Unsupported(f"weights of {_label(key)} do not fit: {err}") from err
            loaded.update(id(m) for m in target.modules())
    missing = [name for name, m in model.named_modules()
               if _holds_state(m) and id(m) not in loaded]
    if missing:
        raise Unsupported("no imported weights for " + ", ".join(missing[:5])
                          + "; this is a Layerloom bug")


def _holds_state(m: nn.Module) -> bool:
    """A module with tensors of its own in its state_dict. An unset one is registered as None
    (``LayerNorm(elementwise_affine=False).weight``) and is not state."""
    return (any(p is not None for p in m._parameters.values())
            or any(b is not None for k, b in m._buffers.items()
                   if k not in m._non_persistent_buffers_set))


def _label(path: Iterable[tuple[str, str]]) -> str:
    return " / ".join(f"{scope}:{node}" for scope, node in path)


def max_difference(a: Any, b: Any) -> float:
    """Largest absolute difference between two outputs (tensors or tuples of them)."""
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.shape != b.shape:
            return float("inf")
        if a.numel() == 0:
            return 0.0
        return float((a.double() - b.double()).abs().max())
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b):
        return max((max_difference(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    return float("inf")


def scale(a: Any) -> float:
    if isinstance(a, torch.Tensor):
        return float(a.double().abs().max()) if a.numel() else 0.0
    return max((scale(x) for x in a), default=0.0)
