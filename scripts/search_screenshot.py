"""Make docs/search.png: the Search dock of the real window during a search, offscreen.

Run ``layerloom search nas-digits --events --trials 8 --steps 60 --out /tmp/s > events.jsonl``
(a real search; keep stdin open, e.g. ``sleep 900 | layerloom search ...``), then
``.venv/bin/python scripts/search_screenshot.py events.jsonl``: the window opens the same template
and its panel is fed that search's events, up to the last trial's start and the middle of its
curve, so the picture shows a search in progress (scatter, front, curves and table). The panel
reads events exactly as it does from its child process (``SearchPanel.on_event``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("events", help="a JSON-lines file written by `layerloom search --events`")
    ap.add_argument("--template", default="nas-digits")
    ap.add_argument("--out", default=str(ROOT / "docs" / "search.png"))
    ap.add_argument("--size", default="1500x760")
    ap.add_argument("--steps", type=int, default=60, help="the search's --steps (shown)")
    args = ap.parse_args()
    os.environ.setdefault("LAYERLOOM_DATA_DIR", tempfile.mkdtemp(prefix="layerloom-shot-"))
    events = [json.loads(line) for line in Path(args.events).read_text().splitlines()
              if line.strip()]
    starts = [i for i, ev in enumerate(events) if ev["event"] == "trial_started"]
    last = starts[-1]
    metrics = [i for i, ev in enumerate(events) if i > last and ev["event"] == "trial_metric"]
    cut = metrics[len(metrics) // 2] + 1 if metrics else last + 1

    import templates
    from builder.app import make_app
    from builder.file_actions import lay_out_all
    from builder.main_window import MainWindow

    app = make_app()
    project = templates.build(args.template)
    lay_out_all(project)
    w = MainWindow(project)
    w.ask = lambda _t, _x: True
    w.resize(1500, 950)
    w.show()
    panel = w.search_panel
    started = next(ev for ev in events if ev["event"] == "search_started")
    panel.strategy.setCurrentIndex(panel.strategy.findData(started["strategy"]))
    panel.trials.setValue(int(started["trials_planned"]))
    panel.steps.setValue(args.steps)
    for ev in events[:cut]:
        panel.on_event(ev)
        app.processEvents()
    panel.stop_btn.setEnabled(True)  # as during a live search
    panel.start_btn.setEnabled(False)
    dock = w.docks["Search"]
    dock.setFloating(True)
    width, height = (int(v) for v in args.size.split("x"))
    dock.resize(width, height)
    dock.show()
    for _ in range(10):
        app.processEvents()
    dock.grab().save(args.out)
    print(f"wrote {args.out}")
    w.document.undo_stack.setClean()
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
