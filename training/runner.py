"""The training runner: a child process that trains a project and streams JSON-lines events.

Protocol (the dashboard is built against exactly this)::

    python -m training.runner --project FILE.loom --run-dir DIR [--resume]
        [--steps N | --epochs N] [--device auto|cpu|cuda|mps] [--seed S]

The run dir gets ``config.json`` (the full training config), ``model.py`` (the exact generated
source), ``events.jsonl`` (every event, one per line), ``checkpoints/latest.pt`` (written
atomically; ``torch.load(weights_only=True)`` reads it), ``samples/`` (PNG grids) and
TensorBoard event files (``training.tensorboard``: the same metrics and the hyperparameters).

stdout carries one JSON object per line, flushed after each; every object has ``"time"`` (unix s):

* ``{"event":"started","run_id","recipe","dataset","device","device_name","device_reason",
  "total_steps","steps_per_epoch","config":{...}}``
* ``{"event":"metric","step","epoch","split":"train"|"val","loss", <recipe metrics such as
  "accuracy","perplexity","kl","d_loss","g_loss","probe_accuracy">,"lr","samples_per_s"}``
  (train records also carry ``"losses"``, the loss of every step since the last record)
* ``{"event":"sample","step","kind":"image"|"text"|"confusion","path"?,"text"?,"matrix"?,
  "labels"?}``
* ``{"event":"checkpoint","step","path"}``
* ``{"event":"paused","step"}``, ``{"event":"resumed","step"}``, ``{"event":"stopped","step"}``
* ``{"event":"warning","step","kind":"diverged","message","hint","since_step"}``: the run goes
  on, but the user should know (the loss blew up: a learning rate far too high); kind
  ``compile``: the optimised mode's torch.compile failed and the run goes on eagerly
* ``{"event":"compiled","step","seconds"}``: optimised mode, the first step (with the compile) took
  this long (paid once per run)
* ``{"event":"finished","step","metrics":{...},"duration_s","warnings":[...]}`` (``warnings``:
  the warning events of this segment, only when there were any)
* ``{"event":"failed","step","reason","hint","kind"}``, ``kind`` one of ``nan`` (a non-finite
  loss), ``oom`` (out of memory, CPU or GPU), ``data``, ``checkpoint`` (a damaged, foreign or
  missing checkpoint), ``codegen`` (the generated code is broken: a Layerloom bug), ``crash``
  (the runner died without a word: :func:`outcome`) or ``error`` (anything else)

stdin takes the lines ``stop``, ``pause`` and ``resume`` (read on a background thread; the loop
checks the flags between steps). A stopped run saves a checkpoint first; ``--resume`` continues it
exactly (on CPU the losses equal those of an uninterrupted run, also after a kill -9), and
refuses, naming the path it looked in, when the run dir has no checkpoint. A runner that dies
without ``finished``, ``failed`` or ``stopped`` is a failed run for the parent (see
:func:`outcome`).

In-process use (tests, the CLI): :func:`run` with ``on_event`` and a :class:`Control`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable

import torch

from compiler import Project, load
from compiler.codegen import CodegenError
from compiler.project import ProjectLoadError

from .appside import app_recipe
from .data import DataError
from .engine import (
    DivergenceWatch,
    Hooks,
    TrainingFault,
    checkpoint_state,
    fit,
    load_checkpoint,
    save_checkpoint,
    setup,
)
from .plan import PlanError, prepare
from .tensorboard import TensorBoardSink

Event = dict[str, Any]
TERMINAL = ("finished", "failed", "stopped")


class Control:
    """Stop / pause flags set from another thread (stdin reader, GUI, test callback).

    ``held`` (a stop or a pause asked) is a plain attribute, written after the flags it sums up,
    so the loop's check between steps is one attribute read, not two calls into the Event.
    """

    def __init__(self) -> None:
        self.stop_requested = self.held = False
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        self.stop_requested = True
        self._running.set()
        self.held = True

    def pause(self) -> None:
        self._running.clear()
        self.held = True

    def resume(self) -> None:
        self._running.set()
        self.held = self.stop_requested
        if self.stop_requested:  # a stop that came in between is never unsaid
            self.held = True

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait(self, timeout: float = 0.2) -> None:
        self._running.wait(timeout)

    def command(self, line: str) -> None:
        cmd = line.strip().lower()
        if cmd == "stop":
            self.stop()
        elif cmd == "pause":
            self.pause()
        elif cmd == "resume":
            self.resume()


def pick_device(want: str = "auto") -> tuple[torch.device, str, str]:
    """(device, human name, why it was chosen)."""
    cuda, mps = torch.cuda.is_available(), bool(getattr(torch.backends, "mps", None)
                                                and torch.backends.mps.is_available())
    if want == "cuda" and not cuda:
        raise PlanError("device 'cuda' was asked for but no CUDA GPU is available",
                        "use --device auto or cpu")
    if want == "mps" and not mps:
        raise PlanError("device 'mps' was asked for but Apple MPS is not available",
                        "use --device auto or cpu")
    if want == "cuda" or (want == "auto" and cuda):
        return (torch.device("cuda"), torch.cuda.get_device_name(0),
                "asked for" if want == "cuda" else "a CUDA GPU is available")
    if want == "mps" or (want == "auto" and mps):
        return torch.device("mps"), "Apple MPS", "asked for" if want == "mps" else \
            "Apple MPS is available (no CUDA)"
    why = "asked for" if want == "cpu" else "no CUDA or MPS device found"
    n = torch.get_num_threads()
    return torch.device("cpu"), f"CPU ({n} thread{'s' * (n != 1)})", why


class _Emitter(Hooks):
    """Turns loop callbacks into events; between steps it checkpoints every ``every`` steps (the
    exported loop saves only at its end) and checks the control flags."""

    def __init__(self, emit: Callable[[Event], None], control: Control, save: Callable[[int], None],
                 every: int = 0, start: int = 0) -> None:
        self.emit, self.control, self.save = emit, control, save
        self.every, self.start = every, start
        self.step = 0
        self.warnings: list[Event] = []
        self.watch = DivergenceWatch()

    def warning(self, record: dict) -> None:
        ev = {"event": "warning", **record}
        self.warnings.append(ev)
        self.emit(ev)

    def metric(self, record: dict) -> None:
        self.step = record["step"]
        if "losses" in record:
            diverged = self.watch.update(record["step"] - len(record["losses"]) + 1,
                                         record["losses"])
            if diverged is not None:
                self.warning(diverged)
        self.emit({"event": "metric", **record})

    def sample(self, record: dict) -> None:
        self.emit({"event": "sample", **record})

    def should_stop(self, step: int) -> bool:
        """Before each step after the first (never after the last, which ``_run`` saves): a
        checkpoint when one is due, then pause or stop as the control flags say."""
        self.step = step
        if self.every and step != self.start and step % self.every == 0:
            self.save(step)
        if not self.control.held:  # the usual case, cheaply: neither a stop nor a pause asked
            return False
        if self.control.paused and not self.control.stop_requested:
            self.emit({"event": "paused", "step": step})
            while self.control.paused and not self.control.stop_requested:
                self.control.wait()
            if not self.control.stop_requested:
                self.emit({"event": "resumed", "step": step})
        return self.control.stop_requested


def run(project: Project | str | os.PathLike, run_dir: str | os.PathLike, *,
        steps: int | None = None, epochs: int | None = None, device: str | None = None,
        seed: int | None = None, resume: bool = False,
        on_event: Callable[[Event], None] | None = None, control: Control | None = None,
        hyper: dict[str, Any] | None = None, echo: Any = None,
        trust_code: tuple[str, ...] = (), init_weights: str | None = None,
        partial_weights: bool = False) -> Event:
    """Train ``project`` into ``run_dir``; returns the terminal event (finished/failed/stopped).

    ``trust_code``: files (or modules) of the user's own code that opaque nodes may import;
    ``init_weights``: start from the project's weights (``compiler.project_weights``), not random;
    ``partial_weights``: the user agreed to load only the tensors that still fit (a widened
    stage); the others start fresh and a ``warning`` event of kind ``weights`` names them.

    Never raises for problems a user can cause: they become a ``failed`` event. ``echo``: a text
    stream that gets every event line too (the child process's stdout). ``on_event`` sees each
    event as it happens and must leave it as it is: its line is written at the next flush.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    control = control or Control()
    events = open(run_dir / "events.jsonl", "a" if resume else "w", encoding="utf-8")
    last: dict[str, Any] = {"step": 0}
    outs = [events] if echo is None else [events, echo]
    policy = FlushPolicy()
    board = TensorBoardSink(run_dir, resume=resume)  # TensorBoard files beside events.jsonl

    # events until the next flush (FlushPolicy), turned into lines together: json.dumps after
    # json.dumps runs warm (~8 us a record), where one a record between steps ran cold
    unwritten: list[Event] = []

    def write() -> None:
        text = "".join(json.dumps(e, default=_jsonable) + "\n" for e in unwritten)
        unwritten.clear()
        for out in outs:
            out.write(text)
            out.flush()

    def emit(ev: Event) -> None:
        ev.setdefault("time", time.time())
        if "step" in ev:
            last["step"] = ev["step"]
        board.event(ev)
        unwritten.append(ev)
        if policy.due(ev["event"] != "metric"):
            write()
        if on_event is not None:
            on_event(ev)

    t0 = time.time()
    with events:
        try:
            return _guarded(project, run_dir, emit, control, t0, last, steps=steps,
                            epochs=epochs, device=device, seed=seed, resume=resume, hyper=hyper,
                            trust_code=tuple(trust_code), init_weights=init_weights,
                            partial_weights=partial_weights)
        finally:
            write()
            board.close()


OOM_HINT = ("lower the batch size or make the model smaller (fewer or narrower layers, a shorter "
            "sequence); on a GPU, amp bf16/fp16 also halves the activations")
CODEGEN_HINT = ("the model code Layerloom generated is broken: that is a Layerloom bug, not your "
                "mistake. Please report it with the project file")
SHAPES_HINT = "check that the networks' outputs have the shapes the recipe expects"
BUG_HINT = ("this looks like a bug: please report it with the project file (the traceback is in "
            "events.jsonl in the run folder)")
_OOM_TEXT = ("DefaultCPUAllocator: can't allocate memory", "out of memory",
             "not enough memory", "CUDA error: out of memory")
_SHAPE_TEXT = ("shape", "size mismatch", "mat1 and mat2", "dimension", "must match the size")


def _guarded(project, run_dir, emit, control, t0, last, **kw) -> Event:
    try:
        return _run(project, run_dir, emit, control, t0, **kw)
    except (TrainingFault, PlanError) as err:
        ev = {"event": "failed", "step": getattr(err, "step", 0) or last["step"],
              "reason": err.reason, "hint": err.hint, "kind": err.kind}
    except DataError as err:
        ev = {"event": "failed", "step": last["step"], "reason": str(err),
              "hint": err.expected and f"expected {err.expected}", "kind": "data"}
    except ProjectLoadError as err:
        ev = {"event": "failed", "step": 0, "reason": str(err),
              "hint": "fix the project file at the place named; 'layerloom check FILE' lists "
                      "every problem", "kind": "error"}
    except Exception as err:  # a bug or an unforeseen model error: report it, keep the app
        ev = _classify(err, last["step"])
    emit(ev)
    return ev


def _classify(err: BaseException, step: int) -> Event:
    """A failed event for an exception no layer of ours turned into a message: its own kind,
    reason and hint for out-of-memory and broken generated code, the shapes hint only for
    errors that speak of shapes, and a bug report for the rest."""
    text = str(err).strip()
    if _is_oom(err):
        first = text.splitlines()[0] if text else type(err).__name__
        return {"event": "failed", "step": step, "kind": "oom", "hint": OOM_HINT,
                "reason": f"out of memory at step {step}: {first}"}
    tb = traceback.extract_tb(err.__traceback__)
    where = next((f" ({f.filename}, line {f.lineno})" for f in reversed(tb)
                  if "layerloom" in f.filename or f.filename.endswith("model.py")), "")
    ev = {"event": "failed", "step": step, "reason": f"{type(err).__name__}: {text}{where}",
          "traceback": traceback.format_exc(limit=8)}
    if isinstance(err, (SyntaxError, CodegenError)):
        return {**ev, "kind": "codegen", "hint": CODEGEN_HINT,
                "reason": f"the generated model code is broken ({type(err).__name__}: {text})"}
    shapes = isinstance(err, (RuntimeError, ValueError, IndexError)) and \
        any(s in text for s in _SHAPE_TEXT)
    return {**ev, "kind": "error", "hint": SHAPES_HINT if shapes else BUG_HINT}


def _is_oom(err: BaseException) -> bool:
    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(err, RuntimeError) and any(s in str(err) for s in _OOM_TEXT)


class FlushPolicy:
    """When to flush the event streams. Every event but a metric is flushed at once; metrics
    are flushed when 0.1 s have passed since the last flush or when they come slowly (more than
    0.05 s apart), so a fast run (a step per millisecond) is not slowed by a system call per
    record, and a slow one still shows each point the moment it exists."""

    def __init__(self, every_s: float = 0.1, slow_s: float = 0.05) -> None:
        self.every_s, self.slow_s = every_s, slow_s
        self.t_flush = self.t_event = 0.0

    def due(self, urgent: bool) -> bool:
        now = time.monotonic()
        slow, self.t_event = now - self.t_event > self.slow_s, now
        if urgent or slow or now - self.t_flush >= self.every_s:
            self.t_flush = now
            return True
        return False


def _run(project: Project | str | os.PathLike, run_dir: Path, emit: Callable[[Event], None],
         control: Control, t0: float, *, steps: int | None, epochs: int | None,
         device: str | None, seed: int | None, resume: bool, hyper: dict | None,
         trust_code: tuple[str, ...] = (), init_weights: str | None = None,
         partial_weights: bool = False) -> Event:
    ckpt_path = run_dir / "checkpoints" / "latest.pt"
    if resume and not ckpt_path.exists():
        raise TrainingFault(f"nothing to resume: there is no checkpoint at {ckpt_path}",
                            "start a new run without --resume, or name the run folder that holds "
                            "checkpoints/latest.pt", "checkpoint")
    if not isinstance(project, Project):
        project = load(project)
    overrides = dict(hyper or {})
    overrides.update({k: v for k, v in (("steps", steps), ("epochs", epochs), ("device", device),
                                        ("seed", seed)) if v is not None})
    plan = prepare(project, overrides, trust=trust_code)
    hp = plan.hyper.model_dump()

    def note(record: dict) -> None:
        """The optimised mode's notes (during the first step): its compile time as a
        ``compiled`` event, a failed compile as a ``warning`` (the run goes on eagerly)."""
        if record["kind"] == "compiled":
            emit({"event": "compiled", **{k: v for k, v in record.items() if k != "kind"}})
        else:
            hooks.warning(record)

    dev, dev_name, dev_reason = pick_device(hp["device"])
    data = plan.data
    torch.manual_seed(hp["seed"])
    fits: list[Any] = []  # how the project's weights fit each network (a partial start)
    nets = {role: _instantiate(plan, net, init_weights if not resume else None,
                               partial_weights, fits).to(dev)
            for role, net in plan.roles.items()}
    recipe = app_recipe(plan.recipe_cls)(nets, data, hp, dev)
    recipe.graph_cls = plan.graph_cls
    recipe.adapt(plan.input_specs)
    if hp.get("optimize") or hp.get("compile"):
        # a run in a process that compiled before (tests, a notebook): torch.compile caches per
        # function, and after 8 models the recipe's loss would train eagerly with no word of it
        torch.compiler.reset()
    sampler = setup(recipe, say=note)
    total = hp["total_steps"]
    hp["checkpoint_every"] = hp.get("checkpoint_every") or hp["eval_every"]

    (run_dir / "samples").mkdir(exist_ok=True)
    start = load_checkpoint(str(ckpt_path), recipe) if resume else 0

    config = {"project": project.name, "template": project.template,
              "recipe": plan.recipe_cls.name, "dataset": project.training.dataset,
              "dataset_options": project.training.dataset_options, "networks": plan.roles,
              "hyper": hp, "data_info": {k: v for k, v in data.info.items() if k != "itos"}}
    _write_text(run_dir / "config.json", json.dumps(config, indent=1, default=_jsonable))
    _write_text(run_dir / "model.py", plan.built.source.text)
    run_id = run_dir.name or uuid.uuid4().hex[:8]
    emit({"event": "started", "run_id": run_id, "recipe": plan.recipe_cls.name,
          "dataset": project.training.dataset, "device": str(dev), "device_name": dev_name,
          "device_reason": dev_reason, "total_steps": total,
          "steps_per_epoch": sampler.steps_per_epoch, "config": config, "start_step": start})
    if start:
        emit({"event": "resumed", "step": start})

    def save(step: int) -> None:
        save_checkpoint(str(ckpt_path), checkpoint_state(recipe, step))
        emit({"event": "checkpoint", "step": step, "path": str(ckpt_path)})

    hooks = _Emitter(emit, control, save, hp["checkpoint_every"], start)
    hooks.sample_dir = str(run_dir / "samples")
    for partial in fits:  # the user said yes to these before the run: say them in its log
        hooks.warning({"kind": "weights", "step": start, "message": partial.text(),
                       "hint": "these tensors start from fresh values; the rest continue from "
                               "the project's weights", "reinitialised": partial.reinitialised})
    try:
        step, val = fit(recipe, sampler, total, start, hooks)
    except TrainingFault as err:
        err.step = err.step or hooks.step
        raise
    save(step)
    if step < total:
        ev = {"event": "stopped", "step": step}
    else:
        ev = {"event": "finished", "step": step, "metrics": val,
              "duration_s": round(time.time() - t0, 3)}
        if hooks.warnings:
            ev["warnings"] = [{k: v for k, v in w.items() if k not in ("event", "time")}
                              for w in hooks.warnings]
    emit(ev)
    return ev


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _jsonable(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def outcome(events: list[Event], returncode: int | None) -> Event:
    """How the parent reads a child run: its terminal event, or a failure when it died without
    one."""
    for ev in reversed(events):
        if ev.get("event") in TERMINAL:
            return ev
    step = max((ev.get("step", 0) for ev in events), default=0)
    return {"event": "failed", "step": step, "kind": "crash",
            "reason": f"the runner exited (code {returncode}) without finishing",
            "hint": "it was killed or crashed (out of memory is a common cause); the latest "
                    "checkpoint can be resumed"}


def _stdin_reader(control: Control, stop_on_eof: bool = False) -> None:
    for line in sys.stdin:
        control.command(line)
    # stdin closed. From a terminal or a script that means nothing to say: keep running. From
    # the app (--stop-on-eof) it means the app is gone (closed or crashed): stop at the next
    # step with a checkpoint, rather than train on unseen, holding the CPU or GPU.
    if stop_on_eof:
        control.stop()


def _instantiate(plan: Any, net: str, init_weights: str | None, partial: bool = False,
                 fits: list[Any] | None = None) -> Any:
    """A network, with the project's weights (an import's or loaded ones) loaded when the run
    starts from them; a network the weights folder holds none for starts from random weights.
    ``partial``: load what fits, the rest fresh; such a fit is appended to ``fits``."""
    if init_weights is None:
        return plan.built.instantiate(net)
    from compiler.project_weights import ProjectWeightsError, load_project_weights, stored_weights

    if Path(init_weights).is_dir() and stored_weights(init_weights) and \
            net not in stored_weights(init_weights):
        return plan.built.instantiate(net)
    try:
        if not partial:
            return plan.built.instantiate(net, weights=init_weights)
        model = plan.built.instantiate(net)
        fit = load_project_weights(model, net, init_weights, allow_partial=True)
        if not fit.complete and fits is not None:
            fits.append(fit)
        return model
    except ProjectWeightsError as err:
        raise TrainingFault(str(err), "start without --init-weights (from random weights), or "
                            "load or import the weights again", "checkpoint") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.runner",
                                 description="Train a Layerloom project, streaming JSON events.")
    ap.add_argument("--project", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--trust-code", action="append", default=[], metavar="FILE",
                    help="let opaque nodes import your code from FILE")
    ap.add_argument("--init-weights", metavar="FILE", help="start from these imported weights")
    ap.add_argument("--partial-weights", action="store_true",
                    help="with --init-weights: load the tensors that fit, the rest start fresh")
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int)
    budget.add_argument("--epochs", type=int)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"])
    ap.add_argument("--seed", type=int)
    ap.add_argument("--threads", type=int,
                    help="CPU threads for torch (default: torch's own choice). The app passes "
                         "cores - 1: on a small machine a core left to the window keeps both "
                         "the UI and training fast, since a busy UI thread stalls every "
                         "multi-threaded op of a runner that uses all cores")
    ap.add_argument("--stop-on-eof", action="store_true",
                    help="stop (with a checkpoint) when stdin closes: the app passes this, so "
                         "a run never outlives the window that started it")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(max(1, args.threads))
    control = Control()
    threading.Thread(target=_stdin_reader, args=(control, args.stop_on_eof), daemon=True).start()

    ev = run(args.project, args.run_dir, steps=args.steps, epochs=args.epochs, device=args.device,
             seed=args.seed, resume=args.resume, echo=sys.stdout, control=control,
             trust_code=tuple(args.trust_code), init_weights=args.init_weights,
             partial_weights=args.partial_weights)
    return 1 if ev["event"] == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
