"""The reference templates' module structure is torchvision's: same state_dict keys, in the same
order, so a checkpoint of the hand-written torchvision-structured model (tests/reference_models)
loads with ``strict=True`` and gives the same outputs."""

from __future__ import annotations

import pytest
import torch

import templates
from compiler import build
from tests import reference_models as refs


def _random_model(ctor) -> torch.nn.Module:
    """The hand-written model with seeded random weights (scaled by fan-in, so 16 layers stay
    finite) and BatchNorm statistics away from (0, 1), so a tensor loaded into the wrong place
    shows. Built on the meta device and filled from one random block: drawing VGG's 138M
    weights one by one costs seconds on this machine."""
    g = torch.Generator().manual_seed(1)
    with torch.device("meta"):
        model = ctor()
    model.to_empty(device="cpu")
    base = torch.randn(1_000_003, generator=g)  # a prime period: tensors start at new offsets
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            n = p.numel()
            if offset + n <= base.numel():
                tiled = base[offset:offset + n]
            else:
                rotated = torch.cat([base[offset:], base[:offset]])
                tiled = rotated.repeat(n // base.numel() + 1)[:n]
            p.copy_(tiled.view(p.shape) / fan_in ** 0.5)
            offset = (offset + n) % base.numel()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.num_batches_tracked.zero_()
    return model.eval()


#: the 25M-, 61M- and 138M-weight models take over 10 s on this shared machine
SLOW = {"alexnet", "resnet50", "vgg16"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in sorted(refs.TORCHVISION_STRUCTURED)])
def test_reference_template_loads_a_torchvision_structured_checkpoint(name: str) -> None:
    theirs = _random_model(refs.TORCHVISION_STRUCTURED[name])
    with torch.device("meta"):  # no need to initialise weights that are overwritten
        ours = build(templates.build(name)).instantiate("net")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    ours.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = theirs(x)
        got = ours(x)
    assert got.shape == expected.shape == (2, 1000)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_keys_read_like_torchvision() -> None:
    """The names a user looks for, spelled out (not only equal to our own hand-written copy)."""
    with torch.device("meta"):
        resnet = build(templates.build("resnet18")).instantiate("net").state_dict()
        vgg = build(templates.build("vgg16")).instantiate("net").state_dict()
    keys = {"resnet18": list(resnet), "vgg16": list(vgg)}
    assert "layer2.0.conv1.weight" in keys["resnet18"]
    assert "layer2.0.downsample.0.weight" in keys["resnet18"]
    assert "layer2.0.downsample.1.running_var" in keys["resnet18"]
    assert "layer1.1.bn2.weight" in keys["resnet18"]
    assert keys["resnet18"][-2:] == ["fc.weight", "fc.bias"]
    assert "features.0.weight" in keys["vgg16"] and "features.28.weight" in keys["vgg16"]
    assert "classifier.6.weight" in keys["vgg16"]
