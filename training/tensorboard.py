"""TensorBoard event files for every run, written beside ``events.jsonl`` in the run folder.

``tensorboard --logdir <project>.runs`` then shows each run (named by its folder) with the same
curves as the dashboard: every metric of every record as ``<split>/<metric>`` (``train/loss``
at every step, from the record's ``losses``; ``val/accuracy`` at each evaluation), the config as
text from the start, and, when the run ends, the hyperparameters in the HParams tab against the
last value of each metric.

The writer is tensorboardX (a dependency: protobuf and numpy only; no TensorFlow, no TensorBoard
server; the viewer is the ``tensorboard`` extra). The sink hands events to its own thread, which
makes the records and lets tensorboardX write them, so a training step neither builds protobufs
nor waits on the disk. Without tensorboardX (an install
without dependencies) a run trains as before: :class:`TensorBoardSink` says so in the ``started``
event (``"tensorboard"``) with the install hint, once, and writes nothing.

A resumed run purges, in TensorBoard's view, the steps after its checkpoint that the interrupted
segment had logged (``purge_step``), so a resumed curve has no doubled tail.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from pathlib import Path
from typing import Any, Mapping

INSTALL_HINT = "pip install tensorboardX to write TensorBoard files"
#: Keys of a metric event that are not metrics.
NOT_METRICS = frozenset({"event", "time", "step", "epoch", "split", "losses"})
#: Seconds between flushes of the event file while a run goes on (a live TensorBoard refreshes
#: about as often).
FLUSH_SECS = 5


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboardX") is not None


class TensorBoardSink:
    """Turns the runner's events into TensorBoard records; call :meth:`event` with each event
    before it is written (it adds the ``tensorboard`` status to the ``started`` event), and
    :meth:`close` at the end of the run."""

    def __init__(self, run_dir: str | Path, resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.enabled = available()
        self._writer: Any = None
        self._purge: int | None = None
        self._config: dict[str, Any] = {}
        self._last: dict[str, float] = {}
        self.error: str | None = None
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # -- the events --------------------------------------------------------------------------
    def event(self, ev: dict[str, Any]) -> None:
        """Record one event. Cheap in the training thread: the status goes into the ``started``
        event at once; the records are made and written on the sink's own thread (a scalar
        costs tens of microseconds of protobuf work, a step can take less than a millisecond).
        A failure to write (a full disk) turns the sink off, never the run."""
        kind = ev.get("event")
        if kind == "started":
            ev["tensorboard"] = (f"writing TensorBoard files to {self.run_dir}" if self.enabled
                                 else f"no TensorBoard files: {INSTALL_HINT}")
        if not self.enabled or kind not in self.RECORDED:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="tensorboard", daemon=True)
            self._thread.start()
        self._queue.put(dict(ev))

    RECORDED = frozenset({"started", "resumed", "metric", "finished", "stopped", "failed"})

    def _work(self) -> None:
        while True:
            ev = self._queue.get()
            if ev is None:
                return
            if not self.enabled:
                continue
            try:
                self._event(ev)
            except Exception as err:  # noqa: BLE001 - TensorBoard files are a convenience
                self.enabled = False
                self.error = f"{type(err).__name__}: {err}"

    def _event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "started":
            self._config = dict(ev.get("config") or {})
            if not self.resume:
                self._text("config", "```\n" + json.dumps(self._config, indent=1,
                                                          default=str) + "\n```", ev)
            return
        if kind == "resumed" and self._writer is None and self.resume:
            self._purge = int(ev.get("step") or 0) + 1
        elif kind == "metric":
            self._metric(ev)
        elif kind in ("finished", "stopped", "failed"):
            self._hparams(ev)

    def _metric(self, ev: Mapping[str, Any]) -> None:
        split = str(ev.get("split") or "train")
        step = int(ev.get("step") or 0)
        wall = ev.get("time")
        writer = self._open()
        losses = ev.get("losses")
        if isinstance(losses, (list, tuple)) and losses:
            first = step - len(losses) + 1
            for i, loss in enumerate(losses):
                if _number(loss) is not None:
                    writer.add_scalar(f"{split}/loss", float(loss), first + i, walltime=wall)
            self._last[f"{split}/loss"] = float(losses[-1])
        for key, value in ev.items():
            if key in NOT_METRICS or (key == "loss" and losses):
                continue
            number = _number(value)
            if number is None:
                continue
            tag = f"{split}/{key}"
            writer.add_scalar(tag, number, step, walltime=wall)
            self._last[tag] = number

    def _hparams(self, ev: Mapping[str, Any]) -> None:
        """The run's hyperparameters against the last value of each metric (HParams tab)."""
        from tensorboardX.summary import hparams

        values = _flat_hparams(self._config)
        if not values or not self._last:
            return
        writer = self._open()
        exp, ssi, sei = hparams(values, {tag: v for tag, v in self._last.items()})
        for summary in (exp, ssi, sei):
            writer.file_writer.add_summary(summary)
        writer.add_text("outcome", f"{ev.get('event')} at step {ev.get('step')}",
                        int(ev.get("step") or 0))

    def _text(self, tag: str, text: str, ev: Mapping[str, Any]) -> None:
        self._open().add_text(tag, text, 0, walltime=ev.get("time"))

    def _open(self) -> Any:
        if self._writer is None:
            from tensorboardX import SummaryWriter

            # The file is named by the second it was made in; a resumed segment started in the
            # same second as the one before would take its name (and its records), so the name
            # ends in nanoseconds too, which also keeps TensorBoard's order chronological.
            self._writer = SummaryWriter(logdir=str(self.run_dir), purge_step=self._purge,
                                         flush_secs=FLUSH_SECS, max_queue=100,
                                         filename_suffix=f".{time.time_ns()}")
        return self._writer

    def close(self) -> None:
        """Write what is queued and close the file (the end of a run)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _flat_hparams(config: Mapping[str, Any]) -> dict[str, bool | str | float | int]:
    """The config's hyperparameters (and recipe, dataset, template) as TensorBoard takes them:
    one level, plain values; lists and dicts as their JSON text, None as 'none'."""
    out: dict[str, bool | str | float | int] = {}
    for key in ("recipe", "dataset", "template"):
        if config.get(key) is not None:
            out[key] = str(config[key])
    for key, value in dict(config.get("hyper") or {}).items():
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif value is None:
            out[key] = "none"
        else:
            out[key] = json.dumps(value, default=str)
    return out


__all__ = ["INSTALL_HINT", "TensorBoardSink", "available"]
