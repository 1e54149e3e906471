"""The hand-written TensorBoard event files (``training.event_file``) read back by TensorBoard's
own reader, and the sink's promise to the training loop: no thread of its own (a GIL holder the
OS preempts stalls the loop) and no tensorboardX import while the run trains.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from training import event_file
from training.event_file import EventFile, ScalarRecords, event, scalar_value, text_value
from training.tensorboard import TensorBoardSink

ROOT = Path(__file__).resolve().parents[1]
event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="the TensorBoard reader: pip install tensorboard")


def _reader(run_dir: Path):
    acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0,
                                                                          "tensors": 0})
    acc.Reload()
    return acc


@pytest.mark.timeout(10)
def test_crc32c_is_castagnoli() -> None:
    """The check value of CRC-32C (RFC 3720), for the pure-Python path and the one in use."""
    assert event_file._crc32c_py(b"123456789") == 0xE3069283
    assert event_file.crc32c(b"123456789") == 0xE3069283
    assert event_file._crc32c_py(b"") == 0


@pytest.mark.timeout(30)
def test_scalars_and_text_read_back_by_tensorboard(tmp_path: Path) -> None:
    f = EventFile(tmp_path)
    scalars = ScalarRecords()
    losses = [2.5, 1.25, 0.625, 1e-7, 3.0e39]  # the last one beyond float32: clamped
    f.write_records(scalars.encode_steps("train/loss", losses, 1, 1000.5))
    f.write_records(scalars.encode("train/lr", 0.001, 5, 1000.5))
    f.write_records(scalars.encode("val/accuracy", 0.75, 300, 1001.0))  # a two-byte step
    f.write([event(1000.0, 0, summary=[text_value("config", "lr: 0.001 — ünïcode")])])
    f.close()
    acc = _reader(tmp_path)
    read = acc.Scalars("train/loss")
    assert [s.step for s in read] == [1, 2, 3, 4, 5]
    assert [s.value for s in read] == pytest.approx([2.5, 1.25, 0.625, 1e-7, 3.4028234e38],
                                                    rel=1e-6)
    assert {s.wall_time for s in read} == {1000.5}
    assert [(s.step, s.value) for s in acc.Scalars("val/accuracy")] == [(300, 0.75)]
    assert acc.Scalars("train/lr")[0].value == pytest.approx(0.001)
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text == "lr: 0.001 — ünïcode"
    assert "text" in acc.PluginAssets("text") or acc.PluginTagToContent("text")


@pytest.mark.timeout(10)
def test_records_carry_checksums_tensorboard_checks(tmp_path: Path) -> None:
    """A flipped byte in a record is refused by the reader (the checksum is real, not zero)."""
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

    data = event(5.0, 3, summary=[scalar_value("x", 1.0)])
    framed = event_file.record(data)
    assert struct.unpack("<Q", framed[:8])[0] == len(data)
    path = tmp_path / "events.out.tfevents.1.host"
    path.write_bytes(framed[:-6] + bytes([framed[-6] ^ 1]) + framed[-5:])
    reader = PyRecordReader_New(str(path))
    with pytest.raises(errors.DataLossError):
        reader.GetNext()


@pytest.mark.timeout(30)
def test_the_sink_starts_no_thread_and_fails_quietly(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    sink = TensorBoardSink(tmp_path / "run")
    sink.event({"event": "started", "config": {"hyper": {"lr": 0.1}}, "time": 1.0})
    sink.event({"event": "metric", "split": "train", "step": 2, "loss": 1.5,
                "losses": [1.0, 2.0], "accuracy": 0.5, "time": 2.0})
    assert set(threading.enumerate()) == before
    sink.close()
    assert [s.value for s in _reader(tmp_path / "run").Scalars("train/loss")] == [1.0, 2.0]
    # a run folder the files cannot be written in: the sink turns off, the run goes on
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    broken = TensorBoardSink(blocked)
    ev = {"event": "started", "config": {}, "time": 1.0}
    broken.event(ev)
    broken.event({"event": "metric", "split": "train", "step": 1, "losses": [1.0],
                  "time": 2.0})
    broken.close()
    assert ev["tensorboard"].startswith("writing") and not broken.enabled and broken.error


PROBE = """
import json, sys, templates
from training.runner import run
seen = []
def on_event(ev):
    if ev["event"] == "metric":
        seen.append("tensorboardX" in sys.modules)
ev = run(templates.build("mlp-digits"), sys.argv[1], steps=20, on_event=on_event,
         hyper={"log_every": 5, "eval_every": 20})
