"""Training for Layerloom projects (Qt-free): recipes, offline datasets, the streaming runner,
checkpoints and the train.py export.

``training.run(project, run_dir, steps=..., on_event=...)`` trains in-process;
``python -m training.runner`` is the child-process form the app uses (protocol in ``runner``).
"""

from __future__ import annotations

from typing import Any


def run(*args: Any, **kwargs: Any) -> dict:
    """See :func:`training.runner.run` (imported lazily: it pulls in the compiler and torch)."""
    from .runner import run as _run

    return _run(*args, **kwargs)


__all__ = ["run"]
