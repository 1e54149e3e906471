"""The catalogue itself: registry rules, what every type must declare, and the error paths of the
conv, pool, norm and shape families (each must be a ShapeError with a hint, never a traceback)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from compiler import Project, add_network, analyze
from nodes import registry
from nodes.base import NodeType, ShapeError, TensorSpec
from nodes.registry import all_types, get, register

TYPES = all_types()
IDS = [t.id for t in TYPES]


# -- registry ------------------------------------------------------------------------------------

def _dummy(type_id: str, legacy: tuple[str, ...] = ()) -> type[NodeType]:
    return type("Dummy", (NodeType,), {"id": type_id, "name": "Dummy", "category": "Test",
                                       "legacy_ids": legacy})


def _unregister(*ids: str) -> None:
    for type_id in ids:
        registry.NODE_TYPES.remove(type_id)


def test_registry_refuses_duplicate_id() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register(_dummy("conv.conv2d"))
    assert get("conv.conv2d").name == "Conv2d"


def test_registry_refuses_clashing_legacy_ids() -> None:
    try:
        register(_dummy("zz_test.new", legacy=("zz_test.old",)))
        assert get("zz_test.old").id == "zz_test.new"
        with pytest.raises(ValueError):
            register(_dummy("zz_test.old"))  # a new id equal to someone's legacy id
        with pytest.raises(ValueError, match="already taken"):
            register(_dummy("zz_test.other", legacy=("conv.conv2d",)))
        with pytest.raises(ValueError, match="already taken"):
            register(_dummy("zz_test.third", legacy=("zz_test.old",)))
    finally:
        _unregister("zz_test.new", "zz_test.old", "zz_test.other", "zz_test.third")
    assert not registry.has("zz_test.new")


def test_registry_refuses_undotted_id() -> None:
    with pytest.raises(ValueError, match="dotted"):
        register(_dummy("nodot"))


# -- what every type declares -------------------------------------------------------------------

def _ints_without_bounds(schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    """Integer sub-schemas of a field lacking a lower or an upper bound."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].split("/")[-1]]
    found = []
    if schema.get("type") == "integer":
        low = "minimum" in schema or "exclusiveMinimum" in schema
        high = "maximum" in schema or "exclusiveMaximum" in schema
        if not (low and high):
            found.append(path)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            found += _ints_without_bounds(sub, defs, path)
    if isinstance(schema.get("items"), dict):
        found += _ints_without_bounds(schema["items"], defs, path + "[]")
    return found


@pytest.mark.parametrize("cls", TYPES, ids=IDS)
def test_type_declares_what_the_gui_needs(cls: type[NodeType]) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", cls.id), cls.id
    assert cls.name and cls.category and cls.description.strip(), cls.id
    unknown = set(cls.key_params) - set(cls.Params.model_fields)
    assert not unknown, f"{cls.id}: key_params {sorted(unknown)} are not params"
    schema = cls.Params.model_json_schema()
    defs = schema.get("$defs", {})
    for name, field in cls.Params.model_fields.items():
        assert field.description, f"{cls.id}: param '{name}' has no description"
        unbounded = _ints_without_bounds(schema["properties"][name], defs, name)
        assert not unbounded, f"{cls.id}: int param(s) {unbounded} need ge= and le= bounds"


def test_categories_of_my_families() -> None:
    cats = {t.id: t.category for t in TYPES}
    assert cats["norm.batch_norm2d"] == cats["norm.layer_norm"] == "Normalization"
    assert cats["norm.dropout"] == cats["norm.dropout2d"] == "Regularization"


# -- error paths ---------------------------------------------------------------------------------

