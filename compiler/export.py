"""Write the generated model source to disk: the same text ``build`` executes."""

from __future__ import annotations

from pathlib import Path

from .codegen import PythonSource, generate, verify_source
from .project import Project, atomic_write_text


def export_model(project: Project | PythonSource, out_dir: str | Path) -> Path:
    """Write ``model.py`` into ``out_dir``; returns its path.

    The text passes :func:`verify_source` first: a module that would not parse or holds anything
    the generator does not write is refused (CodegenError) and nothing is written.
    """
    source = project if isinstance(project, PythonSource) else generate(project)
    verify_source(source.text, source.node_lines)
    path = Path(out_dir) / "model.py"
    atomic_write_text(path, source.text)
    return path
