"""An opened trial shows on its canvas what it changed (issue 12): the nodes whose params differ
from the searched project get the trial outline and a "Δ N" pill, the others (a searched node
the trial left as it was among them) do not, and the rows of its "Trial N" dock lead to their
nodes: hovering one selects the node, clicking one selects and centres it."""

from __future__ import annotations

import pytest
from helpers import isolated_app, make_window
from PySide6.QtCore import QPoint, QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from builder.canvas.items import NODE_W
from compiler.graph import add_network
from compiler.project import Choice, Domain, Project, save
from training.search.space import resolve

SHOT = "/tmp/trial_diff.png"


def _three_layer_project() -> Project:
    p = Project(name="diff test")
    add_network(p, "net").chain(
        ("io.input", {"shape": ["N", 64]}, "x"),
        ("linear.linear", {"out_features": 32}, "fc1"),
        ("activation.relu", {}, "act"),
        ("linear.linear", {"out_features": 32}, "fc2"),
        ("activation.relu", {}, "act2"),
        ("linear.linear", {"out_features": 10}, "fc3"),
        ("io.output", {}, "logits"))
    ids = {n.name: n.id for n in p.networks[0].nodes}
    for label, node in (("w1", "fc1"), ("w2", "fc2")):
        p.search.choices.append(Choice(label=label, scope="net", node=ids[node],
                                       param="out_features",
                                       domain=Domain(kind="values", values=[16, 32, 64])))
    p.training.recipe = "classification"
    return p


def _changed_pixels(win, node_id: str) -> tuple[int, int]:
    """Pixels of the trial colour on screen (the view grabbed as shown) in the ring just outside
    a node's box (the outline) and inside it (the pill)."""
    from builder.search.badge import changed_color

    view, item = win.view, win.scene.nodes[node_id]
    node = item.mapRectToScene(QRectF(0, 0, NODE_W, item.height))
    inner = view.mapFromScene(node).boundingRect()
    outer = view.mapFromScene(node.adjusted(-5, -5, 5, 5)).boundingRect()
    image = view.viewport().grab().toImage()
    want = changed_color()
    ring = inside = 0
    for x in range(max(0, outer.left()), min(image.width(), outer.right() + 1)):
        for y in range(max(0, outer.top()), min(image.height(), outer.bottom() + 1)):
            c = QColor(image.pixel(x, y))
            if abs(c.red() - want.red()) + abs(c.green() - want.green()) \
                    + abs(c.blue() - want.blue()) < 60:
                if inner.adjusted(1, 1, -1, -1).contains(x, y):
                    inside += 1
                else:
                    ring += 1
    return ring, inside


@pytest.mark.timeout(60)
def test_an_opened_trial_marks_the_nodes_it_changed_and_its_rows_select_them(
        tmp_path, monkeypatch, qtbot):
    isolated_app(tmp_path, monkeypatch)
    base = _three_layer_project()
    w = make_window(qtbot, base)
    ids = {n.name: n.id for n in w.document.project.networks[0].nodes}
    choices = {"w1": 64, "w2": 32}  # fc1 changes; fc2 is searched but keeps the base's 32
    trial = resolve(w.document.project, choices)
    path = tmp_path / "s.search" / "trials" / "3" / "project.loom"
    path.parent.mkdir(parents=True)
    save(trial, path)
    panel = w.search_panel
    panel.on_event({"event": "trial_started", "number": 3, "choices": choices})
    panel.on_event({"event": "trial_finished", "number": 3, "state": "complete",
                    "choices": choices, "metric": 0.91, "params": 5000, "flops": 9000,
                    "cost": 5000, "latency_ms": None, "duration_s": 2.0, "reason": None,
                    "project": str(path)})

    win = panel.open_trial(3)
    assert win is not None
    qtbot.addWidget(win)
    win.view.fit()
    QApplication.processEvents()
    marks = {name: win.scene.nodes[nid].trial_changes for name, nid in ids.items()}
    assert marks["fc1"] == ["out_features: 32 → 64"]
    assert all(not v for name, v in marks.items() if name != "fc1"), marks
    assert "changed in this trial" in win.scene.nodes[ids["fc1"]].toolTip()
    assert "changed in this trial" not in win.scene.nodes[ids["fc2"]].toolTip()
    # what the user sees: the trial colour around fc1, none around fc2 or fc3
    ring, pill = _changed_pixels(win, ids["fc1"])
    assert ring > 2 * NODE_W and pill > 100, (ring, pill)
    assert _changed_pixels(win, ids["fc2"]) == (0, 0) == _changed_pixels(win, ids["fc3"])
    win.grab().save(SHOT)  # before any selection: the trial mark alone
    # the base window is not marked
    assert not any(item.trial_changes for item in w.scene.nodes.values())

    body = win.docks["Trial 3"].widget()
    rows = body.rows
    assert rows.count() == 1 and rows.item(0).text() == "net/fc1.out_features: 32 → 64"
    win.scene.clearSelection()
    rect = rows.visualItemRect(rows.item(0))
    QTest.mouseMove(rows.viewport(), QPoint(rect.center().x(), rect.center().y()))
    if win.scene.selected_ids() != [ids["fc1"]]:  # no hover events on this platform: the signal
        rows.itemEntered.emit(rows.item(0))
    assert win.scene.selected_ids() == [ids["fc1"]]
    win.scene.clearSelection()
    QTest.mouseClick(rows.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert win.scene.selected_ids() == [ids["fc1"]]
