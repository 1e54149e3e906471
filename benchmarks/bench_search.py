"""Architecture search on the digits space: each strategy with the same budget and seeds.

Prints, per strategy (averaged over the seeds): the best validation accuracy, the hypervolume of
the accuracy-vs-parameters front and its ratio to random search's. Parameters span an order of
magnitude or two, so the cost axis is log-scaled and normalised: 0 for the smallest architecture
of the space, 1 for the largest (the reference point, with accuracy 0); the area is in [0, 1].
And whether the found fronts dominate the hand-made ``mlp-digits`` template (an architecture at
least as accurate with no more parameters), trained with the same steps and seed.

Run: ``python benchmarks/bench_search.py [--trials 10] [--steps 100] [--seeds 3]``. Trials train
in this process (the runner's ``run``), one at a time, without pruning, so the fronts compare
like with like. Targets: evolution and rl each reach a hypervolume ratio >= 1.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import templates
from training import runner
from training.search.evaluate import assess
from training.search.samplers import hypervolume, pareto_front
from training.search.space import decisions, resolve
from training.search.study import Search, SearchOptions


def extreme_params(project, last: bool) -> int:
    """Parameters of the smallest or largest architecture of the space (every decision at its
    first or last value; true of the width and depth lists here)."""
    pick = {d.label: (d.values() or [None])[-1 if last else 0] for d in decisions(project)}
    return assess(resolve(project, pick)).params or 1


def log_cost(params: int, low: int, high: int) -> float:
    return (math.log(params) - math.log(low)) / (math.log(high) - math.log(low))


def hand_made(steps: int, folder: Path) -> tuple[float, int]:
    project = templates.build("mlp-digits")
    end = runner.run(project, folder / "hand", steps=steps)
    return float(end["metrics"]["accuracy"]), int(assess(project).params or 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--strategies", default="random,evolution,rl,tpe,nsga2")
    args = ap.parse_args()
    base = templates.build("nas-digits")
    low, high = extreme_params(base, last=False), extreme_params(base, last=True)
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    hand_acc, hand_params = hand_made(args.steps, work)
    rows: dict[str, dict[str, list[float]]] = {}
    for strategy in args.strategies.split(","):
        stats: dict[str, list[float]] = {"best": [], "hv": [], "dominates": [], "seconds": []}
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            opts = SearchOptions.of(base, strategy=strategy, trials=args.trials,
                                    steps=args.steps, seed=seed, inline=True, prune=False,
                                    study_dir=work / f"{strategy}-{seed}")
            result = Search(base, opts).run()
            done = [t for t in result.trials if t["state"] == "complete"]
            points = [(t["metric"], log_cost(t["params"], low, high)) for t in done]
            front = [t for t in done if t["number"] in pareto_front(
                [(t["number"], t["metric"], t["params"]) for t in done], True)]
            stats["best"].append(max(m for m, _ in points))
            stats["hv"].append(hypervolume(points, ref_cost=1.0))
            stats["dominates"].append(float(any(t["metric"] >= hand_acc
                                                and t["params"] <= hand_params for t in front)))
            stats["seconds"].append(time.perf_counter() - t0)
        rows[strategy] = stats
    random_hv = statistics.mean(rows["random"]["hv"]) if "random" in rows else None
    print(f"digits space, {args.trials} trials x {args.steps} steps, {args.seeds} seeds; "
          f"hand-made mlp-digits: accuracy {hand_acc:.4f} with {hand_params:,} params")
    print(f"{'strategy':<10} {'best acc':>9} {'HV':>7} {'HV/random':>9} {'dominates':>9} "
          f"{'s/search':>8}")
    out = {}
    for strategy, st in rows.items():
        hv = statistics.mean(st["hv"])
        ratio = hv / random_hv if random_hv else float("nan")
        out[strategy] = {"best": statistics.mean(st["best"]), "hv": hv, "hv_ratio": ratio,
                         "dominates_hand_made": statistics.mean(st["dominates"]),
                         "seconds": statistics.mean(st["seconds"])}
        print(f"{strategy:<10} {out[strategy]['best']:>9.4f} {hv:>7.4f} {ratio:>9.3f} "
              f"{out[strategy]['dominates_hand_made']:>9.2f} {out[strategy]['seconds']:>8.1f}")
    print(json.dumps({"hand_made": {"accuracy": hand_acc, "params": hand_params}, **out}))


if __name__ == "__main__":
    main()
