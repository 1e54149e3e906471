"""The template registry: a name -> builder map that refuses duplicates (as timm's does).

A template module decorates a function ``() -> Project`` with :func:`register`; importing
``templates`` imports every family module, so the registry is complete once the package is loaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Literal

from compiler.project import Project
from nodes.catalogue import Registry

Builder = Callable[[], Project]
Variant = Literal["small", "reference"]

#: Family modules, in the order the gallery shows them.
FAMILY_MODULES = ("mlp", "alexnet", "vgg", "resnet", "efficientnet", "rnn", "transformer", "bert",
                  "gpt", "autoencoder", "vae", "gan", "gnn", "simclr", "byol", "nas")


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    family: str
    variant: str
    description: str
    recipe: str | None
    dataset: str | None
    build: Builder
    layout: str = "LR"


def _load_all() -> None:
    """Import every family module: each registers its templates on import."""
    for mod in FAMILY_MODULES:
        try:
            importlib.import_module(f"templates.{mod}")
        except ModuleNotFoundError as err:
            if err.name != f"templates.{mod}":
                raise


TEMPLATES: Registry[TemplateInfo] = Registry("template", loader=_load_all)


def register(name: str, family: str, variant: str, description: str, recipe: str | None,
             dataset: str | None, layout: str = "LR") -> Callable[[Builder], Builder]:
    """Decorator registering ``fn`` as template ``name``. A second use of a name is an error."""
    if layout not in ("LR", "TB"):
        raise ValueError(f"template '{name}': layout must be 'LR' or 'TB', not {layout!r}")

    def deco(fn: Builder) -> Builder:
        TEMPLATES.add(name, TemplateInfo(name, family, variant, description, recipe, dataset, fn,
                                         layout))
        return fn
    return deco


def get(name: str) -> TemplateInfo:
    return TEMPLATES.get(name)


def all_templates() -> list[TemplateInfo]:
    return TEMPLATES.entries()


def build(name: str) -> Project:
    """A fresh project for template ``name``, with its metadata filled in."""
    info = get(name)
    project = info.build()
    project.name = name
    project.description = info.description
    project.template = name
    project.training.recipe = info.recipe
    project.training.dataset = info.dataset
    project.ui["layout"] = info.layout
    return project
