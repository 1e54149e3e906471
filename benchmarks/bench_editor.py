"""Editor speed on a ResNet-152 with every block expanded (500+ nodes), offscreen.

Prints: open + layout time (target ≤ 1 s), per-frame repaint while moving a node (≤ 16 ms), and
re-analysis after an edit (≤ 100 ms). Run: ``.venv/bin/python benchmarks/bench_editor.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def expanded_resnet152():
    """The resnet152 template with every block node inlined; a synthetic 500+ node residual
    network if that template is not there."""
    from compiler.graph import expand_block

    try:
        import templates

        project = templates.build("resnet152")
    except Exception:
        return synthetic(520), "synthetic residual MLP"
    for net in project.networks:
        while True:
            blocks = [n.id for n in net.nodes if n.type == "block.block"]
            if not blocks:
                break
            for nid in blocks:
                expand_block(project, net.name, nid)
    project.ui.pop("positions", None)
    return project, "resnet152 template, blocks expanded"


def synthetic(n_nodes: int):
    from compiler import Project, add_network

    p = Project(name="residual mlp")
    g = add_network(p, "net")
    prev = g.add("io.input", "x", shape=["N", 64])
    while len(g.net.nodes) < n_nodes:
        a = g.add("linear.linear", out_features=64)
        r = g.add("activation.relu")
        s = g.add("merge.add")
        g.connect(prev, a)
        g.connect(a, r)
        g.connect(r, s)
        g.connect(prev, s)
        prev = s
    out = g.add("io.output", "y")
    g.connect(prev, out)
    return p


def main() -> int:
    from PySide6.QtCore import QCoreApplication, QPointF, QSettings

    tmp = Path(tempfile.mkdtemp(prefix="bench_editor_"))
    os.environ["LAYERLOOM_DATA_DIR"] = str(tmp / "data")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "ini"))
    QCoreApplication.setOrganizationName("LayerloomBench")
    from builder.app import make_app

    app = make_app()
    from builder.commands import SetParamsCommand, push
    from builder.main_window import MainWindow
    from compiler import analyze
    from compiler.project import save

    project, what = expanded_resnet152()
    nodes = sum(len(n.nodes) for n in project.networks)
    edges = sum(len(n.edges) for n in project.networks)
    path = tmp / "big.loom"
    save(project, path)
    analyze(project)  # warm imports so the figures below are the editor's, not Python's

    window = MainWindow()
    window.inform = lambda title, text: print(f"{title}: {text}")
    window.resize(1400, 900)
    window.show()
    app.processEvents()

    t0 = time.perf_counter()
    assert window.open_path(path)
    window.view.viewport().repaint()
    open_s = time.perf_counter() - t0
    app.processEvents()
    assert len(window.scene.nodes) == nodes

    # Repaint per frame while dragging a node in the middle of the graph (at a readable zoom).
    scene, view = window.scene, window.view
    net = scene.graph.net
    mid = net.nodes[len(net.nodes) // 2].id
    item = scene.nodes[mid]
    view.resetTransform()
    view.centerOn(item)
    app.processEvents()
    frames = []
    start = item.pos()
    for i in range(120):
        t = time.perf_counter()
        item.setPos(start + QPointF(2.0 * (i % 30), 1.0 * (i % 7)))
        item.update_wires()  # what the scene's drag handler does per mouse move
        view.viewport().repaint()
        frames.append((time.perf_counter() - t) * 1000)
    # ...and zoomed out to the whole graph (the worst case: every item is visible).
    view.fit()
    app.processEvents()
    frames_all = []
    for i in range(30):
        t = time.perf_counter()
        item.setPos(start + QPointF(3.0 * i, 0))
        item.update_wires()
        view.viewport().repaint()
        frames_all.append((time.perf_counter() - t) * 1000)
    item.setPos(start)

    # Re-analysis after an edit: change a param through the undo stack, then analyse.
    doc = window.document
    doc.analyze_now()
    target = next(n for n in net.nodes if n.type == "linear.linear")
    edits = []
    views = []
    for i in range(10):
        push(doc, SetParamsCommand(doc, net.name, target.id, {"out_features": 900 + i}))
        t = time.perf_counter()
        doc.analyze_now()  # analysis + every view that listens (canvas, problems, inspector)
        views.append((time.perf_counter() - t) * 1000)
        edits.append(doc.last_analysis_ms)
    assert not doc.analysis.errors, [str(d) for d in doc.analysis.errors[:3]]

    def p95(xs):
        return sorted(xs)[int(0.95 * (len(xs) - 1))]

    print(f"graph: {what}: {nodes} nodes, {edges} wires")
    print(f"open + layout + first paint: {open_s * 1000:.0f} ms   (target ≤ 1000 ms)")
    print(f"repaint per frame while moving a node (100% zoom): median "
          f"{statistics.median(frames):.1f} ms, p95 {p95(frames):.1f} ms   (target ≤ 16 ms)")
    print(f"repaint per frame, whole graph in view: median {statistics.median(frames_all):.1f} ms, "
          f"p95 {p95(frames_all):.1f} ms")
    print("re-analysis after an edit (validation + shapes): median "
          f"{statistics.median(edits):.0f} ms,"
          f" max {max(edits):.0f} ms   (target ≤ 100 ms)")
    print(f"  ... including updating every view: median {statistics.median(views):.0f} ms")
    doc.undo_stack.setClean()
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
