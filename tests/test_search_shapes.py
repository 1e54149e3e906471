"""The nas-shapes search template's trial budget: a short proxy run that validates once, at its
end (earlier evaluations were near chance and let successive halving prune on noise), under a
warmed-up cosine schedule; a longer --steps budget evaluates, and can prune, every 80 steps."""

from __future__ import annotations

import json

import pytest

import templates
from training.search.study import Search, SearchOptions


def _val_steps(run_dir) -> list[int]:
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return [e["step"] for e in events if e["event"] == "metric" and e["split"] == "val"]


def test_the_template_budget_evaluates_once_at_the_end_of_its_steps():
    p = templates.build("nas-shapes")
    hyper = p.training.hyper
    assert p.search.steps == 80 and hyper["eval_every"] == p.search.steps
    assert hyper["schedule"] == "cosine" and 0 < hyper["warmup_steps"] < p.search.steps


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_nas_shapes_trial_trains_in_a_child_and_validates_only_at_its_end(tmp_path):
    project = templates.build("nas-shapes")
    opts = SearchOptions.of(project, trials=1, steps=12, strategy="random",
                            study_dir=tmp_path / "s.search")
    events: list[dict] = []
    result = Search(project, opts, on_event=events.append).run()
    trial = result.trials[0]
    assert trial["state"] == "complete", trial["reason"]
    assert 0.0 <= trial["metric"] <= 1.0 and trial["flops"] > 0
    run = tmp_path / "s.search" / "trials" / "0" / "run"
    assert _val_steps(run) == [12]
    config = json.loads((run / "config.json").read_text())
    assert config["hyper"]["schedule"] == "cosine" and config["hyper"]["checkpoint_every"] == 80
    assert [e["step"] for e in events if e["event"] == "trial_metric"
            and e["split"] == "val"] == [12]
