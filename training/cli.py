"""``layerloom train FILE|TEMPLATE [--epochs N | --steps N] [--device ...] [--out DIR]``.

Runs in-process with a tqdm progress bar, prints the final metrics, and exits non-zero when the
run fails. The run directory keeps events.jsonl, config.json, model.py, project.loom (the project
as trained) and the checkpoints; ``layerloom train --resume RUN_DIR`` continues a stopped or
killed run from its latest checkpoint, with the project, steps and seed it was started with.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from compiler import Project, load, save
from compiler.project import EXTENSION, ProjectLoadError

SNAPSHOT = "project.loom"  # the project a run trains, kept in its run dir for --resume
PROJECT_WEIGHTS = "<project>"  # --init-weights alone: the project's own weights folder


def resolve_project(target: str) -> Project:
    """A .loom path, or the name of a template (built with ``templates.build``)."""
    if target.endswith(EXTENSION) or os.path.sep in target or os.path.exists(target):
        return load(target)
    try:
        import templates
    except ImportError:
        raise ProjectLoadError(f"'{target}' is not a file and templates are unavailable") from None
    try:
        return templates.build(target)
    except KeyError:
        names = getattr(templates, "names", lambda: [])()
        raise ProjectLoadError(f"'{target}' is neither a {EXTENSION} file nor a template"
                               + (f" (templates: {', '.join(names)})" if names else "")) from None


def default_run_dir(project: Project, target: str) -> Path:
    base = Path(target).parent if target.endswith(EXTENSION) else Path.cwd()
    stem = Path(target).stem if target.endswith(EXTENSION) else target
    return base / "runs" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def resumed_settings(run_dir: Path) -> dict:
    """What a run was started with (config.json): its total steps and seed, so a resumed run
    follows the same schedule and batches. Empty when the run dir has no readable config."""
    try:
        hyper = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["hyper"]
        return {"steps": int(hyper["total_steps"]), "seed": int(hyper["seed"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _resume_project(args: argparse.Namespace) -> Project:
    """The project a resumed run trains: the target when one is named, else the run's own
    snapshot."""
    if args.target:
        return resolve_project(args.target)
    snap = Path(args.resume) / SNAPSHOT
    if not snap.exists():
        raise ProjectLoadError(f"cannot resume {args.resume}: it has no {SNAPSHOT} (is it a run "
                               "folder?); name the project too: layerloom train FILE --resume "
                               f"{args.resume}")
    return load(snap)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="layerloom train", description=__doc__.split("\n\n")[1])
    ap.add_argument("target", nargs="?",
                    help=f"a {EXTENSION} project file or a template name (optional with --resume)")
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int)
    budget.add_argument("--steps", type=int)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out", help="run directory (default: runs/<name>-<time> beside the project)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--optimize", action="store_true",
                    help="optimised mode: torch.compile (paid once, at the first step), "
                         "channels-last conv nets, fused optimisers, bf16 autocast where the "
                         "device runs it faster (CUDA; conv nets on a CPU with AMX or "
                         "AVX512-BF16; amp off keeps fp32); on CUDA also cudnn.benchmark and "
                         "TF32 (numerics change)")
    ap.add_argument("--resume", metavar="RUN_DIR",
                    help="continue a stopped or killed run from its latest checkpoint")
    ap.add_argument("--init-weights", metavar="FILE", nargs="?", const=PROJECT_WEIGHTS,
                    help="start from these weights, not random ones: alone, the project's own "
                         "(its PROJECT.weights/ folder, from an import or File > Load Weights); "
                         "or a weights folder or .safetensors file")
    ap.add_argument("--partial-weights", action="store_true",
                    help="with --init-weights, after an edit that changed some shapes (a "
                         "widened stage): load the tensors that still fit, start the rest fresh")
    ap.add_argument("--trust-code", action="append", default=[], metavar="FILE",
                    help="let the project's opaque nodes import your code from FILE")
    args = ap.parse_args(argv)
    if not args.target and not args.resume:
        ap.error("name a project file or template (or --resume RUN_DIR)")
    if args.resume and args.out:
        ap.error("--resume continues in RUN_DIR itself; leave out --out")

    from .runner import run

    try:
        project = _resume_project(args) if args.resume else resolve_project(args.target)
    except ProjectLoadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.partial_weights and not args.init_weights:
        ap.error("--partial-weights goes with --init-weights (the weights to start from)")
    if args.init_weights == PROJECT_WEIGHTS:
        if args.resume or not str(args.target).endswith(EXTENSION):
            ap.error(f"--init-weights without FILE starts from a {EXTENSION} project's own weights")
        from compiler.project_weights import weights_dir

        args.init_weights = str(weights_dir(args.target))
    steps, seed = args.steps, args.seed
    if args.resume:
        out = Path(args.resume)
        before = resumed_settings(out)
        if steps is None and args.epochs is None:
            steps = before.get("steps")
        seed = before.get("seed") if seed is None else seed
    else:
        out = Path(args.out) if args.out else default_run_dir(project, args.target)
        out.mkdir(parents=True, exist_ok=True)
        try:
            save(project, out / SNAPSHOT)
        except (OSError, ValueError, TypeError) as err:  # the run can go on without it
            print(f"note: no {SNAPSHOT} in the run folder ({err}); to resume, name the project: "
                  f"layerloom train FILE --resume {out}", file=sys.stderr)
    bar = None

    def on_event(ev: dict) -> None:
        nonlocal bar
        kind = ev["event"]
        if kind == "started":
            print(f"training '{project.name}': recipe {ev['recipe']}, data {ev['dataset']}, "
                  f"{ev['device_name']} ({ev['device_reason']}), {ev['total_steps']} steps -> "
                  f"{out}", file=sys.stderr)
            if not args.quiet:
                from tqdm import tqdm
                bar = tqdm(total=ev["total_steps"], initial=ev.get("start_step", 0),
                           unit="step", file=sys.stderr, dynamic_ncols=True)
        elif kind == "metric" and bar is not None:
            bar.update(ev["step"] - bar.n)
            shown = {k: ev[k] for k in ("loss", "accuracy", "perplexity", "probe_accuracy",
                                        "exact_match", "d_loss", "g_loss", "kl") if k in ev}
            bar.set_postfix({("val_" if ev["split"] == "val" else "") + k: f"{v:.4g}"
                             for k, v in shown.items()}, refresh=False)
        elif kind == "sample" and ev.get("kind") == "text" and args.quiet is False:
            if bar is not None:
                bar.write(f"[step {ev['step']}] sample:\n{ev['text'][:300]}")

        elif kind == "compiled":
            (bar.write if bar is not None else _stderr)(
                f"compiled: the first step (with torch.compile) took {ev['seconds']:.1f} s")
        elif kind == "warning":
            (bar.write if bar is not None else _stderr)(f"warning: {ev['message']}\n"
                                                        f"hint: {ev['hint']}")

    ev = run(project, out, steps=steps, epochs=args.epochs, device=args.device, seed=seed,
             resume=bool(args.resume), on_event=on_event,
             hyper={"optimize": True} if args.optimize else None,
             trust_code=tuple(args.trust_code), init_weights=args.init_weights,
             partial_weights=args.partial_weights)
    if bar is not None:
        bar.close()
    if ev["event"] == "failed":
        print(f"training failed at step {ev.get('step', 0)}: {ev['reason']}", file=sys.stderr)
        if ev.get("hint"):
            print(f"hint: {ev['hint']}", file=sys.stderr)
        return 1
    if ev["event"] == "stopped":
        print(f"stopped at step {ev['step']}; resume with: layerloom train --resume {out}",
              file=sys.stderr)
        return 1
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in ev.get("metrics", {}).items()
                        if isinstance(v, (int, float)))
    print(f"finished {ev['step']} steps in {ev['duration_s']:.1f} s: {metrics}")
    for w in ev.get("warnings", []):
        print(f"warning: {w['message']} ({w['hint']})")
    print(f"run directory: {out}")
    return 0


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
