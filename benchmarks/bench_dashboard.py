"""Dashboard cost while training: UI event-loop latency and throughput with the GUI attached.

Runs the same short mlp-digits training (CPU) from the CLI runner and from the Train panel,
alternating, and prints:
  * UI latency: how late a 10 ms QTimer probe fires in the GUI process during the run
    (max and 99th percentile; target <= 30 ms),
  * throughput: train samples/s from the runner's own records, GUI / CLI (target >= 0.97).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_dashboard.py --steps 3000 --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _throughput(run_dir: Path) -> float:
    recs = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    batch = next(r for r in recs if r.get("event") == "started")["config"]["hyper"]["batch_size"]
    train = [r for r in recs if r.get("event") == "metric" and r.get("split") == "train"]
    first, last = train[1], train[-1]  # from the 2nd record: start-up is not throughput
    return (last["step"] - first["step"]) * batch / (last["time"] - first["time"])


def cli_run(project_file: Path, run_dir: Path) -> float:
    subprocess.run([sys.executable, "-m", "training.runner", "--project", str(project_file),
                    "--run-dir", str(run_dir)], check=True, stdout=subprocess.DEVNULL,
                   cwd=Path(__file__).resolve().parents[1])
    return _throughput(run_dir)


def gui_run(app, project, project_file: Path, probe_ms: int = 10,
            shown: bool = True) -> tuple[float, list[float]]:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    from builder.dashboard import TrainingPanel

    panel = TrainingPanel(lambda: project, lambda: project_file)
    panel.resize(1200, 800)
    if shown:
        panel.show()
    lateness: list[tuple[float, float]] = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]

    def probe() -> None:
        now = clock.nsecsElapsed()
        lateness.append((max(0.0, (now - last[0]) / 1e6 - probe_ms), now / 1e9))
        last[0] = now

    timer = QTimer()
    timer.setInterval(probe_ms)
    timer.timeout.connect(probe)
    loop = QEventLoop()
    panel.run_finished.connect(lambda *_: loop.quit())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    panel.start()
    if probe_ms:
        timer.start()
    loop.exec()
    timer.stop()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"  GUI process CPU {cpu:.2f} s over {wall:.1f} s ({100 * cpu / wall:.0f}% of a core)")
    run_dir = panel.current.run_dir
    panel.close()
    panel.deleteLater()
    app.processEvents()
    worst = sorted(lateness[5:], reverse=True)[:3]
    print("  worst probes (ms late @ s into the run):",
          ", ".join(f"{ms:.0f} @ {at:.1f}" for ms, at in worst))
    return _throughput(run_dir), [ms for ms, _ in lateness[5:]]  # skip widget start-up


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--probe-ms", type=int, default=10,
                    help="probe interval; 0 measures throughput without the probe's wake-ups")
    ap.add_argument("--hidden", action="store_true",
                    help="keep the panel hidden (isolates the cost of drawing it)")
    args = ap.parse_args()
    from PySide6.QtWidgets import QApplication

    import templates
    from compiler.project import save

    app = QApplication.instance() or QApplication([])
    tmp = Path(tempfile.mkdtemp(prefix="bench_dash_"))
    project = templates.build("mlp-digits")
    project.training.hyper = {"steps": args.steps, "log_every": 10, "eval_every": 1000,
                              "device": "cpu"}
    pfile = tmp / "bench.loom"
    save(project, pfile)
    cli, gui, lat = [], [], []
    for i in range(args.reps):
        cli.append(cli_run(pfile, tmp / f"cli{i}"))
        g, late = gui_run(app, project, pfile, args.probe_ms, not args.hidden)
        gui.append(g)
        lat += late
    lat = sorted(lat) or [0.0]
    p99 = lat[int(0.99 * (len(lat) - 1))]
    ratio = statistics.median(gui) / statistics.median(cli)
    print(f"steps per run {args.steps}, reps {args.reps}, device cpu, "
          f"load avg {os.getloadavg()[0]:.1f}")
    print(f"CLI throughput  {statistics.median(cli):10.0f} samples/s  {[round(x) for x in cli]}")
    print(f"GUI throughput  {statistics.median(gui):10.0f} samples/s  {[round(x) for x in gui]}")
    print(f"GUI / CLI ratio {ratio:.3f}   (target >= 0.97)")
    print(f"UI latency      p50 {lat[len(lat) // 2]:.1f} ms  p99 {p99:.1f} ms  "
          f"max {lat[-1]:.1f} ms over {len(lat)} probes   (target <= 30 ms)")


if __name__ == "__main__":
    t = time.time()
    main()
    print(f"bench took {time.time() - t:.0f}s")
