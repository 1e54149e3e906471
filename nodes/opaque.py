"""The opaque node: a module of the user's own code that has no node type, kept working as is.

An import (``compiler.importing``) turns a submodule it cannot express in the catalogue into one of
these. The project stores only data: a strictly validated reference to the class
(``path/to/file.py:Name`` or ``package.module:Name``), its constructor arguments as literals, and
the port shapes inferred at import time. So checking a project never imports or runs anything:
``infer`` reads the stored shapes and ``count_params`` the stored count. Building one (the
generated code calls :func:`user_module`, which imports the class) is gated by an explicit trust
step in ``compiler.build``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Mapping

from pydantic import Field, field_validator
from torch import nn

from .base import (
    Call,
    Emission,
    Example,
    NodeType,
    Params,
    Port,
    ShapeError,
    TensorSpec,
    register_helper,
)
from .registry import register

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
#: ``pkg.mod:Name`` (dotted identifiers) or ``path/to/file.py:Name`` (a path of plain segments:
#: letters, digits, ``_ - .``, no ``..`` segment, no quotes, spaces or control characters).
MODULE_REF = re.compile(
    rf"^(?:(?P<mod>{_IDENT}(?:\.{_IDENT})*)|(?P<path>/?(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)*"
    rf"[A-Za-z0-9_][A-Za-z0-9_.-]*\.py)):(?P<name>{_IDENT}(?:\.{_IDENT})*)$")
_DIM = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}'*$")

#: a constructor argument or a constant keyword: a plain value, bounded like every int param
Literal = Annotated[int, Field(ge=-(2**53), le=2**53)] | float | bool | str | None


def check_ref(ref: str) -> str:
    """``ref`` if it is a well-formed module reference, else ValueError saying what is allowed."""
    if not isinstance(ref, str) or len(ref) > 400 or not MODULE_REF.fullmatch(ref):
        raise ValueError(f"module reference {str(ref)[:80]!r} is not 'path/to/file.py:Class' or "
                         "'package.module:Class' (plain identifiers and path segments only)")
    if any(seg == ".." for seg in ref.rpartition(":")[0].split("/")):
        raise ValueError("a module reference may not contain '..'")
    return ref


def ref_source(ref: str) -> str:
    """What a reference imports: the file path or the module name (the part before ':')."""
    return ref.rpartition(":")[0]


def _check_dims(dims: list[Any]) -> list[Any]:
    for d in dims:
        if isinstance(d, bool) or not (isinstance(d, int) and d >= 0
                                       or isinstance(d, str) and _DIM.fullmatch(d)):
            raise ValueError(f"dimension {d!r} must be a size or a symbol such as 'N'")
    return dims


class TensorShape(Params):
    dims: list[Annotated[int, Field(ge=0, le=2**31)] | str] = Field(
        max_length=8, description="Shape, symbolic dims kept ('N')")
    dtype: str = Field("float", pattern=r"^(float|long|bool)$")

    _v = field_validator("dims")(classmethod(lambda cls, v: _check_dims(v)))

    def spec(self) -> TensorSpec:
        return TensorSpec(tuple(self.dims), self.dtype)


class OpaqueParams(Params):
    module: str = Field(max_length=400, description="The class it imports: file.py:Name or "
                        "package.module:Name")
    args: list[Literal] = Field(default_factory=list, max_length=64,
                                description="Constructor arguments (literals only)")
    kwargs: dict[str, Literal] = Field(default_factory=dict,
                                       description="Constructor keywords (literals only)")
    call_kwargs: dict[str, Literal] = Field(default_factory=dict,
                                            description="Constant keywords of the forward call")
    inputs: list[TensorShape] = Field(default_factory=list, max_length=16,
                                      description="Input shapes seen at import")
    output: TensorShape = Field(description="Output shape seen at import")
    parameters: int = Field(0, ge=0, le=2**40, description="Parameter count at import")

    @field_validator("module")
    @classmethod
    def _ref(cls, v: str) -> str:
        return check_ref(v)

    @field_validator("kwargs", "call_kwargs")
    @classmethod
    def _keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        for k in v:
            if not re.fullmatch(_IDENT, k):
                raise ValueError(f"keyword {k[:40]!r} is not an identifier")
        return v


def user_module(ref: str, *args, **kwargs) -> nn.Module:
    """An instance of the user's own class ``ref`` ("path/to/file.py:Name" or "pkg.mod:Name").

    This runs the user's code: Layerloom builds a model that calls it only after the user trusted
    that file. The class must be an ``nn.Module``.
    """
    import importlib
    import importlib.util
    import operator
    import sys
    from pathlib import Path

    import torch

    where, _, name = ref.rpartition(":")
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"this model needs your file {where} (class {name}); put it "
                                    "there or edit the path in the project")
        module_name = "layerloom_user_" + "".join(c if c.isalnum() else "_" for c in str(path))
        module = sys.modules.get(module_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
    else:
        module = importlib.import_module(where)
    cls = operator.attrgetter(name)(module)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise TypeError(f"{ref} is not an nn.Module class")
    return cls(*args, **kwargs)


register_helper("user_module", user_module)


@register
class Opaque(NodeType):
    id = "opaque.module"
    name = "Module (your code)"
    category = "Imported"
    description = ("A module of your own code that Layerloom has no node for, kept working as is: "
                   "the generated code imports its class from your file.")
    Params = OpaqueParams
    inputs = (Port("x", variadic=True, doc="The forward's tensor arguments, in order"),)
    outputs = (Port("y"),)
    key_params = ("module",)

    @classmethod
    def summary(cls, p: OpaqueParams) -> str:
        return p.module.rpartition(":")[2]

    @classmethod
    def infer(cls, p: OpaqueParams, ins: Mapping[str, Any]) -> dict[str, Any]:
        """The shapes stored at import: nothing of the user's code runs to check a project."""
        got = ins.get("x") or []
        want = [s.spec() for s in p.inputs]
        if len(got) != len(want):
            raise ShapeError(f"{p.module} takes {len(want)} input(s), {len(got)} are connected",
                             "connect the inputs it was imported with", "x")
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if not isinstance(g, TensorSpec) or g.dims != w.dims or g.dtype != w.dtype:
                label = g.label() if isinstance(g, TensorSpec) else "a graph"
                raise ShapeError(
                    f"input {i + 1} is {label}, but {p.module} was imported with {w.label()}; "
                    "its shapes are only known for that input",
                    "give it the imported input shape, or import the module again", "x")
        return {"y": p.output.spec()}

    @classmethod
    def examples(cls) -> list[Example]:
        """Torch's own classes stand in for a user's file: the shape rule only reads the stored
        shapes, and the meta-device check builds the class (a library one, so nothing foreign
        runs in the tests)."""
        return [
            Example({"module": "torch.nn:Identity", "inputs": [{"dims": ["N", 8]}],
                     "output": {"dims": ["N", 8]}}, {"x": [TensorSpec(("N", 8))]}),
            Example({"module": "torch.nn:Flatten", "inputs": [{"dims": ["N", 2, 3, 4]}],
                     "output": {"dims": ["N", 24]}}, {"x": [TensorSpec(("N", 2, 3, 4))]}),
        ]

    @classmethod
    def count_params(cls, p: OpaqueParams, ins: Mapping[str, Any]) -> int:
        """The count stored at import (building the module would run the user's code)."""
        return p.parameters

    @classmethod
    def emit(cls, p: OpaqueParams, ins: Mapping[str, Any]) -> Emission:
        kw = ", ".join(f"{k}={v!r}" for k, v in p.call_kwargs.items())
        call = "{self}({x}" + (", " + kw if kw else "") + ")"
        return Emission(call, Call.of("user_module", p.module, *p.args, **p.kwargs),
                        helpers=("user_module",))


def user_code_refs(project: Any) -> list[str]:
    """Every module reference of the opaque nodes in a project (networks and blocks), in order."""
    refs: list[str] = []
    for net in [*project.networks, *project.blocks]:
        for node in net.nodes:
            if node.type == Opaque.id:
                ref = node.params.get("module")
                if isinstance(ref, str) and ref not in refs:
                    refs.append(ref)
    return refs
