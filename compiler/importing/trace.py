"""torch.fx tracing of one module's forward, with the catalogue's modules and every user submodule
as leaves, and a clear message (module, file, line) where fx cannot follow the code: the
converter then tries torch.export (:mod:`.exported`) and, where that fails too, shows it."""

from __future__ import annotations

import inspect
import linecache
import os
import traceback
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from .leaves import is_helper_function
from .scopes import Unsupported

_TORCH_DIR = os.path.dirname(torch.__file__)
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Untraceable(Unsupported):
    """fx could not follow a forward (data-dependent control flow, iterating a tensor ...)."""


def is_container(m: nn.Module) -> bool:
    """Modules fx should trace through: torch's own containers (not subclasses of them)."""
    return type(m) in (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class _Tracer(fx.Tracer):
    def __init__(self, autowrap: tuple[Any, ...]) -> None:
        super().__init__(autowrap_functions=autowrap)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return not is_container(m)


def _helper_functions(module: nn.Module) -> tuple[Any, ...]:
    """Layerloom helper functions visible to the forward (kept as one call each, not traced)."""
    fn = type(module).forward
    found = []
    for value in getattr(fn, "__globals__", {}).values():
        if is_helper_function(value):
            found.append(value)
    return tuple(found)


def trace(module: nn.Module, qualname: str, concrete: dict[str, Any]) -> fx.Graph:
    """The fx graph of ``module.forward`` with ``concrete`` arguments baked in."""
    tracer = _Tracer(_helper_functions(module))
    try:
        return tracer.trace(module, concrete_args=concrete or None)
    except Exception as err:  # fx raises TraceError, TypeError, RuntimeError ...
        raise Untraceable(_where(err, module, qualname), "") from err


def _where(err: Exception, module: nn.Module, qualname: str) -> str:
    """The user's line that stopped fx, the module it is in, and what to do about it."""
    frames = traceback.extract_tb(err.__traceback__)
    user = [f for f in frames if not f.filename.startswith(_TORCH_DIR)
            and not f.filename.startswith(_HERE)]
    name = qualname or type(module).__name__
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if user:
        f = user[-1]
        line = (f.line or linecache.getline(f.filename, f.lineno or 0)).strip()
        cls = _class_at(err, f)
        what = f"{cls} in " if cls else ""
        why = ("Data-dependent control flow cannot be drawn as a graph"
               if "control flow" in text or "iterated" in text
               else "This code cannot be followed symbolically")
        return (f"torch.fx cannot trace {what}module '{name}' ({type(module).__name__}): {text}, "
                f"at {f.filename}:{f.lineno}: `{line}`. {why}: mark that module as a leaf (--leaf "
                f"{cls or type(module).__name__}) so it is kept as your code, or make the "
                "condition a constructor setting")
    return (f"torch.fx cannot trace module '{name}' ({type(module).__name__}): {text}. Mark it "
            f"as a leaf (--leaf {type(module).__name__}) to keep it as your code")


def _class_at(err: Exception, frame: traceback.FrameSummary) -> str:
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == frame.filename and tb.tb_lineno == frame.lineno:
            self = tb.tb_frame.f_locals.get("self")
            if isinstance(self, nn.Module):
                return type(self).__name__
        tb = tb.tb_next
    return ""


def forward_params(module: nn.Module) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return []


__all__ = ["trace", "Untraceable", "is_container", "forward_params"]
