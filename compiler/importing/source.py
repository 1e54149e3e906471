"""Load the user's module: ``path/to/file.py:Name`` or ``package.module:Name``.

This runs the user's own code (their file, their class): the CLI and the app say so before they
call it. Constructor arguments of every submodule are recorded while the model is built (a
profile hook sees each ``__init__`` call with its arguments), so an opaque node can rebuild the
same module later from literals.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

from torch import nn

from nodes.opaque import check_ref

#: module name of a loaded user file -> its resolved path (to write references back)
LOADED_FILES: dict[str, Path] = {}


class SourceError(Exception):
    """SOURCE could not be loaded or did not give an nn.Module; says how to fix it."""


def _file_module_name(path: Path) -> str:
    return "layerloom_user_" + "".join(c if c.isalnum() else "_" for c in str(path))


def load_object(source: str) -> Any:
    """The class or factory that SOURCE names (importing the user's file or module)."""
    where, sep, name = source.rpartition(":")
    if not sep or not where or not name:
        raise SourceError(f"'{source}' is not path/to/file.py:Name or package.module:Name")
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise SourceError(f"no file {where}")
        mod_name = _file_module_name(path)
        module = sys.modules.get(mod_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise SourceError(f"cannot load {where} as Python")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as err:
                sys.modules.pop(mod_name, None)
                raise SourceError(f"running {where} failed: {type(err).__name__}: {err}") from err
        LOADED_FILES[mod_name] = path
    else:
        try:
            module = importlib.import_module(where)
        except Exception as err:
            raise SourceError(f"cannot import {where}: {type(err).__name__}: {err}") from err
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise SourceError(f"{where} has no '{name}'")
        obj = getattr(obj, part)
    return obj


def instantiate(obj: Any, source: str) -> tuple[nn.Module, dict[int, dict[str, Any]]]:
    """Call the class or factory with no arguments; returns the model and, per submodule id,
    the arguments its ``__init__`` received."""
    if isinstance(obj, nn.Module):
        return obj, {}
    if not callable(obj):
        raise SourceError(f"{source} is neither a class nor a function")
    ctor: dict[int, dict[str, Any]] = {}
    alive: list[nn.Module] = []  # keeps temporaries alive, so no id is reused while recording

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event != "call" or frame.f_code.co_name != "__init__":
            return
        self = frame.f_locals.get("self")
        if isinstance(self, nn.Module) and id(self) not in ctor:
            info = inspect.getargvalues(frame)
            values = {a: info.locals[a] for a in info.args[1:] if a in info.locals}
            if info.varargs and info.locals.get(info.varargs):
                values["*"] = tuple(info.locals[info.varargs])
            if info.keywords:
                values.update(info.locals.get(info.keywords) or {})
            ctor[id(self)] = values
            alive.append(self)

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        model = obj()
    except TypeError as err:
        raise SourceError(f"{source}() failed: {err}; give a class with a no-argument "
                          "constructor or a factory function") from err
    finally:
        sys.setprofile(previous)
    if not isinstance(model, nn.Module):
        raise SourceError(f"{source}() returned a {type(model).__name__}, not an nn.Module")
    ids = {id(m) for m in model.modules()}
    return model, {k: v for k, v in ctor.items() if k in ids}


def class_ref(cls: type) -> str | None:
    """A reference an opaque node can store for ``cls``, or None when it has no importable home."""
    import torch

    name = cls.__qualname__
    if "<" in name:
        return None  # a class defined inside a function
    path = LOADED_FILES.get(cls.__module__)
    if path is not None:
        ref = f"{path}:{name}"
    elif getattr(torch.nn, cls.__name__, None) is cls:
        ref = f"torch.nn:{cls.__name__}"
    elif cls.__module__ and cls.__module__ != "__main__" and not cls.__module__.startswith(
            "layerloom_"):
        ref = f"{cls.__module__}:{name}"
    else:
        return None
    try:
        return check_ref(ref)
    except ValueError:
        return None


def call_ctor(values: dict[str, Any], cls: type) -> tuple[list[Any], dict[str, Any]] | None:
    """Recorded constructor values as (args, kwargs) of plain literals, or None if they are not."""
    def plain(v: Any) -> bool:
        return v is None or type(v) in (bool, int, float, str)

    args = list(values.get("*", ()))
    kwargs = {k: v for k, v in values.items() if k != "*"}
    if not all(plain(v) for v in [*args, *kwargs.values()]):
        return None
    try:
        sig = inspect.signature(cls.__init__)
        positional_only = [p.name for p in sig.parameters.values()
                           if p.kind is inspect.Parameter.POSITIONAL_ONLY]
    except (TypeError, ValueError):
        positional_only = []
    if positional_only:
        return None
    return args, kwargs


Factory = Callable[[], nn.Module]
