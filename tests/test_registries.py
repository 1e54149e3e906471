"""One registry style for node types, templates, recipes and datasets: each refuses duplicates,
lists its entries, resolves legacy names, names the known entries when asked for an unknown one,
and every listed entry resolves to a working entry of its kind."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import templates
from nodes import registry as node_registry
from nodes.base import NodeType
from nodes.catalogue import Registry, UnknownEntry
from templates.registry import TEMPLATES
from training import recipes
from training.data import DATASETS
from training.recipes import RECIPES

REGISTRIES: dict[str, Registry] = {"node type": node_registry.NODE_TYPES, "template": TEMPLATES,
                                   "recipe": RECIPES, "dataset": DATASETS}


@pytest.fixture(params=sorted(REGISTRIES))
def reg(request) -> Registry:
    return REGISTRIES[request.param]


def test_each_registry_lists_unique_names(reg: Registry) -> None:
    names = reg.names()
    assert names and len(names) == len(set(names)) == len(reg.entries()) == len(reg)
    assert all(name in reg and reg.canonical(name) == name for name in names)


def test_each_registry_refuses_a_second_entry_under_a_name(reg: Registry) -> None:
    first = reg.names()[0]
    entry = reg.get(first)
    with pytest.raises(ValueError, match="registered twice"):
        reg.add(first, entry)
    assert reg.get(first) is entry and len(reg.names()) == len(set(reg.names()))


def test_each_registry_keeps_legacy_names_and_refuses_clashes(reg: Registry) -> None:
    first = reg.names()[0]
    name = "zz-registry-test"
    try:
        reg.add(name, reg.get(first), legacy=("zz-registry-old",))
        assert reg.canonical("zz-registry-old") == name
        assert reg.get("zz-registry-old") is reg.get(first)
        with pytest.raises(ValueError, match="already taken"):
            reg.add("zz-registry-other", reg.get(first), legacy=(first,))
        assert "zz-registry-other" not in reg  # refused as a whole
    finally:
        reg.remove(name)
    assert name not in reg and "zz-registry-old" not in reg


def test_each_registry_names_the_known_entries_for_an_unknown_name(reg: Registry) -> None:
    with pytest.raises(UnknownEntry) as err:
        reg.get("no-such-entry")
    assert isinstance(err.value, KeyError) and "no-such-entry" in str(err.value)


def test_registry_loader_runs_once_before_the_first_read() -> None:
    calls: list[int] = []
    reg: Registry[int] = Registry("number", loader=lambda: (calls.append(1), reg.add("one", 1)))
    assert reg.names() == ["one"] and reg.get("one") == 1 and "one" in reg
    assert calls == [1]


# -- every entry of every registry resolves to a working entry of its kind -------------------------

@pytest.mark.parametrize("type_id", node_registry.NODE_TYPES.names())
def test_every_node_type_entry_is_its_own_id(type_id: str) -> None:
    cls = node_registry.get(type_id)
    assert issubclass(cls, NodeType) and cls.id == type_id and "." in type_id
    for old in cls.legacy_ids:
        assert node_registry.canonical_id(old) == type_id


@pytest.mark.parametrize("name", TEMPLATES.names())
def test_every_template_entry_knows_its_name_and_data(name: str) -> None:
    info = templates.get(name)
    assert info.name == name
    assert info.recipe is None or info.recipe in RECIPES
    assert info.dataset is None or info.dataset in DATASETS


@pytest.mark.parametrize("name", RECIPES.names())
def test_every_recipe_entry_imports_a_recipe(name: str) -> None:
    cls = recipes.get(name)
    assert isinstance(cls, type) and cls.__module__ == RECIPES.get(name)


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_entry_is_a_loader(name: str) -> None:
    loader: Callable = DATASETS.get(name)
    assert callable(loader)
