"""Files and the gallery in the window: save/load, corrupt files, autosave recovery, export of code
and images, recent files and every template opening with zero errors."""

from __future__ import annotations

import importlib.util
import sys
import uuid

import pytest
import torch
from helpers import make_window
from PySide6.QtCore import QCoreApplication, QSettings

from builder.gallery import template_infos
from compiler import Project, add_network, load

SHOTS = __import__("conftest").SCREENSHOTS


def _mlp() -> Project:
    p = Project(name="mlp")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 16]}, "x"), ("linear.linear", {"out_features": 8}, "fc"),
            ("activation.relu", {}, "act"), ("io.output", {}, "logits"))
    return p


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLOOM_DATA_DIR", str(tmp_path / "data"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "ini"))
    QCoreApplication.setOrganizationName(f"LayerloomTest{uuid.uuid4().hex[:6]}")
    from builder.app import make_app

    make_app()
    return tmp_path


def _set_width(w, name: str, value: int) -> None:
    node_id = w.scene.graph.find(name)
    w.scene.select([node_id])
    w.inspector.editors["out_features"].setValue(value)


def test_save_load_round_trip_title_and_recent(env, qtbot):
    w = make_window(qtbot, _mlp())
    _set_width(w, "fc", 5)
    assert w.document.dirty and w.isWindowModified()
    w.choose_file = lambda caption, filt, save: str(env / "model")
    assert w.save_as()
    path = env / "model.loom"
    assert path.exists() and not w.document.dirty
    assert "model.loom" in w.windowTitle() and not w.isWindowModified()
    assert not list(env.glob(".model.loom.*.tmp"))  # atomic write left no temp file
    assert w.recent_files()[0] == str(path.resolve())
    w2 = make_window(qtbot)
    assert w2.open_path(path)
    assert w2.document.project.model_dump() == load(path).model_dump()
    assert w2.document.project.network("net").node_by_name("fc").params["out_features"] == 5
    pos = w.document.positions("net")
    assert w2.document.positions("net") == pos  # the layout travels in the file
    w2.document.analyze_now()
    assert [wi.label for wi in w2.scene.wires.values()].count("[N, 5]") == 2


def test_corrupt_file_is_refused_and_nothing_changes(env, qtbot):
    w = make_window(qtbot, _mlp())
    before = w.document.project.model_dump()
    bad = env / "broken.loom"
    bad.write_text('{"format": "layerloom", "networks": [ {"name": "net", "nodes": [', "utf-8")
    assert not w.open_path(bad)
    assert w.messages and "not valid JSON" in w.messages[-1][1]
    assert w.document.project.model_dump() == before
    wrong = env / "wrong.loom"
    wrong.write_text('{"networks": [{"name": "net", "nodes": [{"type": "no.such", "name": "a"}]}]}')
    assert not w.open_path(wrong)
    assert "unknown node type" in w.messages[-1][1] and "networks[0].nodes[0].type" in \
        w.messages[-1][1]
    assert w.document.project.model_dump() == before
    assert w.document.path is None


def test_autosave_and_recovery_after_a_crash(env, qtbot):
    w = make_window(qtbot, _mlp())
    assert w.autosave() is None  # nothing unsaved, nothing written
    _set_width(w, "fc", 7)
    written = w.autosave()
    assert written is not None and written.parent == env / "data" / "recovery"
    # The "crash": the window never closes. A new session starts and offers the file.
    w2 = make_window(qtbot)
    asked = []
    w2.ask = lambda title, text: asked.append(text) or True
    assert w2.offer_recovery()
    assert asked and "did not close cleanly" in asked[0]
    fc = w2.document.project.network("net").node_by_name("fc")
    assert fc.params["out_features"] == 7
    assert w2.document.dirty  # recovered work is unsaved work
    assert written.exists() is False
    # A clean close removes this session's own recovery file.
    w2.close()
    assert not w2.recovery_file.path.exists()
    w3 = make_window(qtbot)
    assert not w3.offer_recovery()
    w.document.undo_stack.setClean()


