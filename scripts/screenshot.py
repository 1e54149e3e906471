"""Make docs/screenshot.png (the editor) or docs/dashboard.png (a live run) from the real window,
offscreen.

Run: ``.venv/bin/python scripts/screenshot.py [--template NAME] [--out PATH]`` for the editor, and
``.venv/bin/python scripts/screenshot.py --block BasicBlock --size 1800x1050`` makes
docs/screenshot.png (ResNet-18's residual block, its shortcut visible), and
``.venv/bin/python scripts/screenshot.py --template mlp-digits --train 20 --out docs/dashboard.png``
for the training panel after 20 s of a real run. docs/dashboard.png is
``--template resnet18-small --block BasicBlock --compare 8 --train 170 --size 1800x1100``: a
finished 8-step run, then a second with another learning rate, the two overlaid. Settings,
recovery files and runs go to a temp folder, so the user's own are never touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default="resnet18-small")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--block", default="",
                    help="open this block (e.g. BasicBlock: ResNet's residual, with its shortcut)")
    ap.add_argument("--train", type=float, default=0.0,
                    help="start a run (F5) and shoot the training panel after this many seconds")
    ap.add_argument("--steps", type=int, default=100_000, help="the run's length (with --train)")
    ap.add_argument("--compare", type=int, default=0,
                    help="first train a run of this many steps to its end, then the --train run "
                         "with another learning rate, both overlaid (the runs' names and legend)")
    args = ap.parse_args()

    from PySide6.QtCore import QCoreApplication, QSettings

    tmp = Path(tempfile.mkdtemp(prefix="layerloom_shot_"))
    os.environ["LAYERLOOM_DATA_DIR"] = str(tmp / "data")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "ini"))
    QCoreApplication.setOrganizationName("LayerloomScreenshot")
    from builder.app import make_app

    app = make_app()
    from builder.main_window import MainWindow, first_template

    w = MainWindow()
    w.inform = lambda title, text: print(f"{title}: {text}", file=sys.stderr)
    width, height = (int(v) for v in args.size.split("x"))
    w.resize(width, height)
    w.show()
    app.processEvents()
    name = args.template
    if not w.open_template(name):
        name = first_template()
        if name is None or not w.open_template(name):
            print("no template could be opened", file=sys.stderr)
            return 1
    doc = w.document
    doc.analyze_now()
    if args.block:
        w.open_block(args.block)
    # Select the first block node (or the first node with params) so the inspector has content.
    net = w.scene.graph.net
    pick = next((n for n in net.nodes if n.type == "block.block"),
                next((n for n in net.nodes if n.params), net.nodes[0]))
    w.scene.select([pick.id])
    w.docks["Summary"].raise_()
    w.view.fit(readable=True)
    if args.train:
        doc.project.training.hyper = {**doc.project.training.hyper, "steps": args.steps,
                                      "eval_every": 100, "log_every": 10}
        doc.save(tmp / f"{name}.loom")  # its runs go beside it, in the temp folder
        if args.compare:
            doc.project.training.hyper = {**doc.project.training.hyper, "steps": args.compare}
            w.training.load_settings()
            w.training.start_action.trigger()
            deadline = time.time() + 300
            while w.training.running() and time.time() < deadline:
                app.processEvents()
                time.sleep(0.02)
            lr = float(doc.project.training.hyper.get("lr") or 1e-3)
            doc.project.training.hyper = {**doc.project.training.hyper, "steps": args.steps,
                                          "lr": lr * 3}
        w.training.load_settings()
        w.training.start_action.trigger()
        end = time.time() + args.train
        while time.time() < end:
            app.processEvents()
            time.sleep(0.02)
        w.training.tabs.setCurrentIndex(0)
        if args.compare:
            w.training.select_runs(list(w.training.runs))
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
    deadline = time.time() + 60
    while (doc.figures_pending or not doc.summaries()) and time.time() < deadline:
        app.processEvents()
        time.sleep(0.05)
    for _ in range(10):
        app.processEvents()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not w.grab().save(str(out)):
        print(f"could not write {out}", file=sys.stderr)
        return 1
    print(out)
    doc.undo_stack.setClean()
    w.ask = lambda title, text: True  # stop a live run without a dialog
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
