"""Exec generated source into live classes, under a filename that tracebacks can show.

This is the only way a model is made from a graph: the text executed here is byte for byte the
text ``export`` writes, so what trains in the app is what the user takes away.
"""

from __future__ import annotations

import hashlib
import linecache
import sys
import types
from dataclasses import dataclass
from typing import Any, Iterable

from torch import nn

from nodes import syntax

from .codegen import PythonSource, generate, verify_source
from .project import Project
from .usercode import check_trusted


@dataclass
class BuiltModule:
    source: PythonSource
    module: types.ModuleType

    @property
    def networks(self) -> dict[str, type[nn.Module]]:
        return dict(self.module.NETWORKS)

    def instantiate(self, name: str | None = None, weights: str | None = None) -> nn.Module:
        """A fresh instance of one network (the only one if ``name`` is omitted); ``weights``: a
        project's weights folder or a safetensors file (``compiler.project_weights``) loaded
        into it, strictly."""
        nets = self.networks
        if name is None:
            if len(nets) != 1:
                raise KeyError(f"the project has {len(nets)} networks; name one of {sorted(nets)}")
            name = next(iter(nets))
        model = nets[name]()
        if weights is not None:
            from .project_weights import load_project_weights

            load_project_weights(model, name, weights)
        return model


def exec_source(text: str, module_name: str | None = None,
                node_lines: dict[tuple[str, str], list[int]] | None = None) -> types.ModuleType:
    """Exec ``text`` as a module registered in linecache and sys.modules.

    Registering in sys.modules lets pickling, deepcopy and torch's tooling find the classes.
    The text first passes :func:`verify_source` (a CodegenError naming the node if it does not),
    whoever made it: nothing reaches ``exec`` that is not the shape the generator writes.
    """
    verify_source(text, node_lines)
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    module_name = module_name or f"layerloom_generated_{digest}"
    filename = f"<layerloom {module_name}/model.py>"
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    module = types.ModuleType(module_name)
    module.__file__ = filename
    code = syntax.compile_module(text, filename)
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - our own generated source, never user text
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def build(project: Project | PythonSource, trust: Iterable[str] = ()) -> BuiltModule:
    """Generate (unless given the source) and exec. A project with opaque nodes imports the user's
    code when a network is made: refused (UntrustedCodeError) unless ``trust`` names each file."""
    source = project if isinstance(project, PythonSource) else generate(project)
    if source.analysis is not None:
        check_trusted(source.analysis.project, trust)
    elif isinstance(project, Project):
        check_trusted(project, trust)
    return BuiltModule(source, exec_source(source.text, node_lines=source.node_lines))


def build_network(project: Project, name: str | None = None) -> nn.Module:
    return build(project).instantiate(name)


def source_of(project: Project) -> str:
    return generate(project).text


__all__ = ["BuiltModule", "build", "build_network", "exec_source", "source_of", "Any"]
