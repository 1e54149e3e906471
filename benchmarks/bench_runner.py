"""Runner throughput with event streaming vs a bare hand-written loop: same model, data, steps.

    python benchmarks/bench_runner.py [--steps 600] [--hidden 256] [--batch 128]

Both train the same generated MLP on digits-flat with Adam. The runner's time is measured from its
'started' event to its last training metric (so building the model and the final evaluation are
excluded, as the bare loop has neither); it streams every event to a JSON-lines file and a callback.
Prints the median samples/s of each over alternating repeats and their ratio (target >= 0.97).
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="alternating pairs; medians compared")
    a = ap.parse_args()
    bare(a.hidden, 50, a.batch)  # warm-up
    ap_ = [(bare(a.hidden, a.steps, a.batch), runner(a.hidden, a.steps, a.batch))
           for _ in range(a.repeats)]  # alternate, so a busy machine hurts both alike
    b = sorted(x for x, _ in ap_)[len(ap_) // 2]
    r = sorted(y for _, y in ap_)[len(ap_) // 2]
    pairs = sorted(y / x for x, y in ap_)  # each runner run against the bare run beside it
    print(json.dumps({"bare_samples_per_s": round(b), "runner_samples_per_s": round(r),
                      "ratio": round(r / b, 3), "pair_ratios": [round(q, 3) for q in pairs],
                      "steps": a.steps, "batch": a.batch, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
