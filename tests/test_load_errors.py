"""Bad files are refused at load with one message and a JSON path; the CLI makes that exit 2.

Also: the training section is checked by ``layerloom check``, numbers are never coerced from
booleans or strings, and saves keep the file's mode and clean up after interrupted saves.
"""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from builder.cli import main
from compiler.loading import load, loads
from compiler.project import ProjectLoadError, save
from tests.helpers import mlp_project


def _raw() -> dict:
    return json.loads(mlp_project().to_json())


def _mutated(change) -> str:
    raw = _raw()
    change(raw)
    return json.dumps(raw)


def _node(raw: dict, i: int = 1) -> dict:
    return raw["networks"][0]["nodes"][i]


def _set_param(key, value):
    return lambda r: _node(r)["params"].update({key: value})


BAD = {
    "huge integer literal": ('{"name": 1' + "1" * 5000 + "}", "", "4,300 digits"),
    "schema 0 network not an object": (json.dumps({"schema_version": 0, "networks": {"a": 5}}),
                                       "networks.a", "JSON object"),
    "$param holding a list": (_mutated(_set_param("out_features", {"$param": [1]})),
                              "networks[0].nodes[1].params", "names a param"),
    "wire from a node to itself": (_mutated(lambda r: r["networks"][0]["edges"].append(
        {"src": _node(r)["id"], "dst": _node(r)["id"]})), "networks[0].edges[4].dst", "itself"),
    "params not an object": (_mutated(lambda r: _node(r).update(params=[1])),
                             "networks[0].nodes[1].params", "dictionary"),
    "id with a newline": (_mutated(lambda r: _node(r).update(id="a\nimport os")),
                          "networks[0].nodes[1].id", "pattern"),
    "id too long": (_mutated(lambda r: _node(r).update(id="a" * 65)),
                    "networks[0].nodes[1].id", "pattern"),
    "description with CR": (_mutated(lambda r: r.update(description="a\rimport os")),
                            "description", "control character"),
    "network name with newline": (_mutated(lambda r: r["networks"][0].update(name="a\nb")),
                                  "networks[0].name", "control character"),
    "node name with U+2028": (_mutated(lambda r: _node(r).update(name="a\u2028b")),
                              "networks[0].nodes[1].name", "control character"),
    "edge port with NUL": (_mutated(lambda r: r["networks"][0]["edges"][0].update(src_port="y\0")),
                           "networks[0].edges[0].src_port", "control character"),
    "bidi override in name": (_mutated(lambda r: r.update(name="a\u202eb")), "name",
                              "control character"),
    "lone surrogate in ui": (_mutated(lambda r: r["ui"].update(x="\ud800")), "ui.x", "surrogate"),
    "deep ui": (_mutated(lambda r: r["ui"].update(x=json.loads("[" * 40 + "]" * 40))),
                "ui.x" + "[0]" * 30, "32 levels deep"),
    "NaN param": (_mutated(_set_param("out_features", float("nan"))), "", "NaN"),
    "overflowing float": (json.dumps(_raw()).replace('"ui": {', '"ui": {"x": 1e400, ', 1), "",
                          "finite"),
    "true as a size": (_mutated(_set_param("out_features", True)), "networks[0].nodes[1].params",
                       "boolean true"),
    "string as a size": (_mutated(_set_param("out_features", "128")),
                         "networks[0].nodes[1].params", "string '128'"),
    "unknown type inside a used block": None,  # built below, it needs a block
}


def _block_with_unknown_type() -> str:
    raw = _raw()
    raw["blocks"] = [{"name": "B", "nodes": [
        {"id": "i", "type": "io.block_input", "name": "x"},
        {"id": "z", "type": "nope.nothing", "name": "z"},
        {"id": "o", "type": "io.block_output", "name": "y"}], "edges": []}]
    raw["networks"][0]["nodes"].append({"id": "blk", "type": "block.block", "name": "b",
                                         "params": {"block": "B"}})
    raw["networks"][0]["edges"].append({"src": "blk", "dst": _node(raw)["id"]})
    return json.dumps(raw)


