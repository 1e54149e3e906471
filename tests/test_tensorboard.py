"""Every run writes TensorBoard event files in its folder; read back with TensorBoard's own reader.

The curves read back must be the run's own numbers: the train loss at every step (from the metric
records' ``losses``), val metrics at each evaluation, and the hyperparameters in the HParams
plugin. A resumed run's file purges the steps the interrupted segment logged after its checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import templates
from training.runner import run
from training.tensorboard import TensorBoardSink

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="the TensorBoard reader: pip install tensorboard")


def _reader(run_dir: Path):
    acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_run_writes_the_curves_and_hyperparameters(tmp_path: Path) -> None:
    run_dir = tmp_path / "digits.runs" / "run1"
    ev = run(templates.build("mlp-digits"), run_dir, steps=20,
             hyper={"log_every": 5, "eval_every": 10, "lr": 0.003})
    assert ev["event"] == "finished"
    assert list(run_dir.glob("events.out.tfevents.*")), "no event file in the run folder"
    events = _events(run_dir)
    started = next(e for e in events if e["event"] == "started")
    assert started["tensorboard"].startswith("writing TensorBoard files")
    acc = _reader(run_dir)
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/accuracy", "train/lr", "val/loss", "val/accuracy"} <= tags
    losses = [loss for e in events if e["event"] == "metric" and e["split"] == "train"
              for loss in e["losses"]]
    read = acc.Scalars("train/loss")
    assert [s.step for s in read] == list(range(1, 21))
    assert [s.value for s in read] == pytest.approx(losses, rel=1e-6)  # float32 in the file
    val = [(e["step"], e["accuracy"]) for e in events
           if e["event"] == "metric" and e["split"] == "val"]
    assert [(s.step, pytest.approx(s.value, rel=1e-6)) for s in acc.Scalars("val/accuracy")] \
        == val
    # hyperparameters: the HParams plugin's session start holds the run's values
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = acc.PluginTagToContent("hparams")
    start = next(plugin_data_pb2.HParamsPluginData.FromString(c) for c in content.values()
                 if plugin_data_pb2.HParamsPluginData.FromString(c).HasField("session_start_info"))
    hp = start.session_start_info.hparams
    assert hp["lr"].number_value == pytest.approx(0.003)
    assert hp["recipe"].string_value == "classification"
    assert hp["batch_size"].number_value == started["config"]["hyper"]["batch_size"]


def test_resume_purges_the_steps_after_the_checkpoint(tmp_path: Path) -> None:
    """A sink fed the events of a run interrupted at step 8 after a checkpoint at 5, then of its
    resumed segment: TensorBoard shows steps 1-5 from the first file and 6.. from the second."""
    run_dir = tmp_path / "run"
    first = TensorBoardSink(run_dir)
    first.event({"event": "started", "config": {"hyper": {"lr": 0.1}}, "time": 1.0})
    first.event({"event": "metric", "split": "train", "step": 8, "loss": 9.0,
                 "losses": [1.0] * 8, "time": 2.0})
    first.close()
    second = TensorBoardSink(run_dir, resume=True)
    second.event({"event": "started", "config": {"hyper": {"lr": 0.1}}, "time": 3.0})
    second.event({"event": "resumed", "step": 5, "time": 3.0})
    second.event({"event": "metric", "split": "train", "step": 10, "loss": 2.0,
                  "losses": [2.0] * 5, "time": 4.0})
    second.event({"event": "finished", "step": 10, "time": 5.0})
    second.close()
    read = _reader(run_dir).Scalars("train/loss")
    assert [(s.step, s.value) for s in read] == [(i, 1.0) for i in range(1, 6)] + \
        [(i, 2.0) for i in range(6, 11)]


def test_without_the_writer_the_run_says_so_and_trains(tmp_path: Path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # how Python marks "not importable"
    run_dir = tmp_path / "run"
    ev = run(templates.build("mlp-digits"), run_dir, steps=3, hyper={"log_every": 1})
    assert ev["event"] == "finished"
    started = next(e for e in _events(run_dir) if e["event"] == "started")
    assert "pip install tensorboardX" in started["tensorboard"]
    assert not list(run_dir.glob("events.out.tfevents.*"))
