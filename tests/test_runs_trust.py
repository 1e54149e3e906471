"""Runs that cannot mislead: kill -9 and resume, damaged or foreign checkpoints, failure kinds,
divergence, and --resume that refuses when there is nothing to resume."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from helpers import mlp_project

import training
from compiler import Project, save
from training.engine import (
    DAMAGED_HINT,
    DIVERGED_HINT,
    FOREIGN_HINT,
    NAN_HINT,
    DivergenceWatch,
    TrainingFault,
    read_checkpoint,
    state_checksum,
)
from training.runner import _classify, outcome

ROOT = Path(__file__).resolve().parents[1]


def digits_mlp(hidden: int = 16, **hyper) -> Project:
    p = mlp_project(hidden)
    p.training.recipe, p.training.dataset = "classification", "digits"
    p.training.hyper.update(hyper)
    return p


def events_of(run_dir: Path) -> list[dict]:
    out = []
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # the last line of a killed run may be cut short
            pass
    return out


def step_losses(events: list[dict]) -> dict[int, list[float]]:
    """Every train loss logged for each step, in order (a resumed run logs some steps twice)."""
    out: dict[int, list[float]] = {}
    for e in events:
        if e["event"] == "metric" and e["split"] == "train":
            for i, v in enumerate(e["losses"]):
                out.setdefault(e["step"] - len(e["losses"]) + 1 + i, []).append(v)
    return out


@pytest.fixture
def one_thread():
    """One thread in every segment of a run, so that the losses compare bit for bit."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    ev = training.run(digits_mlp(), tmp_path / "run", steps=3, device="cpu")
    assert ev["event"] == "finished"
    return tmp_path / "run" / "checkpoints" / "latest.pt"


# ----------------------------------------------------------------------------------------------
# 1. kill -9, then resume: the losses equal those of an uninterrupted run
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_resume_after_kill_9_is_bit_exact(tmp_path, one_thread):
    total, hyper = 40, {"log_every": 1, "log_min_s": 0, "eval_every": 10,
                        "checkpoint_every": 10, "batch_size": 64}
    project_file = tmp_path / "mlp.loom"
    save(digits_mlp(**hyper), project_file)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.runner", "--project", str(project_file), "--run-dir",
         str(run_dir), "--steps", str(total), "--device", "cpu", "--threads", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    ckpt_step, before_kill = None, []
    for line in proc.stdout:
        ev = json.loads(line)
        before_kill.append(ev)
        if ev["event"] == "checkpoint" and ev["step"] >= 20:
            ckpt_step = ev["step"]
        if ckpt_step and ev["event"] == "metric" and ev["step"] >= ckpt_step + 5:
            break
    proc.kill()  # SIGKILL: no checkpoint, no terminal event
    assert proc.wait(60) == -9 and ckpt_step is not None
    assert outcome(events_of(run_dir), -9)["kind"] == "crash"

    resumed = training.run(project_file, run_dir, steps=total, device="cpu", resume=True)
    full = training.run(project_file, tmp_path / "full", steps=total, device="cpu")
    assert resumed["event"] == full["event"] == "finished"
    got, want = step_losses(events_of(run_dir)), step_losses(events_of(tmp_path / "full"))
    assert sorted(got) == sorted(want) == list(range(1, total + 1))
    assert [got[s][-1] for s in sorted(got)] == [want[s][0] for s in sorted(want)]
    killed = step_losses(before_kill)  # what the killed child said, replayed after the resume
    replayed = [s for s in killed if s > ckpt_step]
    assert len(replayed) >= 5 and all(killed[s][0] == got[s][-1] for s in replayed)


# ----------------------------------------------------------------------------------------------
# 2. checksums: a flipped byte never loads as a different state
# ----------------------------------------------------------------------------------------------


