"""Weights in: state_dict files matched to generated networks by name, then by order and shape.

The reference models of ``tests/reference_models.py`` (written by hand, torchvision's layout) stand
for a torchvision checkpoint: their state_dicts are loaded into the reference templates' networks.
Big networks are matched on the meta device (shapes only, nothing allocated); ResNet-18 is loaded
for real and must then give the reference's outputs.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

import templates
from compiler import build
from compiler.weights import (
    WeightsError,
    WeightsRefused,
    load_into,
    match,
    pick_state_dict,
    read_weights,
    save_weights,
)
from tests import reference_models as R
from tests.helpers import mlp_project


def _meta_pair(name: str) -> tuple[nn.Module, nn.Module]:
    ctor = R.REFERENCES[name][0]
    with torch.device("meta"):
        return ctor(), build(templates.build(name)).instantiate()


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "vgg16", "vgg16-bn"])
def test_reference_checkpoints_match_strictly_by_name(name: str) -> None:
    ref, ours = _meta_pair(name)
    report = match("net", ours.state_dict(), ref.state_dict())
    assert report.strict_by_name, report.text()
    assert len(report.by_name) == len(ref.state_dict())


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "efficientnet-b0"])
def test_reference_checkpoints_match_completely(name: str) -> None:
    """Every tensor finds its own, by name where the export's names are the reference's and by
    order and shape elsewhere (the ResNet stem: ``conv1``/``bn1`` in the export, ``stem.0``
    here)."""
    ref, ours = _meta_pair(name)
    report = match("net", ours.state_dict(), ref.state_dict())
    assert report.complete and not report.unused, report.text()
    assert all(p.fits for p in report.pairs)


def test_resnet18_loaded_gives_the_reference_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ref = R.ResNet(18).eval()
    path = save_weights(ref.state_dict(), tmp_path / "resnet18.safetensors")
    ours = build(templates.build("resnet18")).instantiate().eval()
    report = load_into(ours, "net", path)
    assert report.complete
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))


class _OtherNames(nn.Module):
    """The MLP of ``mlp_project`` written with other attribute names (a Sequential)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_by_order_and_shape_where_names_differ(tmp_path: Path) -> None:
    torch.manual_seed(1)
    theirs = _OtherNames().eval()
    path = tmp_path / "mlp.pt"
    torch.save({"state_dict": theirs.state_dict()}, path)  # a common checkpoint wrapper
    ours = build(mlp_project()).instantiate().eval()
    report = load_into(ours, "net", path)
    assert [p.how for p in report.pairs] == ["order"] * 4
    assert [(p.target, p.source) for p in report.pairs][:2] == [
        ("fc1.weight", "body.0.weight"), ("fc1.bias", "body.0.bias")]
    x = torch.randn(3, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_shape_disagreement_is_refused_unless_partial_is_allowed() -> None:
    ref = R.ResNet(18, num_classes=10)  # a checkpoint with another head
    ours = build(templates.build("resnet18")).instantiate()
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    with pytest.raises(WeightsRefused) as err:
        load_into(ours, "net", ref.state_dict())
    assert "'fc.weight' is [1000, 512] in the network but [10, 512] in the file" in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in ours.state_dict().items()), "touched"
    report = load_into(ours, "net", ref.state_dict(), allow_partial=True)
    assert [p.target for p in report.mismatched] == ["fc.weight", "fc.bias"]
    state = ours.state_dict()
    assert torch.equal(state["fc.weight"], before["fc.weight"])  # kept its initial value
    assert torch.equal(state["conv1.weight"], ref.state_dict()["stem.0.weight"])


def test_missing_tensors_are_refused_and_reported() -> None:
    ours = build(mlp_project()).instantiate()
    partial = {k: v for k, v in ours.state_dict().items() if k.startswith("fc1.")}
    with pytest.raises(WeightsRefused) as err:
        load_into(ours, "net", partial)
    assert err.value.report.missing == ["fc2.weight", "fc2.bias"]
    assert "no match" in err.value.report.text()


class _Boom:
    """An object whose unpickling runs a command: what a crafted weights file carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [False, True])
def test_a_crafted_pickle_is_refused_and_runs_nothing(tmp_path: Path, legacy: bool) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"fc1.weight": torch.zeros(2), "x": _Boom(marker)}
    if legacy:  # a bare pickle, not torch's zip format (protocol 2: torch's legacy files)
        path.write_bytes(pickle.dumps({"x": _Boom(marker)}, protocol=2))
    else:
        torch.save(payload, path)
    with pytest.raises(WeightsError) as err:
        read_weights(path)
    assert "refused" in str(err.value) and "could run code" in str(err.value)
    assert not marker.exists()


def test_formats_checkpoints_exports_and_prefixes(tmp_path: Path) -> None:
    net = build(mlp_project()).instantiate()
    sd = net.state_dict()
    # a run's exported weights: state_dicts by network name
    torch.save({"net": sd}, tmp_path / "run.pt")
    assert set(read_weights(tmp_path / "run.pt")) == {"net"}
    # a Layerloom checkpoint
    torch.save({"step": 3, "nets": {"net": sd}, "opt": {}}, tmp_path / "ckpt.pt")
    found = read_weights(tmp_path / "ckpt.pt")
    assert pick_state_dict("net", ["net"], found) is not None
    # DistributedDataParallel's module. prefix matches by name
    report = match("net", sd, {f"module.{k}": v for k, v in sd.items()})
    assert report.strict_by_name and len(report.by_name) == len(sd)
    # several networks in one safetensors file come back by name
    save_weights({"generator": sd, "discriminator": sd}, tmp_path / "gan.safetensors")
    found = read_weights(tmp_path / "gan.safetensors")
    assert set(found) == {"generator", "discriminator"}
    assert torch.equal(found["generator"]["fc1.weight"], sd["fc1.weight"])


def test_unreadable_files_say_what_they_are(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not weights")
    with pytest.raises(WeightsError, match="not a readable weights file"):
        read_weights(text)
    torch.save({"lr": 0.1}, tmp_path / "hyper.pt")
    with pytest.raises(WeightsError, match="holds no tensors keyed by name"):
        read_weights(tmp_path / "hyper.pt")
    with pytest.raises(WeightsError, match="cannot read"):
        read_weights(tmp_path / "absent.pt")
