"""File ▸ Load Weights… and File ▸ Export ▸ ONNX… in the window (pytest-qt, offscreen)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from helpers import isolated_app, make_window, mlp_project
from torch import nn

from compiler import build


@pytest.fixture
def env(tmp_path, monkeypatch):
    isolated_app(tmp_path, monkeypatch)
    return tmp_path


def _menu_texts(menu) -> list[str]:
    return [a.text().replace("&", "") for a in menu.actions()]


class _OtherNames(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, classes))


def test_load_weights_by_order_saves_beside_the_project(env: Path, qtbot) -> None:
    w = make_window(qtbot, mlp_project())
    assert "Load Weights…" in _menu_texts(w.file_menu)
    w.choose_file = lambda caption, filt, save: str(env / "proj")
    assert w.save_as()
    theirs = _OtherNames()
    torch.save(theirs.state_dict(), env / "theirs.pt")
    w.choose_file = lambda caption, filt, save: str(env / "theirs.pt")
    w.load_weights_action.trigger()
    title, text = w.messages[-1]
    assert title == "Weights loaded" and "4 by order and shape" in text
    saved = env / "proj.weights" / "net.safetensors"
    assert saved.exists()
    model = build(w.document.project).instantiate()
    from compiler.weights import load_into

    load_into(model, "net", saved)
    assert torch.equal(model.state_dict()["fc2.weight"], theirs.state_dict()["body.2.weight"])


def test_disagreeing_shapes_are_loaded_only_after_a_yes(env: Path, qtbot) -> None:
    from builder.weights_actions import load_weights

    w = make_window(qtbot, mlp_project())
    torch.save(_OtherNames(classes=3).state_dict(), env / "head3.pt")
    w.ask = lambda title, text: False
    assert load_weights(w, str(env / "head3.pt")) == {}
    title, text = w.messages[-1]
    assert title == "Weights not loaded" and "Nothing was loaded" in text
    assert "'fc2.weight' [10, 32] <- 'body.2.weight' [3, 32]" in text
    assert w.loaded_weights == {}
    w.ask = lambda title, text: True
    reports = load_weights(w, str(env / "head3.pt"))
    assert [p.target for p in reports["net"].mismatched] == ["fc2.weight", "fc2.bias"]
    assert set(w.loaded_weights) == {"net"}


def test_a_crafted_file_is_refused_in_the_app(env: Path, qtbot) -> None:
    import os

    from builder.weights_actions import load_weights

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {env / 'pwned'}",))

    torch.save({"x": Boom()}, env / "evil.pt")
    w = make_window(qtbot, mlp_project())
    assert load_weights(w, str(env / "evil.pt")) == {}
    assert "could run code" in w.messages[-1][1] and not (env / "pwned").exists()


@pytest.mark.slow
def test_export_onnx_action_writes_a_checked_file(env: Path, qtbot) -> None:
    pytest.importorskip("onnxruntime")
    w = make_window(qtbot, mlp_project())
    assert w.export_onnx_action.isEnabled()
    w.choose_dir = lambda caption: str(env / "onnx")
    w.export_onnx_action.trigger()  # a child process: wait for its dialog
    qtbot.waitUntil(lambda: bool(w.messages), timeout=240_000)
    title, text = w.messages[-1]
    assert title == "ONNX exported", text
    assert (env / "onnx" / "model.onnx").exists() and "max |diff|" in text


def test_onnx_item_is_greyed_with_the_hint_without_the_extra(env: Path, qtbot,
                                                             monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # how Python marks "not importable"
    w = make_window(qtbot, mlp_project())
    act = w.export_onnx_action
    assert not act.isEnabled()
    assert "pip install 'layerloom[onnx]'" in act.toolTip() and "onnxscript" in act.text()
    assert act in w.export_menu.actions()
