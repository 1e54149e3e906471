"""Training starts from imported weights (``--init-weights``), and refuses weights that no longer
fit the graph with a message saying what to do."""

from __future__ import annotations

import pytest
import torch

import templates
from compiler.codegen import generate
from compiler.imported_weights import read_weights
from compiler.importing import import_model
from compiler.loading import load
from compiler.project import save
from training.engine import read_checkpoint
from training.runner import run


def _imported(tmp_path):
    template = templates.build("mlp-digits")
    (tmp_path / "m.py").write_text(generate(template).text)
    result = import_model(f"{tmp_path / 'm.py'}:Net", inputs=["N,64"])
    result.project.training = template.training
    return result.save(tmp_path / "mlp.loom")


@pytest.mark.slow  # two short runs, ~20 s on a loaded machine (data and writer imports)
def test_training_starts_from_the_imported_weights(tmp_path) -> None:
    path, weights = _imported(tmp_path)
    ev = run(path, tmp_path / "run", steps=1, hyper={"lr": 1e-12}, init_weights=str(weights))
    assert ev["event"] == "finished", ev
    trained = read_checkpoint(str(tmp_path / "run" / "checkpoints" / "latest.pt"))["nets"]["net"]
    imported = read_weights(weights)["net"]
    assert set(trained) == set(imported)
    for key, value in imported.items():  # one step at lr 1e-12: still the imported values
        assert torch.allclose(trained[key].float(), value.float(), atol=1e-6), key
    # without --init-weights the run starts from random weights
    ev = run(path, tmp_path / "fresh", steps=1, hyper={"lr": 1e-12})
    fresh = read_checkpoint(str(tmp_path / "fresh" / "checkpoints" / "latest.pt"))["nets"]["net"]
    assert not all(torch.allclose(fresh[k].float(), v.float()) for k, v in imported.items())


def test_weights_that_no_longer_fit_fail_clearly(tmp_path) -> None:
    path, weights = _imported(tmp_path)
    project = load(path)
    net = project.network("net")
    first = next(n for n in net.nodes if n.type == "linear.linear")
    first.params["out_features"] = first.params["out_features"] + 1
    save(project, path)
    ev = run(path, tmp_path / "run", steps=1, init_weights=str(weights))
    assert ev["event"] == "failed" and ev["kind"] == "checkpoint"
    assert "do not fit network 'net'" in ev["reason"] and "shape differs" in ev["reason"]
    assert "--init-weights" in ev["hint"]