BAD["unknown type inside a used block"] = (_block_with_unknown_type(), "blocks[0].nodes[1].type",
                                           "unknown node type")


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_is_one_load_error_with_its_path(name):
    text, path, words = BAD[name]
    with pytest.raises(ProjectLoadError) as info:
        loads(text)
    assert words in info.value.message
    assert info.value.path == path


@pytest.mark.parametrize("name", ["huge integer literal", "wire from a node to itself",
                                  "lone surrogate in ui", "unknown type inside a used block"])
def test_cli_maps_load_errors_to_exit_2_with_one_line(name, tmp_path, capsys):
    f = tmp_path / "bad.loom"
    f.write_text(BAD[name][0], encoding="utf-8", errors="surrogatepass")
    for argv in (["check", str(f)], ["export", str(f), "-o", str(tmp_path / "out")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert err.startswith("layerloom: ") and str(f) in err


def test_descriptions_keep_newlines_and_tabs():
    p = loads(_mutated(lambda r: r.update(description="line one\n\tline two")))
    assert p.description == "line one\n\tline two"


def test_a_project_that_loads_saves_again(tmp_path):
    p = loads(_mutated(lambda r: r["ui"].update(note="ünïcødé ✓", deep=[[[[1]]]])))
    save(p, tmp_path / "again.loom")
    assert load(tmp_path / "again.loom").model_dump() == p.model_dump()


def test_params_still_take_json_lists_for_pairs():
    from nodes import registry

    conv = registry.get("conv.conv2d").Params
    assert conv.model_validate({"out_channels": 4, "kernel_size": [3, 5]}).kernel_size == [3, 5]
    assert conv.model_validate({"out_channels": 4, "padding": "same"}).padding == "same"
    with pytest.raises(ValueError, match="boolean"):
        conv.model_validate({"out_channels": 4, "kernel_size": [True, 3]})
    with pytest.raises(ValueError, match="finite"):
        registry.get("activation.leaky_relu").Params.model_validate(
            {"negative_slope": float("inf")})


def _with_training(**training) -> str:
    return _mutated(lambda r: r.update(training=dict(r.get("training", {}), **training)))


@pytest.mark.parametrize("training, field", [
    ({"hyper": {"weight_decay": 1e6}}, "training.hyper.weight_decay"),
    ({"hyper": {"seed": 10**30}}, "training.hyper.seed"),
    ({"hyper": {"steps": 10**12}}, "training.hyper.steps"),
    ({"recipe": "no_such_recipe"}, "training.recipe"),
    ({"dataset": "no_such_data"}, "training.dataset"),
])
def test_check_reports_training_problems_with_the_field(training, field, tmp_path, capsys):
    f = tmp_path / "t.loom"
    f.write_text(_with_training(**training), encoding="utf-8")
    assert main(["check", str(f)]) == 1
    assert f"error: {field}:" in capsys.readouterr().err
    assert main(["check", "--json", str(f)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert not out["ok"] and field in [d.get("field") for d in out["diagnostics"]]


def test_training_infinity_is_refused():
    from training.config import HyperError, resolve

    with pytest.raises(HyperError) as info:
        resolve({}, {"weight_decay": float("inf")})
    assert info.value.field == "weight_decay"


def test_save_keeps_the_mode_and_removes_stale_temp_files(tmp_path):
    path = tmp_path / "m.loom"
    save(mlp_project(), path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    os.chmod(path, 0o640)
    stale, fresh = tmp_path / ".m.loom.abc.tmp", tmp_path / ".m.loom.def.tmp"
    other = tmp_path / ".other.loom.abc.tmp"
    for f in (stale, fresh, other):
        f.write_text("half a save")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    save(mlp_project(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not stale.exists() and fresh.exists() and other.exists()


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.loom"
    os.mkfifo(fifo)
    with pytest.raises(ProjectLoadError, match="not a regular file"):
        load(fifo)
