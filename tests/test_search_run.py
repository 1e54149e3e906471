"""Searches end to end (tiny budgets): every strategy, rejection before training, constraints,
stop and resume, the CLI, and the strategies' own logic on hand-made histories."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

import templates
from compiler import generate, load
from compiler.project import Choice, Domain
from training.search.cli import main as search_main
from training.search.samplers import (
    STRATEGIES,
    AgingEvolutionSampler,
    ReinforceSampler,
    hypervolume,
    pareto_front,
)
from training.search.space import resolve
from training.search.study import Search, SearchOptions


def _search(tmp_path, project=None, **kw):
    project = project or templates.build("nas-digits")
    opts = dict(trials=2, steps=3, inline=True, study_dir=tmp_path / "s.search")
    opts.update(kw)
    events: list[dict] = []
    search = Search(project, SearchOptions.of(project, **opts), on_event=events.append)
    return project, search, events


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_runs_a_tiny_search(tmp_path, strategy):
    project, search, events = _search(tmp_path, strategy=strategy)
    result = search.run()
    kinds = [e["event"] for e in events]
    assert kinds[0] == "search_started" and kinds[-1] == "search_finished"
    assert kinds.count("trial_finished") == 2 and kinds.count("front") == 2
    assert len(result.trials) == 2 and result.best is not None
    for t in result.trials:
        assert t["state"] in ("complete", "pruned")
        trained = load(t["project"])  # the file the trial trained is the resolved project
        assert trained.name.endswith(f"trial {t['number']}")
        trained.name = project.name
        assert generate(trained).text == generate(resolve(project, t["choices"])).text
        assert t["params"] > 0 and t["cost"] == t["params"]
    assert any(e["event"] == "trial_metric" and e["split"] == "val" for e in events)


def _conv_digits():
    """A conv net on 8×8 digits whose kernel choice 9 cannot fit: a shape error."""
    from compiler import Project, add_network

    p = Project(name="k")
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 1, 8, 8])
    ids = g.chain(x, ("conv.conv2d", {"out_channels": 4, "kernel_size": 3}, "conv"),
                  ("shape.flatten", {}, "flat"), ("linear.linear", {"out_features": 10}, "fc"),
                  ("io.output", {}, "y"))
    p.training.recipe, p.training.dataset = "classification", "digits"
    p.search.choices.append(Choice(label="k", scope="net", node=ids[1], param="kernel_size",
                                   domain=Domain(kind="values", values=[9])))
    return p


def test_an_invalid_sample_is_rejected_without_training(tmp_path):
    _, search, events = _search(tmp_path, project=_conv_digits(), strategy="random")
    result = search.run()
    assert [t["state"] for t in result.trials] == ["rejected", "rejected"]
    assert "conv" in result.trials[0]["reason"] and "shape" in result.trials[0]["reason"]
    assert not (tmp_path / "s.search" / "trials" / "0" / "run").exists()  # never trained
    assert result.best is None
    assert not any(e["event"] == "trial_metric" for e in events)
    study = optuna.load_study(study_name="layerloom",
                              storage=f"sqlite:///{tmp_path / 's.search' / 'study.db'}")
    assert {t.user_attrs["status"] for t in study.trials} == {"rejected"}  # the strategy knows


def test_constraints_hold(tmp_path):
    limit = 2000  # below most of nas-digits (widths from 4): some pass, some are rejected
    _, search, _ = _search(tmp_path, strategy="random", trials=4, steps=2, max_params=limit)
    result = search.run()
    for t in result.trials:
        if t["state"] == "rejected":
            assert t["params"] > limit and "over the limit" in t["reason"]
        else:
            assert t["params"] <= limit
    assert any(t["state"] == "rejected" for t in result.trials)


@pytest.mark.slow
def test_a_stopped_search_resumes(tmp_path):
    project, search, events = _search(tmp_path, strategy="evolution", trials=2, steps=12)

    def stop_early(ev):
        events.append(ev)
        if ev["event"] == "trial_metric" and ev["step"] >= 4:
            search.stop()

    search.on_event = stop_early
    first = search.run()
    assert first.stopped and first.best is None
    assert first.trials[0]["state"] == "failed" and "resume" in first.trials[0]["reason"]
    ckpt = tmp_path / "s.search" / "trials" / "0" / "run" / "checkpoints" / "latest.pt"
    assert ckpt.exists()
    _, again, events2 = _search(tmp_path, strategy="evolution", trials=2, steps=12)
    second = again.run()
    started = [e for e in events2 if e["event"] == "trial_started"]
    assert started[0]["choices"] == first.trials[0]["choices"]  # the stopped one, again
    assert started[0]["number"] == 1
    resumed = json.loads((tmp_path / "s.search" / "trials" / "1" / "run" / "events.jsonl")
                         .read_text().splitlines()[0])
    assert resumed["event"] == "started" and resumed["start_step"] >= 4
    assert not second.stopped and second.best is not None
    assert sum(t["state"] != "failed" for t in second.trials) == 2


def test_the_cli_writes_the_best_and_the_front(tmp_path, capsys):
    out = tmp_path / "study"
    code = search_main(["nas-digits", "--trials", "2", "--steps", "3", "--strategy", "random",
                        "--inline", "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["best"] is not None
    assert (out / "best.loom").exists()
    for n in summary["front"]:
        arch = load(out / "front" / f"trial-{n}.loom")
        assert arch.search.choices == []


def test_the_cli_exits_1_when_no_trial_succeeds(tmp_path, capsys):
    from compiler.project import save

    path = tmp_path / "k.loom"
    save(_conv_digits(), path)
    code = search_main([str(path), "--trials", "1", "--steps", "2", "--inline", "--events"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert lines[0]["event"] == "search_started" and lines[-1]["best"] is None
    assert (tmp_path / "k.search" / "study.db").exists()


def test_the_cli_refuses_a_project_without_choices(capsys):
    assert search_main(["mlp-digits", "--trials", "1"]) == 2
    assert "no search choices" in capsys.readouterr().err


# -- the strategies' own logic, on hand-made histories ------------------------------------------

SPACE = {"a": optuna.distributions.CategoricalDistribution(["x", "y", "z"]),
         "b": optuna.distributions.IntDistribution(1, 4)}


def _study(history):
    study = optuna.create_study(direction="maximize")
    for params, fitness in history:
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=SPACE, value=fitness,
            user_attrs={"fitness": fitness, "status": "complete"}))
    return study


def test_aging_evolution_mutates_one_decision_of_a_good_recent_parent():
    history = [({"a": "x", "b": 1}, 0.1), ({"a": "y", "b": 2}, 0.9), ({"a": "z", "b": 3}, 0.2),
               ({"a": "x", "b": 4}, 0.3)]
    sampler = AgingEvolutionSampler(SPACE, seed=1, population=4, sample_size=4)
    study = _study(history)
    trial = optuna.trial.create_trial(params={}, distributions={}, value=0.0)
    child = sampler.sample_relative(study, trial, SPACE)
    parent = {"a": "y", "b": 2}  # the tournament of all four picks the best
    assert sum(child[k] != parent[k] for k in SPACE) == 1
    # aging: with a population of 2, the best (second-oldest) has died; a younger one breeds
    young = AgingEvolutionSampler(SPACE, seed=1, population=2, sample_size=2)
    child = young.sample_relative(study, trial, SPACE)
    assert sum(child[k] != {"a": "x", "b": 4}[k] for k in SPACE) == 1


def test_reinforce_moves_probability_towards_rewarded_choices():
    rng = np.random.RandomState(0)
    history = []
    for _ in range(30):
        params = {"a": ["x", "y", "z"][rng.randint(3)], "b": int(rng.randint(1, 5))}
        history.append((params, 1.0 if params["a"] == "z" else 0.0))
    sampler = ReinforceSampler(SPACE, seed=0)
    logits = sampler.policy(_study(history))
    probs = np.exp(logits[0][0]) / np.exp(logits[0][0]).sum()
    assert probs[2] > 0.6 > probs[0]  # 'z', the only rewarded value, is now the likely pick
    untrained = ReinforceSampler(SPACE, seed=0).policy(_study([]))
    assert np.allclose(untrained[0], 0.0)


def test_front_and_hypervolume():
    points = [(0, 0.9, 100.0), (1, 0.8, 50.0), (2, 0.7, 80.0), (3, 0.9, 100.0)]
    assert pareto_front(points, higher_is_better=True) == [0, 1]
    assert pareto_front(points, higher_is_better=False) == [1, 2] or \
        pareto_front(points, higher_is_better=False) == [2]
    hv = hypervolume([(0.9, 100.0), (0.8, 50.0)], ref_cost=200.0)
    assert hv == pytest.approx(0.8 * 50 + 0.9 * 100)


@pytest.mark.slow
def test_a_trial_trains_in_a_child_process_like_the_app(tmp_path):
    """The default path: the runner as ``python -m training.runner``, followed by its events."""
    _, search, events = _search(tmp_path, strategy="random", trials=1, steps=3, inline=False)
    result = search.run()
    assert result.trials[0]["state"] == "complete", result.trials[0]["reason"]
    run = tmp_path / "s.search" / "trials" / "0" / "run"
    assert (run / "model.py").exists() and (run / "stdout.log").stat().st_size > 0
    assert any(e["event"] == "trial_metric" for e in events)


def test_a_killed_search_leaves_trials_that_the_next_one_runs_again(tmp_path):
    import socket

    project, search, _ = _search(tmp_path, strategy="random", trials=1, steps=2)
    study = search.open_study()
    orphan = study.ask(fixed_distributions=search.dists)  # as if its process had been killed
    orphan.set_user_attr("owner", f"{socket.gethostname()}:{2**22 + 12345}")
    _, again, events = _search(tmp_path, strategy="random", trials=1, steps=2)
    result = again.run()
    assert result.trials[0]["number"] == 0 and "interrupted" in result.trials[0]["reason"]
    started = [e for e in events if e["event"] == "trial_started"]
    assert [e["number"] for e in started] == [1]
    assert started[0]["choices"] == again.assignment(orphan.params)
    assert result.best == 1


def test_latency_is_measured_on_this_machine():
    from training.search.evaluate import assess

    arch = resolve(templates.build("nas-digits"), {"width": 16, "depth": 1})
    a = assess(arch, latency=True)
    assert a.ok and a.latency_ms is not None and 0 < a.latency_ms < 1000


def test_pareto_ranks_sort_trials_into_fronts():
    from training.search.samplers import pareto_ranks

    def t(n, m, c):
        return optuna.trial.create_trial(params={}, distributions={}, value=m,
                                         user_attrs={"oriented": m, "cost": c})

    trials = [t(0, 0.9, 100), t(1, 0.8, 10), t(2, 0.7, 50), t(3, 0.6, 60),
              optuna.trial.create_trial(params={}, distributions={}, value=0.0)]
    for i, tr in enumerate(trials):
        tr.number = i
    assert pareto_ranks(trials) == {0: 0, 1: 0, 2: 1, 3: 2, 4: 5}
