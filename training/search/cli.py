"""``layerloom search FILE|TEMPLATE [--strategy ...] [--trials N] [--steps N] [--objective ...]
[--workers K] [--storage URL] [--out DIR]``: the app's search, headless.

Prints a progress bar, then the trials table and the Pareto front, and writes the best
architecture (``best.loom``) and the whole front (``front/trial-N.loom``) into the study folder.
Exit 0 when at least one trial completed, 1 when none did, 2 for bad usage. ``--json`` prints one
summary object; ``--events`` prints the search's JSON-lines events (what the app reads) and takes
``{"command": "stop"}`` (or ``stop``) on stdin, stopping also when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from compiler.project import EXTENSION, Project, ProjectLoadError, save
from compiler.summary import human

from ..cli import resolve_project
from .samplers import STRATEGIES
from .space import resolve
from .study import OBJECTIVES, Search, SearchError, SearchOptions, SearchResult, study_dir_for
from .trial import warm_up


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="layerloom search", description=__doc__.split("\n\n")[0])
    ap.add_argument("target", help="a .loom project with search choices, or a search template "
                                   "(nas-digits, nas-shapes)")
    ap.add_argument("--strategy", choices=STRATEGIES, help="evolution (aging), rl (REINFORCE "
                    "controller), tpe, random, or nsga2 (metric and cost as two objectives)")
    ap.add_argument("--trials", type=int, help="total trials of the study (resume counts the "
                                               "finished ones)")
    ap.add_argument("--steps", type=int, help="training steps per trial")
    ap.add_argument("--objective", choices=OBJECTIVES, help="the cost against the metric")
    ap.add_argument("--workers", type=int, default=1, help="trials at once on this machine")
    ap.add_argument("--storage", help="an Optuna storage URL (e.g. postgresql://host/db) shared "
                    "by several machines; default: SQLite in the study folder")
    ap.add_argument("--study-name", help="the study's name in the storage (default layerloom)")
    ap.add_argument("--out", help="the study folder (default: <project>.search beside it)")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--max-params", type=int, help="reject larger architectures before training")
    ap.add_argument("--max-flops", type=int, help="reject costlier architectures before training")
    ap.add_argument("--cost-weight", type=float, help="w in metric × cost^-w, the reward of "
                    "evolution and rl (default 0.07, as MnasNet; 0: the metric alone)")
    ap.add_argument("--no-prune", action="store_true", help="train every trial to its budget")
    ap.add_argument("--time-limit", type=float, help="seconds after which no trial starts")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    ap.add_argument("--inline", action="store_true", help="train in this process, not a child")
    ap.add_argument("--json", action="store_true", help="print one JSON summary")
    ap.add_argument("--events", action="store_true", help="print JSON-lines events (the app)")
    return ap


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    try:
        project = resolve_project(args.target)
    except ProjectLoadError as err:
        return _usage(args, str(err))
    file = Path(args.target) if args.target.endswith(EXTENSION) else None
    options = SearchOptions.of(
        project, strategy=args.strategy, trials=args.trials, steps=args.steps,
        objective=args.objective, workers=args.workers, storage=args.storage,
        study_name=args.study_name, seed=args.seed, max_params=args.max_params,
        max_flops=args.max_flops, cost_weight=args.cost_weight, time_limit_s=args.time_limit,
        device=args.device, study_dir=Path(args.out) if args.out else None)
    options.study_dir = options.study_dir or study_dir_for(file, project)
    options.prune = not args.no_prune
    options.inline = args.inline
    if options.trials < 1 or (options.steps is not None and options.steps < 1) or \
            options.workers < 1:
        return _usage(args, "--trials, --steps and --workers must be at least 1")
    view = EventPrinter() if args.events else (Quiet() if args.json else Progress())
    try:
        search = Search(project, options, project_file=file, on_event=view)
    except SearchError as err:
        return _usage(args, str(err))
    _listen(search, args.events)
    if not options.inline:
        warm_up()  # the trials' forkserver imports torch while the study opens
    try:
        result = search.run()
    except SearchError as err:
        return _usage(args, str(err))
    view.close()
    written = write_results(project, result, options.study_dir)
    if args.json:
        print(json.dumps({"study_dir": str(options.study_dir), "best": result.best,
                          "front": result.front, "stopped": result.stopped,
                          "metric_name": result.metric_name, "trials": result.trials,
                          "files": [str(p) for p in written]}, indent=1, default=str))
    elif not args.events:
        print_report(result, options.objective, written)
    return 0 if result.best is not None else 1


def _usage(args: argparse.Namespace, message: str) -> int:
    if args.events:
        print(json.dumps({"event": "error", "message": message}), flush=True)
    print(f"layerloom search: {message}", file=sys.stderr)
    return 2


def _listen(search: Search, events: bool) -> None:
    """Ctrl-C stops the search (the running trials checkpoint); with ``--events`` so does a
    ``stop`` command on stdin, or stdin closing (the app that started us is gone)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: search.stop())
    if not events:
        return

    def read() -> None:
        try:
            for line in sys.stdin:
                text = line.strip()
                try:
                    cmd = json.loads(text).get("command") if text.startswith("{") else text
                except (ValueError, AttributeError):
                    cmd = None
                if cmd == "stop":
                    search.stop()
        except (OSError, ValueError):  # no readable stdin (a test harness): nothing to follow
            return
        search.stop()

    threading.Thread(target=read, daemon=True).start()