T = TensorSpec
ERRORS = [
    ("conv.conv2d", {"out_channels": 8, "groups": 3}, {"x": T(("N", 4, 8, 8))}, "divisible"),
    ("conv.conv2d", {"out_channels": 6, "groups": 4}, {"x": T(("N", 8, 8, 8))}, "out_channels"),
    ("conv.conv2d", {"padding": "same", "stride": 2}, {"x": T(("N", 3, 8, 8))}, "stride 1"),
    ("conv.conv1d", {"padding": "same", "stride": 2}, {"x": T(("N", 3, 8))}, "stride 1"),
    ("conv.conv2d", {"kernel_size": 7}, {"x": T(("N", 3, 4, 4))}, "too small"),
    ("conv.conv1d", {"kernel_size": 3, "dilation": 4}, {"x": T(("N", 3, 8))}, "too small"),
    ("conv.conv2d", {}, {"x": T(("N", 3, 8))}, "rank"),
    ("conv.conv2d", {}, {"x": T(("N", "T", 8, 8))}, "symbolic"),
    ("conv.conv2d", {}, {"x": T(("N", 3, 8, 8), "long")}, "float"),
    ("conv.conv1d", {"padding": 4, "padding_mode": "reflect"}, {"x": T(("N", 3, 4))},
     "reflect"),
    ("conv.conv2d", {"kernel_size": [0, 3]}, {"x": T(("N", 3, 8, 8))}, "at least 1"),
    ("conv.conv_transpose2d", {"stride": 2, "output_padding": 2}, {"x": T(("N", 3, 4, 4))},
     "output_padding"),
    ("conv.conv_transpose2d", {"groups": 2}, {"x": T(("N", 3, 4, 4))}, "divisible"),
    ("conv.conv_transpose2d", {"kernel_size": 1, "stride": 1, "padding": 3},
     {"x": T(("N", 3, 2, 2))}, "padding"),
    ("pool.max_pool2d", {"kernel_size": 2}, {"x": T(("N", 3, 1, 1))}, "too small"),
    ("pool.avg_pool1d", {"kernel_size": 5}, {"x": T(("N", 3, 4))}, "too small"),
    ("pool.max_pool2d", {"kernel_size": 2, "padding": 2}, {"x": T(("N", 3, 8, 8))}, "half"),
    ("pool.max_pool1d", {}, {"x": T(("N", 8))}, "rank"),
    ("pool.adaptive_avg_pool2d", {}, {"x": T(("N", 3, 8))}, "rank"),
    ("pool.global_avg_pool", {}, {"x": T(("N", 3))}, "rank"),
    ("norm.group_norm", {"num_groups": 4}, {"x": T(("N", 6, 4, 4))}, "divide"),
    ("norm.batch_norm2d", {}, {"x": T(("N", 6))}, "rank"),
    ("norm.batch_norm1d", {}, {"x": T(("N", "T"))}, "symbolic"),
    ("norm.layer_norm", {"dims": 2}, {"x": T(("N", 8))}, "batch"),
    ("norm.layer_norm", {}, {"x": T(("N", "T"))}, "symbolic"),
    ("norm.layer_norm", {}, {"x": T(("N", 4), "long")}, "float"),
    ("norm.dropout", {}, {"x": T(("N", 4), "long")}, "float"),
    ("norm.dropout2d", {}, {"x": T(("N", 4))}, "rank"),
    ("norm.instance_norm2d", {}, {"x": T(("N", 4, 5))}, "rank"),
    ("shape.reshape", {"shape": [5, 5]}, {"x": T(("N", 16))}, "16"),
    ("shape.reshape", {"shape": [-1, 5]}, {"x": T(("N", 16))}, "divide"),
    ("shape.reshape", {"shape": [4, 4]}, {"x": T(("N", "T", 4))}, "holds 16"),
    ("shape.reshape", {"shape": [-1, 8]}, {"x": T(("N", "T", 4))}, "every size"),
    ("shape.flatten", {"start_dim": 2, "end_dim": 1}, {"x": T(("N", 3, 4))}, "after"),
    ("shape.flatten", {"start_dim": 4}, {"x": T(("N", 3, 4))}, "out of range"),
    ("shape.permute", {"dims": [0, 1]}, {"x": T(("N", 3, 4))}, "has 3"),
    ("shape.permute", {"dims": [0, 1, 1]}, {"x": T(("N", 3, 4))}, "repeat"),
    ("shape.transpose", {"dim0": 1, "dim1": 3}, {"x": T(("N", 3, 4))}, "out of range"),
    ("shape.squeeze", {"dim": 1}, {"x": T(("N", 3, 4))}, "not 1"),
    ("shape.squeeze", {"dim": 1}, {"x": T(("N", "T", 4))}, "not 1"),
    ("shape.unsqueeze", {"dim": 4}, {"x": T(("N", 3))}, "out of range"),
    ("shape.split", {"dim": 1, "split_size": 3}, {"x": T(("N", 3))}, "nothing"),
    ("shape.split", {"dim": 1}, {"x": T(("N", 1))}, "nothing"),
    ("shape.select", {"dim": 1, "index": 3}, {"x": T(("N", 3))}, "out of range"),
    ("shape.select", {"dim": 1, "index": 2}, {"x": T(("N", "T", 3))}, "variable"),
    ("shape.slice", {"dim": 1, "start": 5}, {"x": T(("N", 3))}, "empty"),
]


