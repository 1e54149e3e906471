"""Run history without Qt: a run's events become growable metric series, samples and a status.

The runner's ``events.jsonl`` is the single record of a run, so the live view and the runs list
read the same thing; history survives restarts because nothing lives only in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Event = dict[str, Any]
TERMINAL = ("finished", "failed", "stopped")
# keys of a metric record that are bookkeeping, not something to plot
_NOT_METRICS = {"event", "step", "epoch", "split", "time", "losses", "samples_per_s"}


class Series:
    """Append-only (step, epoch, time, value) buffers that double when full.

    Arrays are grown by doubling so 100,000 appends stay cheap, and views are returned without
    copying so the plot timer can hand them straight to pyqtgraph.
    """

    def __init__(self, capacity: int = 256) -> None:
        self._buf = np.empty((4, capacity), dtype=np.float64)
        self.n = 0
        self.version = 0
        self._smooth: tuple[float, int, np.ndarray] | None = None

    def append(self, step: float, epoch: float, t: float, value: float) -> None:
        if self.n == self._buf.shape[1]:
            bigger = np.empty((4, self._buf.shape[1] * 2), dtype=np.float64)
            bigger[:, : self.n] = self._buf[:, : self.n]
            self._buf = bigger
        self._buf[:, self.n] = (step, epoch, t, value)
        self.n += 1
        self.version += 1

    def extend(self, steps: np.ndarray, epochs: np.ndarray, times: np.ndarray,
               values: np.ndarray) -> None:
        k = len(values)
        need = self.n + k
        if need > self._buf.shape[1]:
            cap = self._buf.shape[1]
            while cap < need:
                cap *= 2
            bigger = np.empty((4, cap), dtype=np.float64)
            bigger[:, : self.n] = self._buf[:, : self.n]
            self._buf = bigger
        self._buf[:, self.n: need] = np.vstack([steps, epochs, times, values])
        self.n = need
        self.version += 1

    def truncate_after(self, step: float) -> None:
        """Drop points past ``step`` (a resumed run replays from its checkpoint)."""
        keep = int(np.searchsorted(self.steps, step, side="right"))
        if keep < self.n:
            self.n = keep
            self.version += 1
            self._smooth = None

    @property
    def steps(self) -> np.ndarray:
        return self._buf[0, : self.n]

    @property
    def epochs(self) -> np.ndarray:
        return self._buf[1, : self.n]

    @property
    def times(self) -> np.ndarray:
        return self._buf[2, : self.n]

    @property
    def values(self) -> np.ndarray:
        return self._buf[3, : self.n]

    def x(self, axis: str, t0: float = 0.0) -> np.ndarray:
        if axis == "epoch":
            return self.epochs
        if axis == "time":
            return self.times - t0
        return self.steps

    def smoothed(self, weight: float) -> np.ndarray:
        """Exponential moving average (TensorBoard-style, debiased), computed incrementally."""
        if weight <= 0 or self.n == 0:
            return self.values
        cached = self._smooth
        if cached is None or cached[0] != weight or cached[1] > self.n:
            cached = (weight, 0, np.empty(0))
        _, done, out = cached
        if len(out) < self.n:
            grown = np.empty(max(self.n, 2 * len(out)), dtype=np.float64)
            grown[:done] = out[:done]
            out = grown
        vals = self.values
        acc = out[done - 1] * (1 - weight ** done) if done else 0.0
        for i in range(done, self.n):
            v = vals[i]
            acc = weight * acc + (1 - weight) * v if np.isfinite(v) else acc
            out[i] = acc / (1 - weight ** (i + 1))
        self._smooth = (weight, self.n, out)
        return out[: self.n]


@dataclass
class Failure:
    reason: str
    hint: str = ""
    kind: str = "error"


@dataclass
class RunData:
    """Everything the panel shows about one run, rebuilt from its events."""

    run_dir: Path
    status: str = "starting"  # starting, running, paused, finished, stopped, failed
    started: Event = field(default_factory=dict)
    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    samples: dict[str, Event] = field(default_factory=dict)
    last_metric: dict[str, Event] = field(default_factory=dict)
    final_metrics: dict[str, float] = field(default_factory=dict)
    failure: Failure | None = None
    warnings: list[Event] = field(default_factory=list)
    checkpoint: str | None = None
    step: int = 0
    samples_per_s: float = 0.0
    t_first: float | None = None
    t_last: float | None = None
    active_s: float = 0.0  # wall time spent training, summed over resumes
    _segment_t0: float | None = None
    _last_train_step: int = 0
    meta: dict = field(default_factory=dict)  # run.json: number, label, time (naming.py)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def name(self) -> str:
        """What people read: '#3 lr 0.01 · 14:02' (see :mod:`.naming`)."""
        from .naming import display_name

        return display_name(self.run_id, self.meta, self.t_first)

    @property
    def total_steps(self) -> int:
        return int(self.started.get("total_steps") or 0)

    @property
    def steps_per_epoch(self) -> int:
        return int(self.started.get("steps_per_epoch") or 0)

    @property
    def duration_s(self) -> float:
        if self._segment_t0 is not None and self.t_last is not None:
            return self.active_s + (self.t_last - self._segment_t0)
        return self.active_s

    @property
    def resumable(self) -> bool:
        return self.status in ("stopped", "failed") and \
            (self.run_dir / "checkpoints" / "latest.pt").exists()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def apply(self, ev: Event) -> None:
        kind = ev.get("event")
        t = float(ev.get("time") or time.time())
        if self.t_first is None:
            self.t_first = t
        prev_last, self.t_last = self.t_last, t
        if "step" in ev and isinstance(ev["step"], (int, float)):
            self.step = int(ev["step"])
        if kind == "started":
            self.t_last = prev_last  # a dead segment ends at its last event, not at restart
            self._close_segment()
            self.t_last = t
            self._segment_t0 = t
            start = int(ev.get("start_step") or 0)
            if self.started and start:
                for s in self.series.values():
                    s.truncate_after(start)
            self.started = ev
            self.step = start
            self._last_train_step = start
            self.status = "running"
            self.failure = None
        elif kind == "metric":
            self._metric(ev, t)
        elif kind == "sample":
            self.samples[_sample_key(ev)] = ev
        elif kind == "warning":
            self.warnings.append(ev)
        elif kind == "checkpoint":
            self.checkpoint = ev.get("path")
        elif kind == "paused":
            self.status = "paused"
        elif kind == "resumed":
            self.status = "running"
        elif kind in TERMINAL:
            self._close_segment()
            self.status = kind
            if kind == "finished":
                self.final_metrics = {k: v for k, v in (ev.get("metrics") or {}).items()
                                      if isinstance(v, (int, float))}
            elif kind == "failed":
                self.failure = Failure(str(ev.get("reason") or "the run failed"),
                                       str(ev.get("hint") or ""), str(ev.get("kind") or "error"))

    def _close_segment(self) -> None:
        if self._segment_t0 is not None and self.t_last is not None:
            self.active_s += max(0.0, self.t_last - self._segment_t0)
        self._segment_t0 = None

    def _metric(self, ev: Event, t: float) -> None:
        split = str(ev.get("split") or "train")
        step = float(ev.get("step") or 0)
        epoch = float(ev.get("epoch") or 0.0)
        self.last_metric[split] = ev
        if ev.get("samples_per_s"):
            self.samples_per_s = float(ev["samples_per_s"])
        losses = ev.get("losses")
        for name, value in ev.items():
            if name in _NOT_METRICS or not isinstance(value, (int, float)) or \
                    isinstance(value, bool):
                continue
            series = self.series.setdefault((split, name), Series())
            if name == "loss" and isinstance(losses, list) and len(losses) > 1:
                self._per_step(series, losses, step, epoch, t)
            else:
                series.append(step, epoch, t, float(value))
        if split == "train":
            self._last_train_step = int(step)

    def _per_step(self, series: Series, losses: list, step: float, epoch: float,
                  t: float) -> None:
        k = len(losses)
        steps = np.arange(step - k + 1, step + 1, dtype=np.float64)
        spe = self.steps_per_epoch
        epochs = steps / spe if spe else np.full(k, epoch)
        prev_t = series.times[-1] if series.n else (self._segment_t0 or t)
        times = np.linspace(prev_t, t, k + 1)[1:]
        vals = np.array([float(v) if v is not None else np.nan for v in losses])
        series.extend(steps, epochs, times, vals)

    def metric_names(self) -> list[str]:
        return sorted({name for _, name in self.series})

    def summary(self) -> str:
        """Final (or latest validation) metrics in one short line for the runs list."""
        metrics = self.final_metrics or {
            k: v for k, v in (self.last_metric.get("val") or self.last_metric.get("train")
                              or {}).items()
            if k not in _NOT_METRICS and isinstance(v, (int, float))}
        return ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(metrics.items()) if k != "lr")

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> "RunData":
        """Read a run from disk; one that never ended (the app closed or the runner died) is
        shown as failed, since nothing is driving it any more."""
        from .naming import read_meta

        run = cls(Path(run_dir))
        run.meta = read_meta(run.run_dir)
        for ev in read_events(run.run_dir / "events.jsonl"):
            run.apply(ev)
        if not run.terminal:
            run.status = "failed"
            run.failure = Failure("the run ended without finishing (the app or the training "
                                  "process was closed)",
                                  "resume it from its last checkpoint" if run.resumable
                                  else "start a new run", "crash")
        return run


def _sample_key(ev: Event) -> str:
    if ev.get("kind") == "image" and ev.get("path"):
        # one slot per image series: "samples", "recon", ... (the step prefix varies)
        stem = Path(str(ev["path"])).stem
        parts = [p for p in stem.split("_") if not p.isdigit() and p not in ("step",)]
        return "image:" + ("_".join(parts) or "image")
    return str(ev.get("kind") or "sample")


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def read_events(path: Path) -> list[Event]:
    """Events of a run; a torn last line (the writer was killed mid-write) is skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(ev, dict):
            events.append(ev)
    return events