class EventPrinter:
    def __call__(self, ev: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(ev, default=str) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        pass


class Quiet(EventPrinter):
    def __call__(self, ev: dict[str, Any]) -> None:
        if ev["event"] == "error":
            print(ev["message"], file=sys.stderr)


class Progress(EventPrinter):
    """A tqdm bar over the trials, with one line per finished trial."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, ev: dict[str, Any]) -> None:
        from tqdm import tqdm

        kind = ev["event"]
        if kind == "search_started":
            print(f"searching {ev['space_size'] or 'a continuous space of'} architectures with "
                  f"{ev['strategy']}: {ev['metric_name']} against {ev['objective']}; study in "
                  f"{ev['study_dir']}", file=sys.stderr)
            self.bar = tqdm(total=ev["trials_planned"], initial=min(ev.get("trials_done", 0),
                                                                     ev["trials_planned"]),
                            unit="trial", file=sys.stderr, dynamic_ncols=True)
        elif kind == "trial_finished" and self.bar is not None:
            metric = "—" if ev["metric"] is None else f"{ev['metric']:.4f}"
            why = f"  ({ev['reason']})" if ev.get("reason") and ev["state"] != "complete" else ""
            self.bar.write(f"trial {ev['number']:>3} {ev['state']:<9} metric {metric:>7}  "
                           f"params {human(ev['params']):>7}  {_choices(ev['choices'])}{why}",
                           file=sys.stderr)
            if not str(ev.get("reason") or "").startswith("stopped with the search"):
                self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _choices(choices: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in choices.items())


def print_report(result: SearchResult, objective: str, written: list[Path]) -> None:
    rows = [("#", "state", result.metric_name, "params", "FLOPs", objective, "s", "choices")]
    for t in sorted(result.trials, key=lambda t: t["number"]):
        cost = t.get("cost")
        rows.append((str(t["number"]), t["state"],
                     "—" if t["metric"] is None else f"{t['metric']:.4f}", human(t["params"]),
                     human(t["flops"]), "—" if cost is None else f"{cost:g}",
                     f"{t.get('duration_s') or 0:.0f}", _choices(t["choices"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    print(f"\nPareto front ({result.metric_name} against {objective}): "
          + (", ".join(f"#{n}" for n in result.front) or "empty"))
    for n in result.front:
        t = result.record(n)
        if t:
            print(f"  #{n}: {result.metric_name} {t['metric']:.4f}, {human(t['params'])} params, "
                  f"{_choices(t['choices'])}")
    if result.best is None:
        print("no trial completed: see the reasons above", file=sys.stderr)
    for path in written:
        print(path)


def write_results(project: Project, result: SearchResult, folder: Path) -> list[Path]:
    """``best.loom`` and ``front/trial-N.loom``: each the base project resolved with a trial's
    choices (an ordinary project, ready to train longer or export)."""
    written: list[Path] = []
    numbers = ([result.best] if result.best is not None else []) + result.front
    for n in dict.fromkeys(numbers):
        t = result.record(n)
        if t is None:
            continue
        arch = resolve(project, t["choices"])
        arch.name = f"{project.name[:80]} #{n}"
        targets = [folder / "best.loom"] if n == result.best else []
        if n in result.front:
            targets.append(folder / "front" / f"trial-{n}.loom")
        for target in targets:
            save(arch, target)
            written.append(target)
    return written
