"""Recipes by name, in one :class:`~nodes.catalogue.Registry` of module paths. Each module is
torch-only and defines ``RECIPE`` (a subclass of :class:`training.engine.Recipe`); it is imported
only when asked for, so listing recipes costs nothing, and ``training.export`` copies the module
into train.py."""

from __future__ import annotations

import importlib
from types import ModuleType

from nodes.catalogue import Registry

from ..engine import Recipe

RECIPES: Registry[str] = Registry("recipe")
for _name in ("classification", "regression", "language_model", "masked_lm", "seq2seq",
              "autoencoder", "vae", "gan", "simclr", "byol", "node_classification",
              "graph_classification"):
    RECIPES.add(_name, f"{__name__}.{_name}")

#: The recipe names, in the order the Training panel lists them.
NAMES = RECIPES.names()


def module(name: str) -> ModuleType:
    if name not in RECIPES:
        raise KeyError(f"unknown recipe '{name}'; use one of {', '.join(NAMES)}")
    return importlib.import_module(RECIPES.get(name))


def get(name: str) -> type[Recipe]:
    return module(name).RECIPE
