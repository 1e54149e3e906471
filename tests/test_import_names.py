"""An imported model keeps the original's attribute names: the generated module's state_dict keys
equal the original's, in order, so the original's checkpoint loads with ``strict=True``.

fx traces through ``nn.Sequential``; the importer gathers each Sequential attribute's nodes back
into a block that codegen writes as an ``nn.Sequential`` of that name (``features``, ``layer2``,
``downsample``), and writes nodes in the original's registration order."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from compiler import build
from compiler.importing.pipeline import import_model
from tests import reference_models as refs


class SmallVGG(nn.Module):
    """VGG's layout (``features``, ``pool``, ``classifier``) with narrow layers."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5),
                                        nn.Linear(32, 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def _randomise(model: nn.Module) -> nn.Module:
    """Seeded weights and BatchNorm statistics away from (0, 1): a tensor in the wrong place
    changes the output."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def _check_round_trip(factory: Callable[[], nn.Module], size: int = 64) -> list[str]:
    original = _randomise(factory())
    result = import_model(original, inputs=[f"N,3,{size},{size}"])
    theirs = original.state_dict()
    assert list(result.weights["net"]) == list(theirs)
    ours = build(result.project).instantiate("net")
    assert list(ours.state_dict()) == list(theirs)
    ours.load_state_dict(theirs, strict=True)
    ours.eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), original(x), rtol=1e-4, atol=1e-5)
    return list(theirs)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("factory", [
    pytest.param(lambda: refs.TVResNet(18, 10, width=8), id="resnet18-narrow"),
    pytest.param(lambda: refs.TVResNet(50, 10, width=4), id="resnet50-narrow"),
    pytest.param(SmallVGG, id="vgg-narrow")])
def test_narrow_import_keeps_the_original_keys(factory: Callable[[], nn.Module]) -> None:
    keys = _check_round_trip(factory)
    assert len(keys) > 10


@pytest.mark.timeout(120)
def test_keys_are_spelled_like_the_original() -> None:
    """The names a user looks for, spelled out, including a downsample registered after the
    layers it is called before."""
    keys = _check_round_trip(lambda: refs.TVResNet(18, 10, width=8))
    assert keys[:2] == ["conv1.weight", "bn1.weight"]
    assert keys.index("layer2.0.bn2.num_batches_tracked") < keys.index(
        "layer2.0.downsample.0.weight")
    assert "layer2.0.downsample.1.running_var" in keys
    assert keys[-2:] == ["fc.weight", "fc.bias"]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(refs.TORCHVISION_STRUCTURED))
def test_reference_import_loads_the_original_checkpoint(name: str) -> None:
    keys = _check_round_trip(refs.TORCHVISION_STRUCTURED[name])
    assert keys[-1].startswith(("fc.", "classifier."))
