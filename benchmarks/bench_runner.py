"""Runner throughput with event streaming vs a bare hand-written loop, and the app-attached run
vs the CLI: same model, data, steps, torch threads pinned.

    python benchmarks/bench_runner.py [--steps 600] [--hidden 256] [--batch 128] [--threads 1]
        [--repeats 7] [--attached-repeats 3]

Both train the same generated MLP on digits-flat with Adam. The runner's time is measured from its
'started' event to its last training metric (so building the model and the final evaluation are
excluded, as the bare loop has neither); it streams every event to a JSON-lines file and a callback.
Figure: the median of per-pair ratios (runner / the bare run beside it), pairs alternating, with
the spread (min, max). Target >= 0.99.

The attached part trains the same project as the app does, a ``RunnerProcess`` child (the
dashboard's, in a Qt event loop polling events.jsonl), against ``layerloom train --quiet`` (the
CLI, its own process), both with the same thread count; each is timed from its events.jsonl.
Target >= 0.97.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import training  # noqa: E402
from compiler import Project, add_network, build  # noqa: E402
from training.data import load  # noqa: E402


def project(hidden: int) -> Project:
    p = Project(name="bench")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 64]}, "x"), ("linear.linear", {"out_features": hidden}),
            ("activation.relu", {}), ("linear.linear", {"out_features": hidden}),
            ("activation.relu", {}), ("linear.linear", {"out_features": 10}),
            ("io.output", {}, "logits"))
    p.training.recipe, p.training.dataset = "classification", "digits-flat"
    return p


def bare(hidden: int, steps: int, batch: int) -> float:
    """samples/s of the loop anyone would write by hand."""
    torch.manual_seed(0)
    net = build(project(hidden)).instantiate("net")
    x, y = load("digits-flat").train
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n, spe = len(x), len(x) // batch
    t0 = time.perf_counter()
    perm = torch.randperm(n)
    for step in range(steps):
        if step % spe == 0:
            perm = torch.randperm(n)
        idx = perm[(step % spe) * batch:(step % spe + 1) * batch]
        loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    loss.item()
    return steps * batch / (time.perf_counter() - t0)


LOG_EVERY = 10


def runner(hidden: int, steps: int, batch: int) -> float:
    marks: dict[str, float] = {}

    def on_event(ev: dict) -> None:
        if ev["event"] == "started":
            marks["start"] = time.perf_counter()
        elif ev["event"] == "metric" and ev["split"] == "train":
            marks["end"] = time.perf_counter()
        sys.stdout.flush()

    with tempfile.TemporaryDirectory() as d:
        ev = training.run(project(hidden), d, steps=steps, device="cpu", on_event=on_event,
                          hyper={"batch_size": batch, "eval_every": steps,
                                 "checkpoint_every": steps, "log_every": LOG_EVERY})
    assert ev["event"] == "finished", ev
    return steps * batch / (marks["end"] - marks["start"])


def span(run_dir: Path, batch: int) -> float:
    """samples/s of a finished run, from its events.jsonl: started -> last train metric."""
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    start = next(e["time"] for e in events if e["event"] == "started")
    train = [e for e in events if e["event"] == "metric" and e["split"] == "train"]
    if not train or events[-1]["event"] != "finished":
        raise SystemExit(f"the run in {run_dir} did not finish: {events[-1]}")
    return train[-1]["step"] * batch / (train[-1]["time"] - start)


def attached(file: Path, run_dir: Path, steps: int, threads: int) -> None:
    """The app's way: a RunnerProcess child, followed from a Qt event loop."""
    from PySide6.QtCore import QCoreApplication

    from builder.dashboard.process import RunnerProcess

    app = QCoreApplication.instance() or QCoreApplication([])
    proc = RunnerProcess(file, run_dir, steps=steps, threads=threads, poll_ms=200)
    proc.ended.connect(lambda _ev: app.quit())
    app.exec()


def cli(file: Path, run_dir: Path, steps: int, threads: int) -> None:
    import os
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run([sys.executable, "-m", "builder.cli", "train", str(file), "--steps",
                    str(steps), "--quiet", "--out", str(run_dir)], cwd=ROOT, env=env,
                   check=True, capture_output=True)


def spread(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"median": round(xs[len(xs) // 2], 3), "min": round(xs[0], 3),
            "max": round(xs[-1], 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="torch threads, pinned for both")
    ap.add_argument("--repeats", type=int, default=7, help="alternating pairs")
    ap.add_argument("--attached-repeats", type=int, default=3, help="0: skip the app part")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    bare(a.hidden, 50, a.batch)  # warm-up
    pairs = []
    for i in range(a.repeats):  # alternate who goes first, so a busy machine hurts both alike
        if i % 2:
            r, b = runner(a.hidden, a.steps, a.batch), bare(a.hidden, a.steps, a.batch)
        else:
            b, r = bare(a.hidden, a.steps, a.batch), runner(a.hidden, a.steps, a.batch)
        pairs.append((b, r))
    out = {"bare_samples_per_s": round(sorted(b for b, _ in pairs)[len(pairs) // 2]),
           "runner_samples_per_s": round(sorted(r for _, r in pairs)[len(pairs) // 2]),
           "runner_vs_bare": spread([r / b for b, r in pairs]),
           "steps": a.steps, "batch": a.batch, "threads": torch.get_num_threads()}
    if a.attached_repeats:
        from compiler import save

        ratios = []
        with tempfile.TemporaryDirectory() as d:
            p = project(a.hidden)
            p.training.hyper.update({"batch_size": a.batch, "eval_every": a.steps,
                                     "checkpoint_every": a.steps, "log_every": LOG_EVERY})
            file = Path(d) / "bench.loom"
            save(p, file)
            for i in range(a.attached_repeats):
                app_dir, cli_dir = Path(d) / f"app{i}", Path(d) / f"cli{i}"
                app_dir.mkdir()
                first, second = (attached, cli) if i % 2 == 0 else (cli, attached)
                for fn in (first, second):
                    fn(file, app_dir if fn is attached else cli_dir, a.steps, a.threads)
                ratios.append(span(app_dir, a.batch) / span(cli_dir, a.batch))
        out["app_attached_vs_cli"] = spread(ratios)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
