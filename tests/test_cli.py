"""The layerloom command line: exit codes, one clear line per user mistake, JSON for scripts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from builder.cli import main
from compiler import load, save
from tests.helpers import mlp_project


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "builder", *args], capture_output=True, text=True,
                          timeout=300)


def test_check_ok_prints_table(capsys, tmp_path):
    path = tmp_path / "m.loom"
    save(mlp_project(), path)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fc1" in out and "[N, 32]" in out and "2,080" in out  # 64*32+32
    assert "ok:" in out


def test_check_errors_exit_1_and_name_the_node(capsys, tmp_path):
    p = mlp_project()
    p.networks[0].node_by_name("fc2").params["out_features"] = 0
    path = tmp_path / "bad.loom"
    path.write_text(p.to_json())  # bypasses save's checks, as a hand-edited file would
    assert main(["check", str(path)]) == 2  # invalid params are refused at load
    err = capsys.readouterr().err
    assert "out_features" in err and "Traceback" not in err


def test_check_graph_error_exit_1(capsys, tmp_path):
    p = mlp_project()
    net = p.networks[0]
    net.edges = [e for e in net.edges if e.dst != net.node_by_name("fc2").id]
    path = tmp_path / "cut.loom"
    save(p, path)
    assert main(["check", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert any(d["node"] == "fc2" and "not connected" in d["message"] for d in data["diagnostics"])


def test_unreadable_file_and_unknown_target_exit_2(capsys, tmp_path):
    bad = tmp_path / "x.loom"
    bad.write_text("{ not json")
    assert main(["check", str(bad)]) == 2
    assert main(["check", "no-such-template"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("layerloom: ") for line in err)


def test_bad_usage_exit_2():
    res = run("export", "mlp-digits")  # -o missing
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_templates_json_lists_every_template():
    import templates

    res = run("templates", "--json", "--no-figures")
    assert res.returncode == 0, res.stderr
    names = [r["name"] for r in json.loads(res.stdout)]
    assert names == [t.name for t in templates.all_templates()]


def test_new_then_check_and_export(tmp_path, capsys):
    out = tmp_path / "r.loom"
    assert main(["new", "resnet18-small", "-o", str(out)]) == 0
    project = load(out)
    assert project.template == "resnet18-small"
    capsys.readouterr()
    assert main(["check", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["networks"]["net"]["params"] == 700_692
    assert main(["export", str(out), "-o", str(tmp_path / "exp"), "--model-only"]) == 0
    assert (tmp_path / "exp" / "model.py").exists()


@pytest.mark.parametrize("argv", [["--help-commands"]])
def test_help_commands(argv, capsys):
    assert main(argv) == 0
    assert "check" in capsys.readouterr().out
