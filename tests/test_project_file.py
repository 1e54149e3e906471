"""The .loom file: round trip, atomic save, migrations, and malformed files refused with a path."""

from __future__ import annotations

import json
import os

import pytest

from compiler import ProjectLoadError, load, loads, save
from compiler.project import SCHEMA_VERSION
from tests.helpers import mlp_project


def test_round_trip_is_identical(tmp_path):
    p = mlp_project()
    path = tmp_path / "m.loom"
    save(p, path)
    q = load(path)
    assert q.model_dump() == p.model_dump()
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path, monkeypatch):
    p = mlp_project()
    path = tmp_path / "m.loom"
    save(p, path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    p.name = "changed"
    with pytest.raises(OSError):
        save(p, path)
    assert path.read_bytes() == before  # the old file is intact
    assert [f.name for f in tmp_path.iterdir()] == ["m.loom"]  # no temp litter


def test_migration_from_v0_mapping_of_networks():
    p = mlp_project()
    raw = json.loads(p.to_json())
    raw["schema_version"] = 0
    raw["networks"] = {n["name"]: {k: v for k, v in n.items() if k != "name"}
                       for n in raw["networks"]}
    q = loads(json.dumps(raw))
    assert q.networks[0].name == "net"


def _bad(mutate) -> ProjectLoadError:
    raw = json.loads(mlp_project().to_json())
    mutate(raw)
    with pytest.raises(ProjectLoadError) as info:
        loads(json.dumps(raw))
    return info.value


def _node(raw, name):
    return next(n for n in raw["networks"][0]["nodes"] if n["name"] == name)


def test_truncated_json_names_line_and_column():
    text = mlp_project().to_json()
    with pytest.raises(ProjectLoadError) as info:
        loads(text[: len(text) // 2])
    assert "not valid JSON" in str(info.value) and "line" in str(info.value)


def test_not_an_object():
    with pytest.raises(ProjectLoadError, match="JSON object"):
        loads("[1, 2]")


def test_wrong_type_gives_json_path():
    err = _bad(lambda r: r["networks"][0].__setitem__("nodes", "many"))
    assert err.path == "networks[0].nodes"


def test_unknown_node_type():
    err = _bad(lambda r: _node(r, "fc1").__setitem__("type", "linear.warp_drive"))
    assert "unknown node type 'linear.warp_drive'" in err.message
    assert err.path.startswith("networks[0].nodes[")


def test_absurd_size_refused_with_path():
    err = _bad(lambda r: _node(r, "fc1")["params"].__setitem__("out_features", 10**12))
    assert err.path.endswith("params.out_features")
    assert "less than or equal" in err.message


def test_wire_to_missing_node_and_port():
    err = _bad(lambda r: r["networks"][0]["edges"][0].__setitem__("dst", "nope"))
    assert "missing node" in err.message and err.path == "networks[0].edges[0].dst"
    err = _bad(lambda r: r["networks"][0]["edges"][0].__setitem__("src_port", "zz"))
    assert "no output port 'zz'" in err.message


def test_newer_schema_refused():
    err = _bad(lambda r: r.__setitem__("schema_version", SCHEMA_VERSION + 5))
    assert "newer Layerloom" in err.message


def test_unknown_field_and_duplicate_ids():
    err = _bad(lambda r: r.__setitem__("evil", "__import__('os')"))
    assert err.path == "evil"

    def dup(r):
        r["networks"][0]["nodes"][1]["id"] = r["networks"][0]["nodes"][0]["id"]

    assert "used twice" in _bad(dup).message


def test_binary_and_missing_file(tmp_path):
    f = tmp_path / "x.loom"
    f.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ProjectLoadError, match="not UTF-8"):
        load(f)
    with pytest.raises(ProjectLoadError, match="cannot read"):
        load(tmp_path / "missing.loom")


def test_deeply_nested_json_does_not_crash():
    with pytest.raises(ProjectLoadError):
        loads("[" * 100_000 + "]" * 100_000)


def test_the_file_model_is_a_leaf():
    """compiler/project.py imports nothing of the compiler or the node catalogue, lazily or not:
    loading with the catalogue lives in compiler/loading.py (issue 11, first cycle)."""
    import ast
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "compiler" / "project.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
    assert not {m for m in imported if m.startswith((".", "compiler", "nodes"))}
