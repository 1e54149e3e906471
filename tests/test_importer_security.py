"""Opaque nodes are data: loading and checking a project that names the user's code runs
nothing; building it needs an explicit trust step; the export says it needs the file, and runs."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from builder.cli import main as cli_main
from compiler.build import build
from compiler.codegen import generate
from compiler.imported_weights import read_weights, weights_path
from compiler.importing import import_model
from compiler.loading import loads
from compiler.project import ProjectLoadError
from compiler.shapes import analyze
from compiler.summary import summarize
from compiler.usercode import UntrustedCodeError, code_sources

EVIL = '''
import pathlib
pathlib.Path(__file__).with_name("ran.txt").write_text("imported")
import torch

class Evil(torch.nn.Module):
    def __init__(self, width=4):
        super().__init__()
        pathlib.Path(__file__).with_name("built.txt").write_text("built")
        self.fc = torch.nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x)
'''


def _crafted(ref: str) -> str:
    """A project whose only op is an opaque node pointing at ``ref``."""
    spec = {"dims": ["N", 4], "dtype": "float"}
    return json.dumps({
        "format": "layerloom", "schema_version": 1, "name": "crafted",
        "networks": [{"name": "net", "nodes": [
            {"id": "x", "type": "io.input", "name": "x", "params": {"shape": ["N", 4]}},
            {"id": "evil", "type": "opaque.module", "name": "evil", "params": {
                "module": ref, "kwargs": {"width": 4}, "inputs": [spec], "output": spec,
                "parameters": 20}},
            {"id": "out", "type": "io.output", "name": "out"}],
            "edges": [{"src": "x", "dst": "evil"}, {"src": "evil", "dst": "out"}]}]})


def test_loading_and_checking_an_opaque_project_runs_nothing(tmp_path) -> None:
    evil = tmp_path / "evil.py"
    evil.write_text(EVIL)
    project = loads(_crafted(f"{evil}:Evil"))
    analysis = analyze(project)
    assert analysis.ok
    res = analysis.networks["net"]
    assert str(res.outputs()[0].ins["x"].label()) == "[N, 4]"
    assert res.param_count == 20  # the stored count: nothing was built to count it
    generate(analysis)  # writing the code imports nothing either
    path = tmp_path / "crafted.loom"
    path.write_text(_crafted(f"{evil}:Evil"))
    assert cli_main(["check", str(path)]) == 0
    assert not (tmp_path / "ran.txt").exists() and not (tmp_path / "built.txt").exists()
    # building, summarising and exporting refuse until the file is trusted
    with pytest.raises(UntrustedCodeError, match="--trust-code"):
        build(project)
    with pytest.raises(UntrustedCodeError):
        summarize(project)
    assert cli_main(["export", str(path), "-o", str(tmp_path / "out"), "--model-only"]) == 1
    assert not (tmp_path / "ran.txt").exists() and not (tmp_path / "out" / "model.py").exists()
    # the trust step is what makes it run (so the checks above can fail)
    net = build(project, trust=[str(evil)]).instantiate("net")
    assert (tmp_path / "ran.txt").exists() and (tmp_path / "built.txt").exists()
    assert net(torch.zeros(2, 4)).shape == (2, 4)


@pytest.mark.parametrize("ref", ["os:system;x", "../evil.py:Evil", "evil.py:Evil()", "a b.py:C",
                                 "evil.py", "pkg.mod:Name\n", "/tmp/x.py:__import__('os')"])
def test_malformed_module_references_are_refused_at_load(ref: str) -> None:
    with pytest.raises(ProjectLoadError, match="module reference|control character|identifier"):
        loads(_crafted(ref))


def test_untrusted_stdlib_reference_is_refused_too() -> None:
    project = loads(_crafted("collections:OrderedDict"))
    assert code_sources(project) == ["collections"]
    with pytest.raises(UntrustedCodeError, match="collections"):
        build(project)


def test_opaque_export_says_it_needs_the_file_and_runs(tmp_path) -> None:
    """An unknown module becomes an opaque node; the exported model.py imports the original
    class and, with the imported weights, gives the original's outputs."""
    src = tmp_path / "mine.py"
    src.write_text('''
import torch
from torch import nn

class Mish(nn.Module):
    def forward(self, x):
        return x * torch.tanh(nn.functional.softplus(x)) if x.dim() > 0 else x

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(6, 8), Mish(), nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))
''')
    result = import_model(f"{src}:Net", inputs=["N,6"])
    assert [(q, r) for q, r, _ in result.report.opaque] == [("act", f"{src}:Mish")]
    saved, weights = result.save(tmp_path / "net.loom")
    out = tmp_path / "export"
    assert cli_main(["export", str(saved), "-o", str(out), "--model-only",
                     "--trust-code", str(src)]) == 0
    text = (out / "model.py").read_text()
    assert f"{src}:Mish" in text.split('"""')[1]  # the header names the file it needs
    spec = importlib.util.spec_from_file_location("exported_opaque", out / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.NETWORKS["net"]().eval()
    net.load_state_dict(read_weights(weights_path(saved))["net"])
    original = result_original(src)  # same attribute names here, so the same state_dict keys
    original.load_state_dict(read_weights(weights)["net"])
    x = torch.randn(3, 6)
    with torch.no_grad():
        assert torch.allclose(net(x), original.eval()(x), atol=1e-6)


def result_original(src) -> torch.nn.Module:
    from compiler.importing.source import load_object

    return load_object(f"{src}:Net")()


def test_cli_import_writes_project_and_weights(tmp_path, capsys) -> None:
    src = tmp_path / "tiny.py"
    src.write_text("import torch\nclass Tiny(torch.nn.Module):\n"
                   "    def __init__(self):\n        super().__init__()\n"
                   "        self.fc = torch.nn.Linear(3, 2)\n"
                   "    def forward(self, x):\n        return torch.relu(self.fc(x))\n")
    out = tmp_path / "tiny.loom"
    assert cli_main(["import", f"{src}:Tiny", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "runs your own code" in captured.err
    assert "max |difference|" in captured.out and "3 nodes" not in captured.out
    assert out.exists() and weights_path(out).exists()
    assert cli_main(["import", f"{src}:Nope", "-o", str(out)]) == 1
    assert "has no 'Nope'" in capsys.readouterr().err
