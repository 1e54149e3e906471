"""The engine's batch gather (``Data.batcher``: ``index_select``) vs the indexing a hand-written
loop uses (``x[idx]``), on the CPU, for the shapes of the shipped datasets' batches.

    python benchmarks/bench_batching.py [--rounds 30] [--threads 1]

Both gather the same sampled rows (checked equal first); each round times a few hundred gathers
of each, the order alternating round by round, and the figure is the median of the per-round
ratios (engine / hand-written) with the quartiles. Why it matters: at a millisecond a step (the
digits MLP) the gather is 0.5-1.5% of the step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from training.data.common import Data  # noqa: E402

#: name -> (the rows' tensors, batch size): digits-flat, a CIFAR-sized image set, token windows
CASES = {
    "digits-flat [128, 64] + labels": (lambda: (torch.randn(1437, 64),
                                                torch.randint(0, 10, (1437,))), 128),
    "images [128, 3, 32, 32] + labels": (lambda: (torch.randn(5000, 3, 32, 32),
                                                  torch.randint(0, 10, (5000,))), 128),
    "tokens [64, 129], a sliced view": (lambda: (torch.randint(0, 99, (5000, 257))[:, :129],),
                                        64),
}


def per_gather(fn, idx: torch.Tensor, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn(idx)
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = {}
    for name, (make, batch) in CASES.items():
        part = make()
        engine = Data(part, part, {}).batcher("train", torch.device("cpu"))

        def by_hand(idx: torch.Tensor, part: tuple = part) -> tuple:
            return tuple(t[idx] for t in part)

        idx = torch.randperm(len(part[0]))[:batch]
        assert all(torch.equal(e, h) for e, h in zip(engine(idx), by_hand(idx), strict=True))
        n = 300
        ratios, us = [], {"engine": [], "hand": []}
        for r in range(a.rounds):
            idx = torch.randperm(len(part[0]))[:batch]
            pair = [("engine", engine), ("hand", by_hand)]
            times = dict((k, per_gather(f, idx, n)) for k, f in (pair if r % 2 else pair[::-1]))
            ratios.append(times["engine"] / times["hand"])
            for k, v in times.items():
                us[k].append(v * 1e6)
        q = statistics.quantiles(ratios, n=4)
        out[name] = {"engine_us": round(statistics.median(us["engine"]), 2),
                     "hand_us": round(statistics.median(us["hand"]), 2),
                     "engine_vs_hand_time": {"median": round(statistics.median(ratios), 3),
                                             "q1": round(q[0], 3), "q3": round(q[2], 3)}}
    print(json.dumps({"threads": a.threads, "rounds": a.rounds, **out}, indent=1))


if __name__ == "__main__":
    main()