print(json.dumps({"event": ev["event"], "seen": seen}))
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tensorboardx_is_imported_only_when_the_run_ends(tmp_path: Path) -> None:
    """In a fresh process: no record of the run imports tensorboardX (~0.5 s of import in the
    training window); the HParams summaries it makes at the end are in the file."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "run")], cwd=ROOT,
                         capture_output=True, text=True, timeout=280, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["event"] == "finished" and got["seen"] and not any(got["seen"])
    acc = _reader(tmp_path / "run")
    assert acc.PluginTagToContent("hparams")
    assert [s.step for s in acc.Scalars("train/loss")] == list(range(1, 21))


@pytest.mark.timeout(30)
def test_metric_records_are_encoded_in_batches_at_each_flush(tmp_path: Path, monkeypatch) -> None:
    """Metric events wait (encoding them one by one between steps ran cold, ~4x slower) and are
    written, in order, when FLUSH_SECS have passed or when any other event comes; a run that
    ends without a terminal event still gets its curves at close."""
    import training.tensorboard as tb

    def metric(step: int) -> dict:
        return {"event": "metric", "split": "train", "step": step, "losses": [float(step)],
                "accuracy": step / 10, "time": float(step)}

    run = tmp_path / "run"
    sink = TensorBoardSink(run)
    sink.event({"event": "started", "config": {}, "time": 0.0})
    for step in (1, 2, 3):
        sink.event(metric(step))
    assert "train/loss" not in _reader(run).Tags()["scalars"], "held until the next flush"
    sink.event({"event": "finished", "step": 3, "time": 4.0})
    acc = _reader(run)  # before close: the terminal event wrote and flushed them
    assert [(s.step, s.value) for s in acc.Scalars("train/loss")] == [(1, 1.0), (2, 2.0),
                                                                       (3, 3.0)]
    assert [s.step for s in acc.Scalars("train/accuracy")] == [1, 2, 3]
    sink.close()

    monkeypatch.setattr(tb, "FLUSH_SECS", 0.0)  # every metric is due at once
    due = TensorBoardSink(tmp_path / "due")
    due.event(metric(7))
    assert [s.step for s in _reader(tmp_path / "due").Scalars("train/loss")] == [7]
    due.close()

    monkeypatch.setattr(tb, "FLUSH_SECS", 1e9)
    cut = TensorBoardSink(tmp_path / "cut")  # no started, no terminal event: close writes them
    cut.event(metric(5))
    cut.close()
    assert [s.step for s in _reader(tmp_path / "cut").Scalars("train/loss")] == [5]


@pytest.mark.timeout(30)
def test_a_series_is_encoded_as_arrays_byte_for_byte_as_one_by_one(tmp_path: Path) -> None:
    """``encode_series`` (a flush's losses, as arrays) writes the bytes the per-record loop
    writes: across the step sizes a varint changes at (127/128, 16383/16384), step 0 (no step
    field), values beyond float32 (clamped) and wall times a record apart; TensorBoard reads
    them back."""
    scalars = ScalarRecords()
    steps = [0, *range(100, 140), *range(16370, 16400), 2_097_151, 2_097_152]
    values = [(-1) ** i * (i + 0.37) / 7 for i in range(len(steps))]
    values[3], values[4] = 3.0e39, -1.0e40
    walls = [1000.0 + i // 10 for i in range(len(steps))]
    assert len(steps) >= event_file._SERIES_MIN, "long enough to take the array path"
    def one_by_one(n: int) -> bytes:
        return b"".join(scalars.encode_steps("train/loss", (v,), s, w)
                        for v, s, w in zip(values[:n], steps[:n], walls[:n], strict=True))

    assert scalars.encode_series("train/loss", values, steps, walls) == one_by_one(len(steps))
    n = event_file._SERIES_MIN - 1  # too few for arrays: the loop's path, the same bytes
    assert scalars.encode_series("train/loss", values[:n], steps[:n], walls[:n]) == one_by_one(n)
    f = EventFile(tmp_path)
    f.write_records(scalars.encode_series("train/loss", values, steps, walls))
    f.close()
    read = _reader(tmp_path).Scalars("train/loss")
    assert [s.step for s in read] == steps
    assert [s.wall_time for s in read] == walls
    expect = [max(-3.4028234e38, min(3.4028234e38, v)) for v in values]
    assert [s.value for s in read] == pytest.approx(expect, rel=1e-6)


@pytest.mark.timeout(30)
def test_a_flush_writes_every_finite_loss_of_its_records_in_order(tmp_path: Path) -> None:
    """The sink batches the losses of all the records since its last flush into one series:
    each at its own step and its record's wall time, a non-finite one (the run fails on it) left
    out, the other metrics beside them."""
    sink = TensorBoardSink(tmp_path / "run")
    sink.event({"event": "started", "config": {}, "time": 1.0})
    sink.event({"event": "metric", "split": "train", "step": 40, "losses": [0.5] * 40,
                "accuracy": 0.25, "time": 2.0})
    sink.event({"event": "metric", "split": "train", "step": 43,
                "losses": [0.75, float("nan"), 0.125], "time": 3.0})
    sink.event({"event": "finished", "step": 43, "time": 4.0})
    sink.close()
    acc = _reader(tmp_path / "run")
    read = acc.Scalars("train/loss")
    assert [s.step for s in read] == [*range(1, 41), 41, 43]
    assert [s.value for s in read] == [0.5] * 40 + [0.75, 0.125]
    assert [s.wall_time for s in read] == [2.0] * 40 + [3.0, 3.0]
    assert [(s.step, s.value) for s in acc.Scalars("train/accuracy")] == [(40, 0.25)]
