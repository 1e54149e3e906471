"""What is known of a sampled architecture before any training: shapes, fit to the recipe,
params, FLOPs, optionally a measured forward latency, and whether the constraints hold.

A sample that fails here is *rejected*: no child process, no training; the reason names the node
(the compiler's diagnostic) or the constraint and what to change.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from compiler import Project, analyze, build, generate
from compiler.summary import example_inputs, human, summarize

from ..plan import check as plan_problems

#: Sizes of symbolic dims for the latency forward pass (one sample, as an app would infer).
LATENCY_SIZES = {"N": 1, "T": 32, "S": 32, "V": 34, "E": 156, "B": 1}


@dataclass
class Assessment:
    ok: bool
    reason: str | None = None
    params: int | None = None
    flops: int | None = None
    latency_ms: float | None = None


def assess(project: Project, *, max_params: int | None = None, max_flops: int | None = None,
           latency: bool = False) -> Assessment:
    """Analyse a resolved project the way a training run would, without training it."""
    analysis = analyze(project)
    if analysis.errors:
        first = analysis.errors[0]
        more = f" (and {len(analysis.errors) - 1} more)" if len(analysis.errors) > 1 else ""
        return Assessment(False, f"shape check failed: {first}{more}")
    problems = plan_problems(project)
    if problems:
        return Assessment(False, f"does not fit the recipe: {problems[0]}")
    built = build(generate(analysis))
    summaries = summarize(project, built, analysis)
    params = sum(s.params for s in summaries.values())
    flop_list = [s.flops for s in summaries.values()]
    flops = None if any(f is None for f in flop_list) else sum(f or 0 for f in flop_list)
    out = Assessment(True, None, params, flops)
    if max_params is not None and params > max_params:
        out.ok = False
        out.reason = (f"{human(params)} parameters ({params:,}) is over the limit of "
                      f"{human(max_params)}; narrow the domains or raise max params")
        return out
    if max_flops is not None and (flops is None or flops > max_flops):
        out.ok = False
        out.reason = ("FLOPs could not be counted, so the max FLOPs limit cannot be checked"
                      if flops is None else
                      f"{human(flops)} FLOPs is over the limit of {human(max_flops)}; narrow "
                      "the domains or raise max FLOPs")
        return out
    if latency:
        out.latency_ms = measure_latency(built, analysis)
    return out


def measure_latency(built, analysis, repeats: int = 7) -> float:
    """Median wall time (ms) of one forward pass of every network, batch 1, on this CPU."""
    models = []
    for name, res in analysis.networks.items():
        model = built.instantiate(name).eval()
        models.append((model, example_inputs(res, "cpu", LATENCY_SIZES)))
    times = []
    with torch.no_grad():
        for i in range(repeats + 2):
            t0 = time.perf_counter()
            for model, args in models:
                model(*args)
            if i >= 2:  # the first calls pay for allocation and lazy initialisation
                times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 4)
