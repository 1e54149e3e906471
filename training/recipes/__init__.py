"""Recipes by name. Each is a torch-only module defining ``RECIPE`` (a subclass of
:class:`training.engine.Recipe`); ``training.export`` copies the module verbatim into train.py."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..engine import Recipe

NAMES = ["classification", "regression", "language_model", "masked_lm", "seq2seq", "autoencoder",
         "vae", "gan", "simclr", "byol", "node_classification", "graph_classification"]


def module(name: str) -> ModuleType:
    if name not in NAMES:
        raise KeyError(f"unknown recipe '{name}'; use one of {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}")


def get(name: str) -> type[Recipe]:
    return module(name).RECIPE


__all__ = ["NAMES", "get", "module"]
