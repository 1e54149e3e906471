"""User journey 9, end to end in the window: import the ResNet one wrote last year (a file of
one's own, torchvision's layout), see it as blocks with its weights, widen a stage, retrain from
the imported weights (told which tensors start fresh), export it as PyTorch and as ONNX.

The import goes through File ▸ Import ▸ PyTorch module… (its action, its dialog's fields), the
widening through the document's undoable command, the run through the Training panel (a child
process) and the exports through the File menu's functions; nothing is stubbed but the modal
dialogs, which record what they were asked to say and answer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from helpers import isolated_app, make_window
from PySide6.QtWidgets import QDialog, QMessageBox

from compiler.build import build
from compiler.project import TrainingModel
from compiler.project_weights import read_project_weights, weights_dir

TESTS = Path(__file__).parent
WIDTH, CLASSES, WIDER = 8, 4, 48  # layer3 has 4 * WIDTH = 32 planes; widened to 48

#: "The ResNet they wrote last year": a file of the user's own that builds it.
USER_FILE = f'''
import sys

import torch

sys.path.insert(0, {str(TESTS)!r})
from reference_models import TVResNet


def make():
    torch.manual_seed(7)
    return TVResNet(18, num_classes={CLASSES}, width={WIDTH})
'''


def _original() -> torch.nn.Module:
    sys.path.insert(0, str(TESTS))
    from reference_models import TVResNet

    torch.manual_seed(7)
    return TVResNet(18, num_classes=CLASSES, width=WIDTH)


def _import_through_the_menu(w, monkeypatch, source: Path, out: Path, name: str = "make",
                             inputs: str = "N,3,32,32") -> list[str]:
    """Trigger File ▸ Import ▸ PyTorch module…, fill its dialog as a user would; the texts of
    the message boxes it showed."""
    from builder import import_dialog

    def fill_and_accept(dialog: import_dialog.ImportDialog) -> int:
        dialog.file.setText(str(source))
        dialog.name.setText(name)
        dialog.inputs.setText(inputs)
        dialog.out.setText(str(out))
        return QDialog.DialogCode.Accepted

    shown: list[str] = []
    monkeypatch.setattr(import_dialog.ImportDialog, "exec", fill_and_accept)
    monkeypatch.setattr(QMessageBox, "information", lambda *a: shown.append(a[2]))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: pytest.fail(f"warned: {a[2]}"))
    w.import_module_action.trigger()
    return shown


@pytest.mark.slow  # an import, a training run in a child process and an ONNX export: ~60 s here
@pytest.mark.timeout(400)
def test_import_widen_retrain_from_imported_weights_and_export(tmp_path, monkeypatch,
                                                               qtbot) -> None:
    from builder.commands import SetParamsCommand, SetTrainingCommand, push
    from builder.weights_actions import export_onnx

    isolated_app(tmp_path, monkeypatch)
    w = make_window(qtbot)
    source = tmp_path / "resnet_2025.py"
    source.write_text(USER_FILE)
    path = tmp_path / "resnet.loom"

    # 1. import: a project of blocks, its weights beside it, keys as the original's
    shown = _import_through_the_menu(w, monkeypatch, source, path)
    assert shown and "max |difference|" in shown[0] and "block Layer" in shown[0], shown
    assert w.document.path == path
    net = w.document.project.network("net")
    names = [n.name for n in net.nodes]
    assert names[:5] == ["x", "conv1", "bn1", "relu", "maxpool"], names
    assert {"layer1", "layer2", "layer3", "layer4", "fc"} <= set(names), names
    original = _original()
    stored = read_project_weights(path)["net"]
    assert list(stored) == list(original.state_dict())  # names and order: a strict load
    original.load_state_dict(stored, strict=True)
    for key, value in _original().state_dict().items():
        assert torch.equal(stored[key], value), key
    form = w.training.form
    assert not form.init_weights.isHidden() and form.start_weights() == weights_dir(path)

    # 2. widen layer3 through the document's undoable command; train a few steps
    layer3 = next(n for n in net.nodes if n.name == "layer3")
    assert layer3.params["args"]["planes"] == 4 * WIDTH
    push(w.document, SetParamsCommand(w.document, "net", layer3.id,
                                      {"args": {**layer3.params["args"], "planes": WIDER}}))
    push(w.document, SetTrainingCommand(w.document, TrainingModel(
        recipe="classification", dataset="shapes32",
        hyper={"steps": 3, "batch_size": 8, "log_every": 1, "eval_every": 3, "lr": 1e-12,
               "device": "cpu"})))
    assert w.save()
    w.training.load_settings()
    assert form.start_weights() == weights_dir(path)

    # 3. retrain from the imported weights: told which tensors start fresh, asked, and it runs
    asked: list[str] = []

    def answer(parent, title, text, *args) -> QMessageBox.StandardButton:
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    panel = w.training
    with qtbot.waitSignal(panel.run_finished, timeout=240_000) as done:
        panel.start()
    assert done.args[1] == "finished", panel.current.failure
    assert len(asked) == 1 and "layer3.0.conv1.weight" in asked[0], asked
    assert "start from fresh values" in asked[0] and "[48, 16, 3, 3] now" in asked[0]
    events = [json.loads(line) for line in
              (panel.current.run_dir / "events.jsonl").read_text().splitlines()]
    warned = [e for e in events if e["event"] == "warning" and e.get("kind") == "weights"]
    assert len(warned) == 1 and "layer3.0.conv1.weight" in warned[0]["reinitialised"]
    assert "layer1.0.conv1.weight" not in warned[0]["reinitialised"]
    from training.engine import read_checkpoint

    trained = read_checkpoint(str(panel.current.run_dir / "checkpoints" / "latest.pt"))
    trained = trained["nets"]["net"]
    assert tuple(trained["layer3.0.conv1.weight"].shape) == (WIDER, 2 * WIDTH, 3, 3)
    for key in ("conv1.weight", "layer1.0.conv1.weight", "layer2.1.conv2.weight", "fc.weight"):
        assert torch.allclose(trained[key].float(), stored[key].float(), atol=1e-6), key
    assert not torch.allclose(trained["layer4.0.conv1.weight"][:, :32].float(),
                              stored["layer4.0.conv1.weight"].float())  # fresh: in widened

    # 4. export as PyTorch (model.py builds the widened model) and as ONNX
    written = w.export_code(str(tmp_path / "export"))
    assert tmp_path / "export" / "model.py" in written, written
    text = (tmp_path / "export" / "model.py").read_text()
    exported = build(w.document.code()).instantiate("net")
    assert "NETWORKS" in text and tuple(exported.layer3[0].conv1.weight.shape)[0] == WIDER
    w.grab().save("/tmp/journey9.png")
    pytest.importorskip("onnxruntime")
    before = len(w.messages)
    job = export_onnx(w, str(tmp_path / "onnx"))
    assert job is not None
    qtbot.waitUntil(lambda: len(w.messages) > before, timeout=240_000)
    title, text = w.messages[-1]
    assert title == "ONNX exported", text
    assert (tmp_path / "onnx" / "model.onnx").is_file() and "max |diff|" in text


NESTED = '''
from torch import nn


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
            nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)),
            nn.Sequential(nn.Sequential(nn.Conv2d(4, 6, 1))),
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.pool(self.features(x)).flatten(1))
'''


@pytest.mark.timeout(60)
def test_nested_and_one_layer_sequentials_import_with_readable_names(tmp_path) -> None:
    """A Sequential inside a Sequential is a block named after the attribute and its index
    (``Features0``, never a bare number); a one-layer Sequential is that layer, named after the
    attribute; the rebuilt model holds the original's tensors in the original's order."""
    from compiler.importing import import_model

    (tmp_path / "nested.py").write_text(NESTED)
    result = import_model(f"{tmp_path / 'nested.py'}:Nested", inputs=["N,3,8,8"])
    project = result.project
    blocks = sorted(b.name for b in project.blocks)
    assert blocks == ["Features", "Features0", "Features1"], blocks
    features = next(b for b in project.blocks if b.name == "Features")
    assert [n.name for n in features.nodes] == ["x", "sequential_0", "sequential_1", "conv2d_2",
                                                "y"]
    net = project.network("net")
    assert [(n.name, n.type) for n in net.nodes if n.name == "pool"] == [
        ("pool", "pool.adaptive_avg_pool2d")]
    model = build(project).instantiate("net")
    model.load_state_dict(result.weights["net"], strict=True)
    sys.path.insert(0, str(tmp_path))
    original = __import__("nested").Nested()
    ours, theirs = model.state_dict(), original.state_dict()
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]


@pytest.mark.timeout(120)
def test_onnx_export_carries_the_imported_weights_while_they_fit(tmp_path, monkeypatch,
                                                                 qtbot) -> None:
    """File ▸ Export ▸ ONNX… of an imported project exports its imported weights (not fresh
    ones); once an edit outgrew them, its initial weights, and the status bar says why."""
    import templates
    from builder.commands import SetParamsCommand, push
    from builder.weights_actions import _weights_for_export
    from compiler.codegen import generate

    isolated_app(tmp_path, monkeypatch)
    w = make_window(qtbot)
    (tmp_path / "mlp.py").write_text(generate(templates.build("mlp-digits")).text)
    shown = _import_through_the_menu(w, monkeypatch, tmp_path / "mlp.py", tmp_path / "mlp.loom",
                                     "Net", "N,64")
    assert shown and w.document.path == tmp_path / "mlp.loom"
    stored = read_project_weights(tmp_path / "mlp.loom")["net"]
    carried = _weights_for_export(w, ["net"])
    assert list(carried) == ["net"] and all(torch.equal(carried["net"][k], v)
                                            for k, v in stored.items())
    first = next(n for n in w.document.project.network("net").nodes
                 if n.type == "linear.linear")
    push(w.document, SetParamsCommand(w.document, "net", first.id,
                                      {"out_features": first.params["out_features"] + 8}))
    assert _weights_for_export(w, ["net"]) == {}
    assert "no longer fit net" in w.statusBar().currentMessage()