@pytest.mark.parametrize("type_id, params, ins, words", ERRORS,
                         ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_error_paths_give_a_hint(type_id: str, params: dict, ins: dict, words: str) -> None:
    cls = get(type_id)
    with pytest.raises(ShapeError) as info:
        cls.infer(cls.Params.model_validate(params), ins)
    assert words in info.value.message, info.value.message
    assert info.value.hint.strip(), f"no hint for: {info.value.message}"


def test_error_reaches_the_user_as_a_diagnostic_naming_the_node() -> None:
    """Through the compiler, a pool on a too-small map names the node and says what to do."""
    p = Project(name="too small")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 3, 4, 4]}, "image"),
            ("pool.max_pool2d", {"kernel_size": 2}, "pool1"),
            ("pool.max_pool2d", {"kernel_size": 2}, "pool2"),
            ("pool.max_pool2d", {"kernel_size": 2}, "pool3"),
            ("io.output", {}, "out"))
    errors = analyze(p).errors
    assert len(errors) == 1
    assert errors[0].node_name == "pool3" and "too small" in errors[0].message
    assert "pool fewer times" in errors[0].hint


def test_symbolic_flatten_refused_by_linear_with_a_clear_message() -> None:
    p = Project(name="symbolic")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", "T", 4]}, "seq"), ("shape.flatten", {}, "flat"),
            ("linear.linear", {"out_features": 3}, "fc"), ("io.output", {}, "out"))
    errors = analyze(p).errors
    assert len(errors) == 1 and errors[0].node_name == "fc"
    assert "T*4" in errors[0].message and errors[0].hint


def test_meta_fallback_turns_torch_errors_into_shape_errors() -> None:
    from nodes.meta import meta_infer

    cls = get("conv.conv2d")
    # Bypass the hand-written rule: torch itself must refuse, and say so as a ShapeError.
    with pytest.raises(ShapeError) as info:
        meta_infer(cls, cls.Params(kernel_size=7), {"x": T(("N", 3, 4, 4))})
    assert "Conv2d cannot run" in info.value.message and info.value.hint


def test_generated_code_reads_like_hand_written_pytorch() -> None:
    from compiler import generate

    p = Project(name="readable")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 3, 32, 32]}, "image"),
            ("conv.conv2d", {"out_channels": 64, "kernel_size": 3, "padding": 1, "bias": False},
             "conv1"),
            ("norm.batch_norm2d", {}, "bn1"),
            ("pool.max_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, "pool"),
            ("pool.global_avg_pool", {}, "gap"),
            ("norm.dropout", {"p": 0.1}, "drop"),
            ("io.output", {}, "out"))
    text = generate(p).text
    assert "nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False)" in text
    assert "nn.BatchNorm2d(64)" in text
    assert "nn.MaxPool2d(kernel_size=3, stride=2, padding=1)" in text
    assert ".mean(dim=(2, 3))" in text
    assert "nn.Dropout(0.1)" in text
