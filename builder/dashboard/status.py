"""What the Train panel says about a run, without Qt: hints by failure kind, the graph's
fingerprint (for the "graph changed" banner), the plots a recipe will need, and the one-line
progress text ("#2 lr 0.01 · 14:02: running · epoch 1.5 · step 300/1000 · ETA 12s")."""

from __future__ import annotations

import hashlib
import json

from compiler import Project

from .runs import RunData, format_duration

HINTS = {"nan": "lower the learning rate, turn on grad_clip, or check the data for NaN values",
         "oom": "lower the batch size, use amp bf16/fp16, or make the model smaller",
         "data": "check the dataset file and the options in the Train form",
         "crash": "see runner.log in the run folder; resume from the last checkpoint or start "
                  "again",
         "setup": "fix the settings above and press Start again",
         "checkpoint": "resume from an earlier checkpoint, or start a new run",
         "codegen": "this is a Layerloom bug: please report it with the project file"}
STATUS_TEXT = {"starting": "starting…", "running": "running", "paused": "paused",
               "finished": "finished", "stopped": "stopped", "failed": "failed"}


def graph_fingerprint(project: Project) -> str:
    """Hash of what the runner would compile (networks and blocks), not layout or settings."""
    data = project.model_dump(include={"networks", "blocks"}, mode="json")
    return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()


def expected_metrics(project: Project) -> list[str]:
    """The recipe's headline metric, if it has one, so its plot can be laid out in advance."""
    from training import recipes

    try:
        name = recipes.get(project.training.recipe or "").metric[0]
    except (KeyError, AttributeError, IndexError, TypeError):
        return []
    return [name] if name and name != "loss" else []


def eta_s(run: RunData) -> float | None:
    s = run.started
    first = int(s.get("start_step") or 0)
    elapsed = (run.t_last or 0) - float(s.get("time") or 0)
    if not s or run.step <= first or elapsed <= 0:
        return None
    rate = (run.step - first) / elapsed
    return max(0.0, (run.total_steps - run.step) / rate) if rate > 0 else None


def progress_text(run: RunData) -> str:
    """The run's name, then its status first: what the buttons next to it agree with."""
    total, step = run.total_steps, run.step
    parts = [STATUS_TEXT.get(run.status, run.status)]
    spe = run.steps_per_epoch
    if spe:
        parts.append(f"epoch {step / spe:.1f}")
    parts.append(f"step {step}/{total or '?'}")
    if run.samples_per_s:
        parts.append(f"{run.samples_per_s:,.0f} samples/s")
    eta = eta_s(run)
    if eta is not None and run.status == "running":
        parts.append(f"ETA {format_duration(eta)}")
    if run.terminal:
        parts.append(f"took {format_duration(run.duration_s)}")
        if run.resumable:
            parts.append("Resume continues it")
    return f"{run.name}: " + " · ".join(parts)
