"""The runner's periodic checkpoints: its hooks save between steps every ``checkpoint_every``
steps (the loop train.py copies has no such schedule), after that step's evaluation, never again
at a resumed run's first step, and the run saves its last step once."""

from __future__ import annotations

import pytest

import templates
import training

HYPER = {"log_every": 2, "log_min_s": 0, "eval_every": 4, "checkpoint_every": 4,
         "max_val_samples": 32}


def _run(run_dir, steps: int, resume: bool = False) -> tuple[dict, list[dict]]:
    events: list[dict] = []
    ev = training.run(templates.build("mlp-digits"), run_dir, steps=steps, device="cpu",
                      hyper=HYPER, resume=resume, on_event=events.append)
    return ev, events


@pytest.mark.timeout(120)
def test_the_runner_checkpoints_on_its_schedule_and_not_twice_at_a_resumed_start(tmp_path):
    ev, events = _run(tmp_path / "run", 8)
    assert ev["event"] == "finished", ev
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [4, 8]
    at4 = [(e["event"], e.get("split")) for e in events if e.get("step") == 4
           and e["event"] in ("metric", "checkpoint")]
    assert at4 == [("metric", "train"), ("metric", "val"), ("checkpoint", None)], at4
    ev, events = _run(tmp_path / "run", 14, resume=True)  # from step 8, a multiple of 4
    assert ev["event"] == "finished" and ev["step"] == 14, ev
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [12, 14]
