"""Datasets by name: the built-in offline ones and loaders for the user's own files.

``load(name, options, seed)`` returns a :class:`Data`; problems raise :class:`DataError`.
"""

from __future__ import annotations

from .builtin import BUILTIN
from .common import Data, DataError
from .files import FILES

DATASETS = {**BUILTIN, **FILES}


def names() -> list[str]:
    return sorted(DATASETS)


def load(name: str, options: dict | None = None, seed: int = 0) -> Data:
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'", expected="one of " + ", ".join(names()))
    return DATASETS[name](dict(options or {}), seed)


__all__ = ["DATASETS", "Data", "DataError", "load", "names"]