def test_export_code_import_it_and_export_images(env, qtbot):
    w = make_window(qtbot, _mlp())
    out = env / "export"
    written = w.export_code(str(out))
    assert out / "model.py" in written
    spec = importlib.util.spec_from_file_location("exported_model_gui", out / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["exported_model_gui"] = module
    spec.loader.exec_module(module)
    model = module.NETWORKS["net"]()
    assert model(torch.zeros(3, 16)).shape == (3, 8)
    assert (out / "model.py").read_text() == w.document.code().text
    png = w.export_image("png", str(env / "graph"))
    svg = w.export_image("svg", str(env / "graph"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert "<svg" in text and "fc" in text
    # A project with errors refuses to export and says why.
    x = w.scene.graph.find("x")
    w.scene.select([x])
    w.inspector.set_value("shape", ["N", 16, 3])
    w.scene.select([w.scene.graph.find("logits")])
    w.scene.delete_selected()
    w.document.analyze_now()
    before = len(w.messages)
    if w.document.analysis.errors:
        assert w.export_code(str(env / "export2")) == []
        assert len(w.messages) == before + 1 and "Fix these errors" in w.messages[-1][1]


INFOS = template_infos()


@pytest.mark.skipif(not INFOS, reason="no templates registered yet")
def test_every_template_opens_from_the_gallery_without_errors(env, qtbot):
    from builder.gallery import Gallery

    w = make_window(qtbot)
    dlg = Gallery(w)
    names = []
    for row in range(dlg.table.rowCount()):
        dlg.table.selectRow(row)
        name = dlg.selected_name()
        assert name == INFOS[row].name
        assert w.open_template(name), w.messages
        w.document.analyze_now()
        errors = [str(d) for d in w.document.analysis.errors]
        assert not errors, (name, errors)
        assert w.document.project.networks
        net = w.scene.graph.net
        assert len(w.scene.nodes) == len(net.nodes)
        _assert_no_overlaps(w, name)
        names.append(name)
        if name in ("resnet18-small", "mlp-digits", "vae-digits"):
            w.view.fit()
            w.grab().save(str(SHOTS / f"template_{name}.png"))
    assert len(names) == len(INFOS)
    # Parameter counts arrive from a worker thread; the MLP's is 64*h + h + ... > 0.
    qtbot.waitUntil(lambda: dlg.table.item(0, 3).text() != "…", timeout=60000)
    assert dlg.table.item(0, 3).text()[0].isdigit(), dlg.table.item(0, 3).text()
    dlg.reject()


def _assert_no_overlaps(w, name: str) -> None:
    """Node bodies (without the badge margin) must not intersect after auto-layout."""
    rects = sorted((item.sceneBoundingRect().adjusted(4, 10, -4, -4)
                    for item in w.scene.nodes.values()), key=lambda r: r.left())
    for i, r in enumerate(rects):
        for r2 in rects[i + 1:]:
            if r2.left() > r.right():
                break
            assert not r.intersects(r2), f"{name}: nodes overlap at {r} and {r2}"


@pytest.mark.skipif("resnet18-small" not in [i.name for i in INFOS],
                    reason="resnet18-small template not registered")
def test_journey_learn_resnet_change_a_stage_repeat(env, qtbot):
    """Journey 1: open ResNet-18 (small), open a residual block, change stage 3's repeat and see
    the parameter count change."""
    import re

    w = make_window(qtbot)
    assert w.open_template("resnet18-small")
    w.document.analyze_now()
    assert not w.document.analysis.errors
    g = w.scene.graph
    blocks = [n for n in g.net.nodes if n.type == "block.block"]
    assert blocks and all(wi.label for wi in w.scene.wires.values())
    stage3 = next((n for n in blocks if "3" in n.name), blocks[len(blocks) // 2])
    w.scene.select([stage3.id])

    def params_shown() -> int | None:
        m = re.search(r"parameters: <b>([\d,]+)</b>", w.inspector.figures.text())
        return int(m.group(1).replace(",", "")) if m else None

    qtbot.waitUntil(lambda: params_shown() is not None, timeout=30000)
    before = params_shown()
    repeat = w.inspector.editors["repeat"]
    repeat.setValue(repeat.value() + 2)
    w.document.analyze_now()
    assert not w.document.analysis.errors
    qtbot.waitUntil(lambda: params_shown() not in (None, before), timeout=30000)
    assert params_shown() > before
    # Double-clicking the block shows its inside, with shapes from its first use.
    w.open_block(stage3.params["block"])
    w.document.analyze_now()
    assert w.scene.network == stage3.params["block"]
    labels = [wi.label for wi in w.scene.wires.values()]
    assert labels and all(labels)
    w.view.fit(readable=True)
    w.grab().save(str(SHOTS / "journey1_resnet_block.png"))
    w.document.undo_stack.setClean()