def _data_records(path: Path) -> list[tuple[int, int]]:
    """(offset, size) in the file of each stored tensor's bytes (torch writes them uncompressed)."""
    raw = path.read_bytes()
    out = []
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if "/data/" in info.filename and info.file_size >= 16:
                name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:
                                                               info.header_offset + 30])
                out.append((info.header_offset + 30 + name_len + extra_len, info.file_size))
    return out


def test_checksum_is_stored_and_round_trips(checkpoint):
    state = torch.load(checkpoint, weights_only=True)  # still one plain dict
    assert state["checksum"].startswith("sha256:") and state["format"] == 2
    stored = state.pop("checksum")
    assert stored == state_checksum(state)
    assert read_checkpoint(str(checkpoint))["step"] == 3


def test_flipped_byte_in_a_tensor_is_a_damaged_checkpoint(checkpoint, tmp_path):
    records = _data_records(checkpoint)
    assert records
    raw = bytearray(checkpoint.read_bytes())
    offset, size = max(records, key=lambda r: r[1])
    raw[offset + size // 2] ^= 0x01
    checkpoint.write_bytes(bytes(raw))
    with pytest.raises(TrainingFault) as err:
        read_checkpoint(str(checkpoint))
    assert err.value.kind == "checkpoint" and "damaged" in err.value.reason
    assert err.value.hint == DAMAGED_HINT
    # and a resumed run fails with that, before a single step: no NaN blamed on the lr
    ev = training.run(digits_mlp(), checkpoint.parents[1], steps=6, device="cpu", resume=True)
    assert ev["event"] == "failed" and ev["kind"] == "checkpoint"
    assert ev["hint"] == DAMAGED_HINT and "learning rate" not in ev["hint"]


def test_no_flipped_byte_loads_as_a_different_state(checkpoint):
    original = checkpoint.read_bytes()
    want = state_checksum({k: v for k, v in torch.load(checkpoint, weights_only=True).items()
                           if k != "checksum"})
    positions = sorted(set(range(0, len(original), max(1, len(original) // 150)))
                       | {o + s // 2 for o, s in _data_records(checkpoint)})
    detected = 0
    for pos in positions:
        raw = bytearray(original)
        raw[pos] ^= 0x10
        checkpoint.write_bytes(bytes(raw))
        try:
            state = read_checkpoint(str(checkpoint))
        except TrainingFault as err:
            assert err.kind == "checkpoint" and err.hint in (DAMAGED_HINT, FOREIGN_HINT), pos
            assert "weights_only" not in err.reason, err.reason
            detected += 1
        else:  # loaded: only when the byte was padding that changes nothing
            assert state_checksum(state) == want, pos
    assert detected >= len(positions) // 2, (detected, len(positions))


def test_checksum_key_damaged_or_removed_is_refused(checkpoint):
    state = torch.load(checkpoint, weights_only=True)
    del state["checksum"]
    torch.save(state, checkpoint)
    with pytest.raises(TrainingFault, match="checksum is missing"):
        read_checkpoint(str(checkpoint))
    del state["format"]  # written before checksums existed: still resumes
    torch.save(state, checkpoint)
    assert read_checkpoint(str(checkpoint))["step"] == 3


# ----------------------------------------------------------------------------------------------
# 3. empty, foreign and mismatched checkpoints say what they are
# ----------------------------------------------------------------------------------------------


class NotTensors:
    """Something a weights-only load refuses to unpickle."""


def _resume_fails(run_dir: Path, project: Project | None = None) -> dict:
    ev = training.run(project or digits_mlp(), run_dir, steps=6, device="cpu", resume=True)
    assert ev["event"] == "failed" and ev["kind"] == "checkpoint", ev
    return ev


def test_zero_byte_checkpoint_is_a_clear_message(checkpoint):
    checkpoint.write_bytes(b"")
    ev = _resume_fails(checkpoint.parents[1])
    assert "empty (0 bytes)" in ev["reason"] and str(checkpoint) in ev["reason"]
    assert "EOFError" not in ev["reason"] and ev["hint"] == DAMAGED_HINT


def test_truncated_and_garbage_checkpoints_are_damaged(checkpoint):
    raw = checkpoint.read_bytes()
    for bad in (raw[: len(raw) // 2], b"\x00" * 100, b"not a checkpoint at all\n"):
        checkpoint.write_bytes(bad)
        ev = _resume_fails(checkpoint.parents[1])
        assert "damaged" in ev["reason"] and ev["hint"] == DAMAGED_HINT
        assert "weights_only" not in ev["reason"], ev["reason"]


def test_refused_pickle_is_not_a_layerloom_checkpoint(checkpoint):
    torch.save({"step": 1, "payload": NotTensors()}, checkpoint)
    ev = _resume_fails(checkpoint.parents[1])
    assert "is not a Layerloom checkpoint" in ev["reason"] and "NotTensors" in ev["reason"]
    assert ev["hint"] == FOREIGN_HINT
    text = ev["reason"] + ev["hint"]
    assert "weights_only" not in text and "weights only" not in text.lower()
    torch.save([1, 2, 3], checkpoint)  # plain data, but no training state
    assert "not a Layerloom checkpoint" in _resume_fails(checkpoint.parents[1])["reason"]


def test_checkpoint_of_another_model_does_not_fit(checkpoint):
    ev = _resume_fails(checkpoint.parents[1], digits_mlp(hidden=32))
    assert "does not fit this model" in ev["reason"]


# ----------------------------------------------------------------------------------------------
# 4. each failure kind has its own reason and hint
# ----------------------------------------------------------------------------------------------


def _raise(err: BaseException) -> dict:
    try:
        raise err
    except BaseException as caught:  # noqa: BLE001 - exactly what the runner does
        return _classify(caught, 7)


def test_failure_kinds_and_hints():
    cpu = _raise(RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                              "can't allocate memory: you tried to allocate 8000000000000 bytes."))
    assert cpu["kind"] == "oom" and "batch size" in cpu["hint"] and "model smaller" in cpu["hint"]
    assert "out of memory at step 7" in cpu["reason"]
    assert _raise(MemoryError())["kind"] == "oom"
    assert _raise(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))["kind"] \
        == "oom"
    syntax = _raise(SyntaxError("unterminated string literal"))
    assert syntax["kind"] == "codegen" and "bug" in syntax["hint"] and "report" in syntax["hint"]
    shapes = _raise(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 5x2)"))
    assert shapes["kind"] == "error" and "shapes" in shapes["hint"]
    other = _raise(ZeroDivisionError("division by zero"))
    assert other["kind"] == "error" and "shapes" not in other["hint"] and "bug" in other["hint"]
    crash = outcome([{"event": "started", "step": 0}], -9)
    assert crash["kind"] == "crash"
    hints = [cpu["hint"], syntax["hint"], shapes["hint"], other["hint"], crash["hint"],
             DAMAGED_HINT, NAN_HINT, DIVERGED_HINT]
    assert len(set(hints)) == len(hints)


def test_cpu_out_of_memory_through_the_runner(tmp_path, monkeypatch):
    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate "
                           "1099511627776 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(training.runner, "fit", no_memory)
    ev = training.run(digits_mlp(), tmp_path, steps=2, device="cpu")
    assert ev["event"] == "failed" and ev["kind"] == "oom", ev
    assert "shapes" not in ev["hint"] and "batch size" in ev["hint"]


# ----------------------------------------------------------------------------------------------
# 5. divergence is said, in a warning event and in the finished event
# ----------------------------------------------------------------------------------------------


def test_divergence_watch_rules():
    w = DivergenceWatch()
    assert w.update(1, [2.3, 2.2, 50.0, 2.1, 2.0, 60.0, 2.0]) is None  # single spikes
    assert w.update(8, [30.0] * 4) is None  # 4 steps far above: not yet
    warn = w.update(12, [30.0, 1.0])
    assert warn and warn["kind"] == "diverged" and warn["step"] == 12 and warn["since_step"] == 8
    assert w.update(14, [1e6] * 10) is None  # said once
    neg = DivergenceWatch()
    assert neg.update(1, [-5.0] + [30.0] * 10) is None  # under -5 + 9 * 5 = 40
    assert neg.update(12, [41.0] * 5)["step"] == 16


def test_lr_10_warns_that_the_loss_diverged(tmp_path):
    events: list[dict] = []
    ev = training.run(digits_mlp(64), tmp_path, steps=30, device="cpu", on_event=events.append,
                      hyper={"lr": 10.0, "log_every": 5, "eval_every": 30})
    warnings = [e for e in events if e["event"] == "warning"]
    assert ev["event"] in ("finished", "failed"), ev
    assert len(warnings) == 1 and warnings[0]["kind"] == "diverged"
    assert "diverged" in warnings[0]["message"] and warnings[0]["hint"] == DIVERGED_HINT
    if ev["event"] == "finished":
        assert ev["warnings"][0]["message"] == warnings[0]["message"]
    assert any(e["event"] == "warning" for e in events_of(tmp_path))


def test_healthy_run_has_no_warning(tmp_path):
    ev = training.run(digits_mlp(), tmp_path, steps=30, device="cpu",
                      hyper={"lr": 3e-3, "eval_every": 30})
    assert ev["event"] == "finished" and "warnings" not in ev
    assert not any(e["event"] == "warning" for e in events_of(tmp_path))


# ----------------------------------------------------------------------------------------------
# 6. --resume refuses when there is nothing to resume; layerloom train --resume RUN_DIR works
# ----------------------------------------------------------------------------------------------


def test_resume_without_checkpoint_refuses_with_the_path(tmp_path):
    events: list[dict] = []
    ev = training.run(digits_mlp(), tmp_path / "empty", steps=4, resume=True,
                      on_event=events.append)
    assert ev["event"] == "failed" and ev["kind"] == "checkpoint"
    assert "nothing to resume" in ev["reason"]
    assert str(tmp_path / "empty" / "checkpoints" / "latest.pt") in ev["reason"]
    assert [e["event"] for e in events] == ["failed"]  # never started from step 0


def test_cli_stopped_message_names_a_real_flag(tmp_path, monkeypatch, capsys):
    from training import cli

    monkeypatch.setattr(training.runner, "run", lambda *a, **k: {"event": "stopped", "step": 3})
    out = tmp_path / "run"
    assert cli.main(["mlp-digits", "--steps", "5", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"layerloom train --resume {out}" in err and (out / cli.SNAPSHOT).exists()


def test_cli_resume_continues_a_stopped_run_exactly(tmp_path, capsys, one_thread):
    from training import cli
    from training.runner import Control

    project, total = digits_mlp(log_every=1, log_min_s=0, batch_size=64), 12
    full = training.run(project, tmp_path / "full", steps=total, device="cpu")
    control = Control()

    def stop_at_5(ev: dict) -> None:
        if ev["event"] == "metric" and ev["step"] == 5:
            control.stop()

    run_dir = tmp_path / "part"
    assert training.run(project, run_dir, steps=total, device="cpu", control=control,
                        on_event=stop_at_5)["event"] == "stopped"
    assert cli.main(["--resume", str(run_dir), "--quiet"]) == 2  # no project.loom: say so
    assert "no project.loom" in capsys.readouterr().err
    save(project, run_dir / cli.SNAPSHOT)
    assert cli.main(["--resume", str(run_dir), "--device", "cpu", "--quiet"]) == 0
    assert f"finished {total} steps" in capsys.readouterr().out
    got, want = step_losses(events_of(run_dir)), step_losses(events_of(tmp_path / "full"))
    assert full["event"] == "finished" and sorted(got) == list(range(1, total + 1))
    assert [got[s][-1] for s in sorted(got)] == [want[s][0] for s in sorted(want)]
    assert cli.main(["mlp-digits", "--resume", str(tmp_path / "nothing"), "--quiet"]) == 1
    assert "no checkpoint at" in capsys.readouterr().err
