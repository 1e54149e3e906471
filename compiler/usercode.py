"""The trust step for projects that import the user's own code (opaque nodes).

A project file is data, so nothing in it may make Layerloom import a module on its own: building
a network whose opaque nodes name ``models/gpt.py:Attention`` runs that file. :func:`check_trusted`
refuses unless the caller passes the file (or module) it was told about: ``--trust-code FILE``
on the command line, a confirmation naming the file in the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from nodes.opaque import ref_source, user_code_refs

from .codegen import CodegenError
from .project import Project


class UntrustedCodeError(CodegenError):
    """The project imports user code that was not trusted; nothing was imported or run."""

    def __init__(self, sources: list[str]) -> None:
        self.sources = sources
        listed = ", ".join(sources)
        super().__init__(
            f"this project imports your own code from {listed}: building, training or exporting "
            "it runs that code. Nothing was imported. If you trust it, allow it explicitly: "
            + " ".join(f"--trust-code {s}" for s in sources)
            + " on the command line, or confirm when the app asks")


def _key(source: str) -> str:
    if source.endswith(".py"):
        return str(Path(source).expanduser().resolve())
    return source


def code_sources(project: Project) -> list[str]:
    """The files and modules a project's opaque nodes import (read from data, nothing run)."""
    out: list[str] = []
    for ref in user_code_refs(project):
        src = ref_source(ref)
        if src not in out:
            out.append(src)
    return out


def check_trusted(project: Project, trust: Iterable[str] = ()) -> None:
    """Raise :class:`UntrustedCodeError` unless every source the project imports is in ``trust``."""
    trusted = {_key(t) for t in trust}
    missing = [s for s in code_sources(project) if _key(s) not in trusted]
    if missing:
        raise UntrustedCodeError(missing)
