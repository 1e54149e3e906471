"""The search strategies' own logic, on hand-made histories and a cheap synthetic objective:
aging evolution (one mutation of a living parent, no repeats, the oldest dies, the front wins
its tournaments), the REINFORCE controller (moves toward what is rewarded), and both against
random search on a two-objective function shaped like the digits space (accuracy against
parameters), where the figure is the hypervolume of the front each finds."""

from __future__ import annotations

import math
import statistics

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

from training.search.samplers import (
    AgingEvolutionSampler,
    ReinforceSampler,
    _key,
    hv_contributions,
    hypervolume,
    latin_design,
    make_sampler,
    mutate_value,
)

WIDTHS = [4, 8, 12, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 256]
SPACE = {"act": CategoricalDistribution(["relu", "gelu", "tanh"]),
         "depth": IntDistribution(1, 3),
         "width": CategoricalDistribution(WIDTHS)}


def _params(p: dict) -> int:
    w, d = p["width"], p["depth"]
    return 64 * w + w + (d - 1) * (w * w + w) + 10 * w + 10


def _accuracy(p: dict) -> float:
    """Saturating in width, a little worse per extra layer of a narrow net, a small offset per
    activation: the shape of the measured digits table, not its numbers."""
    narrow = math.exp(-p["width"] / 10.0) * (1 + 0.4 * (p["depth"] - 1))
    return 0.97 - 0.7 * narrow + {"relu": 0.0, "gelu": 0.004, "tanh": -0.006}[p["act"]]


def _attrs(metric: float, cost: float) -> dict:
    """The user attributes the study writes for a completed trial (see study._tell)."""
    return {"fitness": metric * cost ** -0.07, "oriented": metric, "cost": cost,
            "params": cost, "metric": metric, "status": "complete"}


def _study(history: list[dict], directions: tuple[str, ...] = ("maximize",)) -> optuna.Study:
    study = optuna.create_study(directions=list(directions))
    for params in history:
        m, c = _accuracy(params), float(_params(params))
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=SPACE, values=[m, c][:len(directions)],
            user_attrs=_attrs(m, c)))
    return study


def _next_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    t = optuna.trial.create_trial(params={}, distributions={}, value=0.0)
    t.number = len(study.trials)
    return t


def _changed(a: dict, b: dict) -> int:
    return sum(a[k] != b[k] for k in SPACE)


def _history(seed: int, n: int) -> list[dict]:
    rng = np.random.RandomState(seed)
    out: list[dict] = []
    while len(out) < n:
        p = {"act": ["relu", "gelu", "tanh"][rng.randint(3)], "depth": int(rng.randint(1, 4)),
             "width": WIDTHS[rng.randint(len(WIDTHS))]}
        if p not in out:
            out.append(p)
    return out


@pytest.mark.timeout(30)
def test_evolution_mutates_one_decision_of_a_living_parent_and_never_repeats():
    history = _history(0, 12)
    study = _study(history)
    sampler = AgingEvolutionSampler(SPACE, seed=3, population=5, sample_size=3)
    alive = history[-5:]  # the population: the five most recent
    seen = {_key(p) for p in history}
    for number in range(12, 40):  # many draws: each a fresh tournament and mutation
        trial = _next_trial(study)
        trial.number = number
        child = sampler.sample_relative(study, trial, SPACE)
        assert _key(child) not in seen
        assert any(_changed(child, p) == 1 for p in alive), child
        assert child["width"] in WIDTHS and 1 <= child["depth"] <= 3


@pytest.mark.timeout(30)
def test_evolution_ages_out_the_oldest_even_when_it_is_the_best():
    best = {"act": "gelu", "depth": 1, "width": 256}  # the most accurate, and the oldest
    young = [{"act": "tanh", "depth": 3, "width": 4}, {"act": "tanh", "depth": 3, "width": 8}]
    study = _study([best] + young)
    sampler = AgingEvolutionSampler(SPACE, seed=0, population=2, sample_size=2)
    for number in range(3, 23):
        trial = _next_trial(study)
        trial.number = number
        child = sampler.sample_relative(study, trial, SPACE)
        assert any(_changed(child, p) == 1 for p in young)
        assert _changed(child, best) >= 2  # never bred from the dead
    # with room for all three, the best is alive again and breeds too
    roomy = AgingEvolutionSampler(SPACE, seed=0, population=3, sample_size=3)
    children = []
    for number in range(3, 23):
        trial = _next_trial(study)
        trial.number = number
        children.append(roomy.sample_relative(study, trial, SPACE))
    assert any(_changed(c, best) == 1 for c in children)


