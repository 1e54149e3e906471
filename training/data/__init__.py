"""Datasets by name: the built-in offline ones and loaders for the user's own files, in one
:class:`~nodes.catalogue.Registry` (a name in both tables is refused at import).

``load(name, options, seed)`` returns a :class:`Data`; problems raise :class:`DataError`.
The two tables stay plain dicts in their modules because the exporter copies those modules.
"""

from __future__ import annotations

from typing import Callable

from nodes.catalogue import Registry

from .builtin import BUILTIN
from .common import Data, DataError
from .files import FILES

Loader = Callable[[dict, int], Data]

DATASETS: Registry[Loader] = Registry("dataset")
for _name, _loader in BUILTIN.items():
    DATASETS.add(_name, _loader)
for _name, _loader in FILES.items():
    DATASETS.add(_name, _loader)


def names() -> list[str]:
    return sorted(DATASETS.names())


def load(name: str, options: dict | None = None, seed: int = 0) -> Data:
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'", expected="one of " + ", ".join(names()))
    try:
        return DATASETS.get(name)(dict(options or {}), seed)
    except FileNotFoundError as err:  # a shipped data file gone from the install
        raise DataError(f"the '{name}' dataset's file is missing: {err.filename}",
                        expected="Layerloom's assets/data files (reinstall Layerloom)") from None


__all__ = ["BUILTIN", "DATASETS", "FILES", "Data", "DataError", "load", "names"]
