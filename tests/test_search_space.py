"""The search space as part of the document: choices round-trip, edit with undo, load checks,
and a resolved project is exactly the project a person would write by hand."""

from __future__ import annotations

import json

import pytest

import templates
from compiler import Graph, add_block, add_network, generate, loads, ref
from compiler.graph import Change, GraphEditError, ProjectEdits
from compiler.project import Choice, Domain, Project, ProjectLoadError, SearchModel, save
from training.search.space import (
    decisions,
    describe,
    resolve,
    space_size,
    stale_choices,
)


def _mlp() -> tuple[Project, str, str]:
    p = Project(name="m")
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 64])
    fc1, _, fc2 = g.chain(x, ("linear.linear", {"out_features": 32}, "fc1"),
                          ("activation.relu", {}, "act"),
                          ("linear.linear", {"out_features": 32}, "fc2"))[1:]
    g.chain(fc2, ("linear.linear", {"out_features": 10}, "head"), ("io.output", {}, "y"))
    p.training.recipe, p.training.dataset = "classification", "digits-flat"
    return p, fc1, fc2


def _width(node: str, values=(16, 32, 64), label: str = "width") -> Choice:
    return Choice(label=label, scope="net", node=node, param="out_features",
                  domain=Domain(kind="values", values=list(values)))


def test_choices_round_trip_through_a_file_and_undo(tmp_path):
    p, fc1, fc2 = _mlp()
    events: list[Change] = []
    edits = ProjectEdits(p, lambda ev, info: events.append(ev))
    assert edits.set_choice(_width(fc1)) is None
    assert edits.set_choice(_width(fc2)) is None
    old = edits.set_choice(_width(fc1, (8, 16, 24)))  # replaces: same node and param
    assert old == _width(fc1) and len(p.search.choices) == 2
    assert events == [Change.SEARCH] * 3
    path = tmp_path / "m.loom"
    save(p, path)
    again = loads(path.read_text())
    assert again.search == p.search and json.loads(path.read_text())["schema_version"] == 2
    # undo, as the app's command does with what the API returned
    edits.set_choice(old)
    assert p.search.choices[0].domain.values == [16, 32, 64]
    assert edits.remove_choice("net", fc2, "out_features") == _width(fc2)
    assert edits.remove_choice("net", fc2, "out_features") is None
    settings = SearchModel(strategy="rl", trials=7, max_params=1000)
    before = edits.set_search(settings)
    assert p.search.trials == 7 and before.strategy == "evolution"
    edits.set_search(before)
    assert p.search == before


def test_an_old_file_loads_unchanged_with_an_empty_search():
    p, _, _ = _mlp()
    raw = json.loads(p.to_json())
    del raw["search"]
    raw["schema_version"] = 1
    loaded = loads(json.dumps(raw))
    assert loaded.search == SearchModel()
    assert [n.model_dump() for n in loaded.networks] == [n.model_dump() for n in p.networks]


@pytest.mark.parametrize("change,words", [
    (lambda c: c.update(param="out_featurez"), ["fc1", "no param 'out_featurez'"]),
    (lambda c: c["domain"].update(values=[16, -3]), ["fc1", "out_features=-3", "width"]),
    (lambda c: c["domain"].update(kind="int", values=None, low=9, high=2), ["low (9)"]),
])
def test_loading_refuses_a_choice_that_cannot_hold(change, words):
    p, fc1, _ = _mlp()
    p.search.choices.append(_width(fc1))
    raw = json.loads(p.to_json())
    change(raw["search"]["choices"][0])
    with pytest.raises(ProjectLoadError) as err:
        loads(json.dumps(raw))
    assert all(w in str(err.value) for w in words), str(err.value)
    assert "search.choices[0]" in str(err.value)


def test_a_shared_label_needs_agreeing_domains():
    p, fc1, fc2 = _mlp()
    edits = ProjectEdits(p)
    edits.set_choice(_width(fc1))
    with pytest.raises(GraphEditError, match="share one decision"):
        edits.set_choice(_width(fc2, (1, 2)))
    edits.set_choice(_width(fc2, (8, 16, 32)))  # same length: moves by position
    arch = resolve(p, {"width": 64})
    assert [arch.network("net").node(n).params["out_features"] for n in (fc1, fc2)] == [64, 32]
    assert space_size(p) == 3 and [d.label for d in decisions(p)] == ["width"]
    assert describe(p, {"width": 64}) == ["net/fc1.out_features: 32 → 64"]
    with pytest.raises(ValueError, match="has no value 5"):
        resolve(p, {"width": 5})