@pytest.mark.timeout(30)
def test_the_tournament_is_won_by_the_front_not_by_accuracy_alone():
    """Of a population where the most accurate net is also the largest, a cheap net on the front
    with the larger exclusive hypervolume wins; a dominated net never does."""
    cheap = {"act": "tanh", "depth": 1, "width": 4}
    big = {"act": "gelu", "depth": 1, "width": 256}
    dominated = {"act": "relu", "depth": 3, "width": 256}  # as big as `big`, less accurate
    study = _study([cheap, big, dominated])
    order = AgingEvolutionSampler.preference(study.trials)
    ranked = sorted(study.trials, key=order)
    assert ranked[-1].params == dominated
    contributions = hv_contributions({0: (0.0, 0.0), 1: (1.0, 1.0)})
    assert contributions[0] == pytest.approx(1.0 * 1.0) and contributions[1] == pytest.approx(
        1.0 * 1.0)  # both ends: their slack to the reference (-1, 2)
    assert hv_contributions({0: (0.5, 0.5), 1: (0.4, 0.6)})[1] == 0.0  # dominated


@pytest.mark.timeout(30)
def test_mutation_of_a_number_list_and_the_latin_design_cover_the_range():
    rng = np.random.RandomState(0)
    moves = [abs(WIDTHS.index(mutate_value(SPACE["width"], 64, rng)) - WIDTHS.index(64))
             for _ in range(400)]
    assert 0 not in moves  # always a different value
    assert 0.35 < sum(m <= 2 for m in moves) / len(moves) < 0.9  # mostly local, some far
    assert max(moves) >= 5
    for seed in range(5):
        design = [latin_design(SPACE, seed, 8, i, np.random.RandomState(i)) for i in range(8)]
        strata = sorted(WIDTHS.index(p["width"]) // 2 for p in design)
        assert strata == list(range(8))  # each eighth of the widths once: the ends included
        assert sorted(p["depth"] for p in design).count(1) >= 2


@pytest.mark.timeout(30)
def test_reinforce_moves_toward_the_rewarded_choice():
    """Histories where 'gelu' is much more accurate at the same cost: the controller's policy
    for the first decision (the activation) comes to prefer it."""
    rng = np.random.RandomState(1)
    study = optuna.create_study()
    for _ in range(30):
        p = {"act": ["relu", "gelu", "tanh"][rng.randint(3)], "depth": int(rng.randint(1, 4)),
             "width": WIDTHS[rng.randint(len(WIDTHS))]}
        m = _accuracy(p) + (0.2 if p["act"] == "gelu" else 0.0)
        study.add_trial(optuna.trial.create_trial(params=p, distributions=SPACE, value=m,
                                                  user_attrs=_attrs(m, float(_params(p)))))
    logits = ReinforceSampler(SPACE, seed=0).policy(study)
    probs = np.exp(logits[0][0]) / np.exp(logits[0][0]).sum()
    assert probs[1] > 0.5 and probs[1] > 2 * max(probs[0], probs[2])
    assert np.allclose(ReinforceSampler(SPACE, seed=0).policy(optuna.create_study())[0], 0.0)


def _search_hv(strategy: str, seed: int, trials: int) -> float:
    """Hypervolume (accuracy from 0, log params normalised to the space) of one search of the
    synthetic objective, with the same bookkeeping the study does; a repeated architecture
    costs a trial, as the study's reuse of a twin's result does."""
    multi = strategy == "nsga2"
    study = optuna.create_study(directions=["maximize", "minimize"] if multi else ["maximize"],
                                sampler=make_sampler(strategy, SPACE, seed, trials))
    for _ in range(trials):
        t = study.ask(fixed_distributions=SPACE)
        m, c = _accuracy(t.params), float(_params(t.params))
        for k, v in _attrs(m, c).items():
            t.set_user_attr(k, v)
        study.tell(t, [m, c] if multi else m)
    lo, hi = math.log(_params({"width": 4, "depth": 1})), math.log(_params({"width": 256,
                                                                             "depth": 3}))
    pts = [(t.user_attrs["metric"], (math.log(t.user_attrs["cost"]) - lo) / (hi - lo))
           for t in study.trials]
    return hypervolume(pts, ref_cost=1.0)


@pytest.mark.timeout(60)
def test_evolution_and_reinforce_beat_random_search_on_a_front():
    """Same budget and seeds; measured ~1.06x random's hypervolume each, while the samplers
    before the multi-objective selection, Latin warm-up and front reward gave ~1.01x (evolution)
    and ~0.99x (the controller), which the 2% margin refuses."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seeds, trials = range(6), 20
    hv = {s: statistics.mean(_search_hv(s, seed, trials) for seed in seeds)
          for s in ("random", "evolution", "rl")}
    assert hv["evolution"] > 1.02 * hv["random"] and hv["rl"] > 1.02 * hv["random"], hv