def append_event(run_dir: Path, ev: Event) -> None:
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(ev) + "\n")


def runs_root(project_path: Path | None, unsaved_key: str | None = None) -> Path:
    """``<project>.runs/`` beside a saved project; for an unsaved one, a folder of its own
    (``unsaved/<key>.runs`` in the app's data folder), so two unsaved projects never share runs."""
    if project_path is not None:
        p = Path(project_path)
        return p.with_name(p.name + ".runs") if p.suffix != ".loom" else \
            p.with_name(p.stem + ".runs")
    base = os.environ.get("LAYERLOOM_DATA_DIR") or os.environ.get("XDG_DATA_HOME") \
        or tempfile.gettempdir()
    root = Path(base) / "layerloom" if not os.environ.get("LAYERLOOM_DATA_DIR") else Path(base)
    return root / "unsaved" / f"{unsaved_key or 'project'}.runs"


def unsaved_key() -> str:
    """A fresh name for an unsaved project's runs folder: the time and a random tail."""
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def move_runs(src: Path, dst: Path, keep: set[str] = frozenset()) -> list[str]:
    """Move the run folders of ``src`` into ``dst`` (a project saved for the first time takes
    its runs along). Runs named in ``keep`` (a live one) stay; a name taken in ``dst`` gets a
    suffix. Returns the names moved."""
    moved = []
    for d in list_runs(src):
        if d.name in keep:
            continue
        dst.mkdir(parents=True, exist_ok=True)
        target = dst / d.name
        i = 1
        while target.exists():
            target = dst / f"{d.name}-{i}"
            i += 1
        shutil.move(str(d), str(target))
        moved.append(target.name)
    try:
        src.rmdir()  # only when empty
    except OSError:
        pass
    return moved


def new_run_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        d = root / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise OSError(f"cannot create a run folder in {root}")


def list_runs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted((d for d in root.iterdir() if (d / "events.jsonl").exists()),
                  key=lambda d: d.name)


def format_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"
