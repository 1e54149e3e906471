"""Every template's exported model.py reads like hand-written PyTorch: it passes ``ruff check``
and ``ruff format --check`` at 100 columns, imports only what it uses, writes no no-op layers,
and names values the way torchvision's and nanoGPT's code does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import templates
from compiler import generate

RUFF = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
NAMES = [t.name for t in templates.all_templates()]


@cache
def _text(name: str) -> str:
    return generate(templates.build(name)).text


@pytest.mark.parametrize("name", NAMES)
def test_template_export_passes_ruff(name: str, tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text(_text(name))
    common = ["--isolated", "--line-length", "100"]
    check = subprocess.run([RUFF, "check", *common, "--extend-select", "E501",  # 100 columns
                            "--output-format", "concise", str(path)], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run([RUFF, "format", *common, "--diff", str(path)], capture_output=True,
                         text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.parametrize("name", NAMES)
def test_template_export_has_no_noop_layers(name: str) -> None:
    # (one quote style: ruff format --check above refuses single-quoted strings)
    text = _text(name)
    assert "Dropout(0.0)" not in text and "Dropout(p=0.0)" not in text
    assert "nn.Identity()" not in text


def test_resnet_forward_reuses_names_and_says_shapes_symbolically() -> None:
    text = _text("resnet18")
    # the network: a linear chain rebinds x, a comment only where the shape changes
    assert "        x = self.conv1(x)  # [N, 64, 112, 112]\n        x = self.bn1(x)\n" in text
    assert "        x = self.layer2(x)  # [N, 128, 28, 28]\n" in text
    # a residual block: its input is used again, so the branch gets a new name
    assert "        out = self.conv1(x)  # [N, planes, H/2, W/2]\n" in text
    assert "        x = self.downsample(x)  # [N, planes, H/2, W/2]\n" in text
    assert "        out = out + x\n" in text
    assert "[N, *" not in text
    # block params are named constructor arguments; a stage is one Sequential
    assert "    def __init__(self, in_channels: int, planes: int, stride: int) -> None:" in text
    assert "stride=stride" in text
    assert ("        self.layer2 = nn.Sequential(\n"
            "            BasicBlockDown(in_channels=64, planes=128, stride=2), "
            "BasicBlock(planes=128)\n        )\n") in text


def test_imports_are_those_the_code_uses() -> None:
    assert "\nfrom torch import Tensor, nn\n" in _text("resnet18")
    assert "import torch\n" not in _text("resnet18")
    gpt = _text("gpt-small")
    assert "import torch\n" in gpt  # causal_mask and the learned positions use torch.*
    assert "import math" not in gpt
    assert "import math\n" in _text("transformer-small")  # sinusoidal positions use math.log


def test_helpers_are_copied_from_the_real_module() -> None:
    import inspect

    from nodes import helpers

    assert inspect.getsource(helpers.GCNConv).strip() in _text("gcn-karate")
    assert "class GCNConv(nn.Module):" in _text("gcn-karate")
