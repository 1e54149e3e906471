"""Runner throughput with event streaming vs a bare hand-written loop, and the app-attached run
vs the CLI: same model, data, steps and torch threads.

    python benchmarks/bench_runner.py [--steps 1000] [--hidden 256] [--batch 128] [--threads 1]
        [--pairs 15] [--attached-pairs 5] [--part both|runner|attached|calls]
        [--bare-gather index|index_select]

Run it without ``nice``: both sides of a pair must get the priority a user's run gets.

Part 1 (target >= 0.99): the runner (``training.run``: events to events.jsonl, a callback and
TensorBoard files) against the loop anyone would write by hand (``bare``), both training the
same generated MLP on digits-flat with Adam, in this process. The runner is timed from its
``started`` event to its last train metric (building the model and the final evaluation are
left out, as the bare loop has neither); the bare loop from its first step to its last loss.
(The runner encodes its TensorBoard records in batches, every 5 s in a run, and at its end: a
run this short would encode them all after its last train metric, outside the window, so here
it flushes every ``FLUSH_IN_WINDOW`` seconds, ~3 times a run, and pays inside the window what a
long run pays: a loss a step, ~0.3 us each.) Each figure is the median of per-pair ratios
(runner / the bare run beside it, the order alternating pair by pair, so load that comes and
goes hurts both alike), with the quartiles and the extremes, by wall clock and by this
process's CPU time (the work done, which load on a shared machine hardly moves; the wall figure
is what a user sees and also catches waiting, on the GIL or the disk). Beside them, ``best``:
the fastest runner over the fastest bare run (load only ever slows a run, so the best of each
is the nearest to its cost on an idle machine). The engine gathers a batch with
``index_select``, faster than the ``x[idx]`` the bare loop writes
(benchmarks/bench_batching.py); ``--bare-gather index_select`` gives the bare loop the same
gather, so that the ratio is the bookkeeping alone.

Part 2 (target >= 0.97): the same project trained as the app trains it, a ``RunnerProcess``
child (the dashboard's class, followed from a Qt event loop polling events.jsonl), against
``layerloom train --quiet`` (the CLI, its own process), both with the same thread count (the
``--threads`` flag and OMP_NUM_THREADS alike); each is timed by its own events.jsonl (started ->
last train metric), pairs alternating. The CPU time of each whole child (start-up included) is
printed beside it.

``--part calls`` counts instead of timing: the Python-level calls (functions and builtins) a
step makes in each loop, and which calls the runner adds (a run of 150 steps less one of 50, so
set-up cancels out). A count does not move with the machine's load, so it shows a change in the
loop's bookkeeping that the timings' noise would hide.

The runner records as its defaults say: a train record every 10 steps (``log_every``) but at
most one per 0.1 s (``log_min_s``), so this MLP's ~1 ms steps make one every ~100 steps (before
that limit, every 10: a record costs ~0.15 ms, and 100 of them cost 1.5% of the run). ``--part
calls`` counts with the limit off (``log_min_s`` 0: the steps run slower under the profiler, so
the records would come at a rate of its making).

Enough steps that per-step overhead shows (the bookkeeping is paid every step and at each
record: 1000 steps, and 1% of ~1.5 s is 15 ms), and short pairs,
many of them: on a shared machine the load drifts within seconds, and the two runs of a pair
must see the same load.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import training  # noqa: E402
import training.tensorboard  # noqa: E402
from compiler import Project, add_network, build  # noqa: E402
from training.data import load  # noqa: E402

LOG_EVERY = 10  # the default: a train record every 10 steps (at most one per log_min_s)
#: the runner's settings beyond the defaults (``--part calls``: no time limit on records)
EXTRA: dict[str, Any] = {}
#: seconds between the runner's TensorBoard flushes here (a run's own: 5): inside the window
FLUSH_IN_WINDOW = 0.4
SEED = 0  # the runner's default seed: its initial weights and its batches
LAST: dict[str, float] = {}  # each side's last loss: equal when both trained the same numbers
#: how the bare loop gathers a batch: "index" (``x[idx]``, as people write it) or "index_select"
#: (as the engine does: the same rows, faster; the bookkeeping alone then makes the difference)
GATHER = {"how": "index"}


def project(hidden: int) -> Project:
    p = Project(name="bench")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 64]}, "x"), ("linear.linear", {"out_features": hidden}),
            ("activation.relu", {}), ("linear.linear", {"out_features": hidden}),
            ("activation.relu", {}), ("linear.linear", {"out_features": 10}),
            ("io.output", {}, "logits"))
    p.training.recipe, p.training.dataset = "classification", "digits-flat"
    return p


Timing = tuple[float, float]  # (samples/s by wall clock, samples/s by CPU time)


def bare(hidden: int, steps: int, batch: int) -> Timing:
    """The loop anyone would write by hand, on the runner's trajectory: the same initial weights
    and the same batches (a seeded permutation per epoch, as :class:`training.engine.Sampler`
    draws them), so both train the same numbers.

    Why the same batches: the speed of a step depends on the values it computes. Adam's first
    moment of a dead ReLU unit decays by 0.9 a step into the subnormal range (after 1,000 steps
    of this MLP, 5,220 of the second layer's 65,536), where the CPU's arithmetic is many times
    slower; two loops that draw different batches kill different units, and one ran up to 13%
    slower than the other for that alone (the runner "losing" to a loop with fewer subnormals).
    """
    torch.manual_seed(SEED)
    net = build(project(hidden)).instantiate("net")
    x, y = load("digits-flat").train
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n, spe, by_select = len(x), len(x) // batch, GATHER["how"] == "index_select"
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(steps):
        epoch, pos = divmod(step, spe)
        if pos == 0:
            g = torch.Generator().manual_seed(SEED * 1000003 + epoch)
            perm = torch.randperm(n, generator=g)
        idx = perm[pos * batch:(pos + 1) * batch]
        if by_select:
            loss = F.cross_entropy(net(x.index_select(0, idx)), y.index_select(0, idx))
        else:
            loss = F.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    LAST["bare"] = loss.item()
    return (steps * batch / (time.perf_counter() - t0),
            steps * batch / (time.process_time() - c0))


def runner(hidden: int, steps: int, batch: int) -> Timing:
    """The app's runner in this process: events to events.jsonl, TensorBoard and a callback."""
    marks: dict[str, tuple[float, float]] = {}

    def on_event(ev: dict) -> None:
        if ev["event"] == "started":
            marks["start"] = (time.perf_counter(), time.process_time())
        elif ev["event"] == "metric" and ev["split"] == "train":
            marks["end"] = (time.perf_counter(), time.process_time())
            LAST["runner"] = ev["losses"][-1]

    with tempfile.TemporaryDirectory() as d:
        ev = training.run(project(hidden), d, steps=steps, device="cpu", on_event=on_event,
                          hyper={"batch_size": batch, "eval_every": steps,
                                 "checkpoint_every": steps, "log_every": LOG_EVERY, **EXTRA})
    assert ev["event"] == "finished", ev
    (t0, c0), (t1, c1) = marks["start"], marks["end"]
    return steps * batch / (t1 - t0), steps * batch / (c1 - c0)


def span(run_dir: Path, batch: int) -> float:
    """samples/s of a finished run, from its events.jsonl: started -> last train metric."""
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    start = next(e["time"] for e in events if e["event"] == "started")
    train = [e for e in events if e["event"] == "metric" and e["split"] == "train"]
    if not train or events[-1]["event"] != "finished":
        raise SystemExit(f"the run in {run_dir} did not finish: {events[-1]}")
    return train[-1]["step"] * batch / (train[-1]["time"] - start)


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def attached(file: Path, run_dir: Path, steps: int, threads: int) -> float:
    """The app's way: a RunnerProcess child, followed from a Qt event loop (the dashboard's
    frame: 250 ms). Returns the child's CPU seconds."""
    from PySide6.QtCore import QCoreApplication

    from builder.dashboard.panel import FRAME_MS
    from builder.dashboard.process import RunnerProcess

    app = QCoreApplication.instance() or QCoreApplication([])
    c0 = _child_cpu()
    proc = RunnerProcess(file, run_dir, steps=steps, threads=threads, poll_ms=FRAME_MS)
    proc.ended.connect(lambda _ev: app.quit())
    app.exec()
    proc.proc.waitForFinished(30_000)
    return _child_cpu() - c0


def cli(file: Path, run_dir: Path, steps: int, threads: int) -> float:
    """``layerloom train --quiet``, its own process, the threads pinned the same way (the
    environment: the CLI has no thread flag). Returns the child's CPU seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    c0 = _child_cpu()
    subprocess.run([sys.executable, "-m", "builder.cli", "train", str(file), "--steps",
                    str(steps), "--quiet", "--out", str(run_dir)], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    return _child_cpu() - c0


def spread(xs: list[float]) -> dict:
    """Median, quartiles and extremes of a list of ratios."""
    xs = sorted(xs)

    def q(f: float) -> float:
        return round(xs[min(len(xs) - 1, int(f * len(xs)))], 3)

    return {"median": q(0.5), "q1": q(0.25), "q3": q(0.75), "min": round(xs[0], 3),
            "max": round(xs[-1], 3), "n": len(xs)}


def alternate(pairs: int, first: Callable, second: Callable) -> list[tuple]:
    """``pairs`` pairs of (first(), second()), run in alternating order."""
    out = []
    for i in range(pairs):
        if i % 2:
            b = second()
            a = first()
        else:
            a = first()
            b = second()
        out.append((a, b))
    return out


def part_runner(a: argparse.Namespace) -> dict:
    training.tensorboard.FLUSH_SECS = FLUSH_IN_WINDOW
    bare(a.hidden, 100, a.batch)  # warm-up: kernels, allocator, the data in the cache
    runner(a.hidden, 100, a.batch)
    pairs = alternate(a.pairs, lambda: bare(a.hidden, a.steps, a.batch),
                      lambda: runner(a.hidden, a.steps, a.batch))
    mid = len(pairs) // 2
    return {"last_loss": {k: round(v, 6) for k, v in LAST.items()},
            "bare_samples_per_s": round(sorted(b[0] for b, _ in pairs)[mid]),
            "runner_samples_per_s": round(sorted(r[0] for _, r in pairs)[mid]),
            "runner_vs_bare_wall": spread([r[0] / b[0] for b, r in pairs]),
            "runner_vs_bare_cpu": spread([r[1] / b[1] for b, r in pairs]),
            "runner_vs_bare_best": {
                "wall": round(max(r[0] for _, r in pairs) / max(b[0] for b, _ in pairs), 3),
                "cpu": round(max(r[1] for _, r in pairs) / max(b[1] for b, _ in pairs), 3)}}


def part_attached(a: argparse.Namespace) -> dict:
    from compiler import save

    ratios, cpu = [], []
    with tempfile.TemporaryDirectory() as d:
        p = project(a.hidden)
        p.training.hyper.update({"batch_size": a.batch, "eval_every": a.steps,
                                 "checkpoint_every": a.steps, "log_every": LOG_EVERY})
        file = Path(d) / "bench.loom"
        save(p, file)
        for i in range(a.attached_pairs):
            app_dir, cli_dir = Path(d) / f"app{i}", Path(d) / f"cli{i}"
            app_dir.mkdir()
            if i % 2 == 0:  # alternating: who goes first
                app_cpu = attached(file, app_dir, a.steps, a.threads)
                cli_cpu = cli(file, cli_dir, a.steps, a.threads)
            else:
                cli_cpu = cli(file, cli_dir, a.steps, a.threads)
                app_cpu = attached(file, app_dir, a.steps, a.threads)
            ratios.append(span(app_dir, a.batch) / span(cli_dir, a.batch))
            cpu.append((app_cpu, cli_cpu))
    return {"app_attached_vs_cli": spread(ratios),
            "child_cpu_s_app_cli": [[round(x, 2), round(y, 2)] for x, y in cpu]}


def calls_per_step(run: Callable[[int, int, int], Timing], hidden: int, batch: int,
                   steps: tuple[int, int] = (50, 150)) -> collections.Counter:
    """Python-level calls (functions and builtins, by file and name) per training step: a run
    of ``steps[1]`` steps less one of ``steps[0]``, over the steps between, so set-up, the
    final evaluation and the warm-up cancel out. Counted, not timed: the same on a loaded
    machine as on an idle one."""
    counts = []
    for n in steps:
        c: collections.Counter = collections.Counter()

        def seen(frame: Any, event: str, arg: Any, c: collections.Counter = c) -> None:
            if event == "call":
                c[f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}"] += 1
            elif event == "c_call":
                c[f"builtin:{getattr(arg, '__qualname__', arg)}"] += 1

        sys.setprofile(seen)
        try:
            run(hidden, n, batch)
        finally:
            sys.setprofile(None)
        counts.append(c)
    per = collections.Counter()
    for k in counts[0].keys() | counts[1].keys():
        per[k] = (counts[1][k] - counts[0][k]) / (steps[1] - steps[0])
    return per


def part_calls(a: argparse.Namespace) -> dict:
    """The runner's bookkeeping as work rather than time: the calls it makes per step beyond
    the bare loop's, the most frequent first (a train record every 10 steps counts a tenth)."""
    EXTRA["log_min_s"] = 0  # records at the step cadence, not the profiled steps' time
    bare(a.hidden, 20, a.batch)
    runner(a.hidden, 20, a.batch)
    b, r = calls_per_step(bare, a.hidden, a.batch), calls_per_step(runner, a.hidden, a.batch)
    extra = {k: round(r[k] - b[k], 2) for k in r.keys() | b.keys() if abs(r[k] - b[k]) >= 0.1}
    return {"python_calls_per_step": {"bare": round(sum(b.values()), 1),
                                      "runner": round(sum(r.values()), 1)},
            "runner_extra_calls_per_step": dict(sorted(extra.items(), key=lambda kv: -kv[1])[:25])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="torch threads, pinned for all")
    ap.add_argument("--pairs", type=int, default=15, help="runner/bare pairs (part 1)")
    ap.add_argument("--attached-pairs", type=int, default=5, help="app/CLI pairs (part 2)")
    ap.add_argument("--part", choices=["both", "runner", "attached", "calls"], default="both")
    ap.add_argument("--bare-gather", choices=["index", "index_select"], default="index",
                    help="the bare loop's batch gather: x[idx], or index_select as the engine")
    a = ap.parse_args()
    GATHER["how"] = a.bare_gather
    torch.set_num_threads(a.threads)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(a.threads)
    out: dict = {"steps": a.steps, "batch": a.batch, "bare_gather": a.bare_gather,
                 "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                 "load_1min_before": round(os.getloadavg()[0], 1)}
    if a.part in ("both", "runner"):
        out.update(part_runner(a))
    if a.part in ("both", "attached"):
        out.update(part_attached(a))
    if a.part == "calls":
        out.update(part_calls(a))
    out["load_1min_after"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
