"""TensorBoard event files for every run, written beside ``events.jsonl`` in the run folder.

``tensorboard --logdir <project>.runs`` then shows each run (named by its folder) with the same
curves as the dashboard: every metric of every record as ``<split>/<metric>`` (``train/loss``
at every step, from the record's ``losses``; ``val/accuracy`` at each evaluation), the config as
text from the start, and, when the run ends, the hyperparameters in the HParams tab against the
last value of each metric.

The records are encoded by :mod:`training.event_file` (scalars and text: a few microseconds
each, where tensorboardX's ``add_scalar`` took ~140 us, ~10% of a fast run); tensorboardX (a
dependency: protobuf and numpy only; no TensorFlow, no TensorBoard server; the viewer is the
``tensorboard`` extra) makes only the HParams summaries, once, when the run ends, and is never
imported while it trains. Metric events are kept as they come and encoded in one batch when the
file is next flushed (every FLUSH_SECS, and at any other event), in the training thread, the
per-step losses of them all as arrays (~0.3 us a loss, an eighth of building each record). Without
tensorboardX (an install without dependencies) a run trains as before: :class:`TensorBoardSink`
says so in the ``started`` event (``"tensorboard"``) with the install hint, once, and writes
nothing.

A resumed run purges, in TensorBoard's view, the steps after its checkpoint that the interrupted
segment had logged (``purge_step``), so a resumed curve has no doubled tail.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .event_file import EventFile, ScalarRecords, event, record, text_value

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
        self._file: EventFile | None = None
        self._scalars = ScalarRecords()
        self._out: list[bytes] = []  # framed records not yet written
        self._metrics: list[Mapping[str, Any]] = []  # metric events not yet encoded
        self._purge: int | None = None
        self._config: dict[str, Any] = {}
        self._last: dict[str, float] = {}
        self.error: str | None = None
        self._t_flush = time.monotonic()
        self._end: dict[str, Any] | None = None  # the terminal event: HParams in close()

    # -- the events --------------------------------------------------------------------------
    def event(self, ev: dict[str, Any]) -> None:
        """Record one event, in the caller's thread. A metric event is only kept (the caller
        must not change it after): the kept ones are encoded together when the file is next
        flushed, every FLUSH_SECS or at the next other event (a start, an end, a resume).

        Why batches: between two train records the steps fill the CPU's caches with tensors,
        so the encoder's Python ran cold each time, ~100 us a record inside a fast run
        (~1% of a 1 ms step) against ~25 us when records are encoded one after the other.
        Not on a thread of its own, as it once was: under load a writer thread that holds the
        GIL is preempted as often as any, and the training thread then waits for the GIL for a
        whole time slice (measured: ~10% on the loaded 2-core VM). The HParams summaries, the
        one costly part (importing tensorboardX), are made in :meth:`close`, after the run's
        terminal event is out. A failure to write (a full disk) turns the sink off, never the
        run."""
        kind = ev.get("event")
        if kind == "started":
            ev["tensorboard"] = (f"writing TensorBoard files to {self.run_dir}" if self.enabled
                                 else f"no TensorBoard files: {INSTALL_HINT}")
        if not self.enabled or kind not in self.RECORDED:
            return
        try:
            if kind == "metric":
                self._metrics.append(ev)
                if time.monotonic() - self._t_flush < FLUSH_SECS:
                    return
            self._encode_metrics()
            if kind != "metric":
                self._event(ev)
            self._write()
        except Exception as err:  # noqa: BLE001 - TensorBoard files are a convenience
            self._fail(err)

    def _encode_metrics(self) -> None:
        """The kept metric events' records: each event's other metrics as it comes, and the
        per-step losses of them all as one series a tag (:meth:`ScalarRecords.encode_series`:
        ~0.2 us a loss, where one by one they cost ~2 us, ~0.2% of a 1 ms step)."""
        kept, self._metrics = self._metrics, []
        series: dict[str, list[tuple[np.ndarray, np.ndarray, float]]] = {}
        for ev in kept:
            self._metric(ev, series)
        for tag, parts in series.items():
            values, steps = np.concatenate([v for v, _, _ in parts]), \
                np.concatenate([s for _, s, _ in parts])
            walls = np.concatenate([np.full(len(v), w) for v, _, w in parts])
            self._out.append(self._scalars.encode_series(tag, values, steps, walls))

    RECORDED = frozenset({"started", "resumed", "metric", "finished", "stopped", "failed"})

    def _write(self) -> None:
        """Write what is framed and flush the file."""
        self._t_flush = time.monotonic()
        if self._file is None:
            return
        if self._out:
            self._file.write_records(b"".join(self._out))
            self._out.clear()
        self._file.flush()

    def _fail(self, err: Exception) -> None:
        self.enabled = False
        self.error = f"{type(err).__name__}: {err}"
        self._out.clear()
        self._metrics.clear()

    def _event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "started":
            self._config = dict(ev.get("config") or {})
            if not self.resume:
                self._text("config", "```\n" + json.dumps(self._config, indent=1,
                                                          default=str) + "\n```", ev)
            return
        if kind == "resumed" and self._file is None and self.resume:
            self._purge = int(ev.get("step") or 0) + 1
        elif kind in ("finished", "stopped", "failed"):
            self._end = dict(ev)

    def _metric(self, ev: Mapping[str, Any],
                series: dict[str, list[tuple[np.ndarray, np.ndarray, float]]]) -> None:
        """One metric event: its losses go to ``series`` (a non-finite one, on which the run
        fails, is left out), its other numbers are encoded now."""
        split = str(ev.get("split") or "train")
        step = int(ev.get("step") or 0)
        wall = float(ev.get("time") or time.time())
        self._open()
        losses = ev.get("losses")
        if isinstance(losses, (list, tuple)) and losses:
            tag = f"{split}/loss"
            try:
                values = np.asarray(losses, dtype=np.float64).reshape(len(losses))
            except (TypeError, ValueError):  # not one number a step: nothing to plot
                values = np.full(len(losses), np.nan)
            finite = np.isfinite(values)  # a non-finite loss (the run fails on it): left out
            steps = np.arange(step - len(losses) + 1, step + 1)
            if finite.any():
                series.setdefault(tag, []).append((values[finite], steps[finite], wall))
                self._last[tag] = float(values[finite][-1])
        out, scalar = self._out, self._scalars.encode
        for key, value in ev.items():
            if key in NOT_METRICS or (key == "loss" and losses):
                continue
            number = _number(value)
            if number is None:
                continue
            tag = f"{split}/{key}"
            out.append(scalar(tag, number, step, wall))
            self._last[tag] = number

    def _hparams(self, ev: Mapping[str, Any]) -> None:
        """The run's hyperparameters against the last value of each metric (HParams tab):
        tensorboardX makes the three summaries (the only protobufs not encoded here), once, as
        the run ends."""
        values = _flat_hparams(self._config)
        if not values or not self._last:
            return
        from tensorboardX.summary import hparams

        self._open()
        wall = float(ev.get("time") or time.time())
        for summary in hparams(values, dict(self._last)):
            self._out.append(record(event(wall, 0, summary_bytes=summary.SerializeToString())))
        self._out.append(record(event(wall, int(ev.get("step") or 0), summary=[text_value(
            "outcome", f"{ev.get('event')} at step {ev.get('step')}")])))

    def _text(self, tag: str, text: str, ev: Mapping[str, Any]) -> None:
        self._open()
        self._out.append(record(event(float(ev.get("time") or time.time()), 0,
                                      summary=[text_value(tag, text)])))

    def _open(self) -> EventFile:
        if self._file is None:
            self._file = EventFile(self.run_dir, purge_step=self._purge)
        return self._file

    def close(self) -> None:
        """The HParams summaries (when the run ended with a terminal event), then write what is
        buffered and close the file (the end of a run)."""
        if self.enabled:
            try:
                self._encode_metrics()  # a run that ended without a terminal event: its curves
                if self._end is not None:
                    self._hparams(self._end)
                self._write()
            except Exception as err:  # noqa: BLE001 - TensorBoard files are a convenience
                self._fail(err)
        self._end = None
        if self._file is not None:
            self._file.close()
            self._file = None


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