def test_a_deleted_node_leaves_an_inactive_choice_that_undo_revives(tmp_path):
    p, fc1, fc2 = _mlp()
    ProjectEdits(p).set_choice(_width(fc2, label="w2"))
    ProjectEdits(p).set_choice(_width(fc1))
    g = Graph(p, "net")
    saved = g.remove(fc2)
    assert [c.node for c in stale_choices(p)] == [fc2] and space_size(p) == 3
    loads(p.to_json())  # still a loadable file
    assert "w2" not in {d.label for d in decisions(p)}
    g.restore(*saved)
    assert space_size(p) == 9 and not stale_choices(p)


def _hand_digits(layer: str, depth: int, width: int) -> Project:
    """nas-digits as a person would draw it with these three values fixed: the layer blocks
    written out one by one, the slot holding one of them."""
    p = Project(name="nas-digits")
    for act in ("relu", "gelu", "tanh"):
        name = "Dense" + {"relu": "ReLU", "gelu": "GELU", "tanh": "Tanh"}[act]
        b = add_block(p, name, {"width": 64}, description=f"Flatten, Linear(width), then "
                      f"activation.{act}.")
        b.chain(("io.block_input", {}, "x"), ("shape.flatten", {}, "flatten"),
                ("linear.linear", {"out_features": ref("width")}, "fc"),
                (f"activation.{act}", {}, "act"), ("io.block_output", {}, "y"))
    for act in ("relu", "gelu", "tanh"):
        name = "Conv" + {"relu": "ReLU", "gelu": "GELU", "tanh": "Tanh"}[act]
        b = add_block(p, name, {"width": 64}, description=f"Conv3x3(width), then "
                      f"activation.{act}, then a 2×2 max pool.")
        b.chain(("io.block_input", {}, "x"),
                ("conv.conv2d", {"out_channels": ref("width"), "kernel_size": 3, "padding": 1},
                 "conv"), (f"activation.{act}", {}, "act"),
                ("pool.max_pool2d", {"kernel_size": 2}, "pool"), ("io.block_output", {}, "y"))
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 1, 8, 8])
    h = g.chain(x, ("block.block", {"block": layer, "repeat": depth,
                                    "args": {"width": width}}, "hidden"))[-1]
    g.chain(h, ("shape.flatten", {}, "flatten"), ("linear.linear", {"out_features": 10}, "head"),
            ("io.output", {}, "logits"))
    return p


@pytest.mark.parametrize("values", [("ConvGELU", 3, 32), ("DenseTanh", 1, 128),
                                    ("ConvReLU", 1, 4)])
def test_resolved_codegen_equals_the_hand_written_project(values):
    base = templates.build("nas-digits")
    base.description = ""  # the hand-written one has none; the docstring carries it
    arch = resolve(base, dict(zip(("layer", "depth", "width"), values, strict=True)))
    assert arch.search == SearchModel()
    assert generate(arch).text == generate(_hand_digits(*values)).text
    # node ids are random per build; the generated text does not depend on them
    assert generate(arch).text != generate(base).text


def test_shared_labels_move_together_in_the_efficientnet_space():
    base = loads(templates.build("nas-shapes").to_json())
    assert space_size(base) == 3 * (2 * 3 * 3) ** 3
    arch = resolve(base, {"width": 4, "stage2_kernel": 5, "stage2_depth": 3})  # multiplier 0.5
    net = arch.network("net")
    stage2 = net.node_by_name("stage2").params
    assert stage2["args"]["kernel_size"] == 5 and stage2["args"]["padding"] == 2
    assert stage2["repeat"] == 3
    assert net.node_by_name("stem").params["out_channels"] == 4
    assert net.node_by_name("head").params["out_channels"] == 24
    assert stage2["args"]["out_channels"] == net.node_by_name("stage2_down").params["out_channels"]
    from compiler import analyze

    assert analyze(arch).ok


def test_a_block_slot_only_takes_blocks_with_the_same_ports():
    p, fc1, _ = _mlp()
    a = add_block(p, "A", {})
    a.chain(("io.block_input", {}, "x"), ("activation.relu", {}, "r"), ("io.block_output", {}, "y"))
    b = add_block(p, "B", {})
    b.chain(("io.block_input", {}, "inp"), ("activation.tanh", {}, "t"),
            ("io.block_output", {}, "y"))
    g = Graph(p, "net")
    node = g.add("block.block", "slot", block="A")
    with pytest.raises(GraphEditError, match="other ports"):
        ProjectEdits(p).set_choice(Choice(label="act", scope="net", node=node, param="block",
                                          domain=Domain(kind="values", values=["A", "B"])))
