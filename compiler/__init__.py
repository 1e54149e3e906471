"""Layerloom's compiler: project document -> checked graph -> PyTorch source -> module (Qt-free).

Typical use::

    from compiler import Project, Graph, analyze, generate, build
    project = Project(name="mlp")
    g = add_network(project, "net")
    x, h, y = g.chain(("io.input", {"shape": ["N", 64]}, "x"),
                      ("linear.linear", {"out_features": 10}), ("io.output", {}, "logits"))
    model = build(project).instantiate()
"""

from .build import BuiltModule, build, build_network, exec_source
from .codegen import CodegenError, PythonSource, generate
from .diagnostics import Diagnostic
from .graph import Graph, GraphEditError, add_block, add_network, expand_block, make_block, ref
from .loading import load, loads
from .project import BlockModel, EdgeModel, NetworkModel, NodeModel, Project, ProjectLoadError, save
from .shapes import Analysis, NetworkResult, NodeResult, analyze

__all__ = [
    "Analysis", "BlockModel", "BuiltModule", "CodegenError", "Diagnostic", "EdgeModel", "Graph",
    "GraphEditError", "NetworkModel", "NetworkResult", "NodeModel", "NodeResult", "Project",
    "ProjectLoadError", "PythonSource", "add_block", "add_network", "analyze", "build",
    "build_network", "exec_source", "expand_block", "generate", "load", "loads", "make_block",
    "ref", "save",
]
