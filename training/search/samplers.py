"""The search strategies, each an Optuna sampler, so one study engine keeps the bookkeeping.

Optuna brings TPE, random search and NSGA-II; it has no aging evolution and no REINFORCE
controller, so those two are written here as samplers over the known space. Both are *stateless*:
every sample is recomputed from the study's finished trials (and a seed mixed with the trial
number), so a resumed search, a second worker thread or a second machine on the same storage
continue the same strategy without any state of their own.

Fitness (evolution and the controller's reward) is the trial's ``fitness`` user attribute, which
the study writes: the validation metric oriented so higher is better, times ``cost ** -w`` (the
soft cost term of MnasNet, Tan et al. 2019; ``w = 0`` searches the metric alone). Rejected trials
(shape errors, broken constraints) carry ``status = "rejected"``: evolution never breeds from them
and never proposes them again; the controller is told with the lowest reward seen.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

Space = dict[str, BaseDistribution]
STRATEGIES = ("evolution", "rl", "tpe", "random", "nsga2")
#: Bins a wide integer or a float range is cut into for the controller's policy.
BINS = 8


def fitness_of(trial: FrozenTrial) -> float | None:
    value = trial.user_attrs.get("fitness")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _rng(seed: int, number: int) -> np.random.RandomState:
    return np.random.RandomState((seed * 1_000_003 + number * 7919 + 17) % (2**32 - 1))


def random_value(dist: BaseDistribution, rng: np.random.RandomState) -> Any:
    """A uniform draw from one distribution (log-uniform on a log scale)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[rng.randint(len(dist.choices))]
    if isinstance(dist, IntDistribution):
        if dist.log:
            v = math.exp(rng.uniform(math.log(dist.low), math.log(dist.high + 1)))
            return int(min(dist.high, max(dist.low, math.floor(v))))
        n = (dist.high - dist.low) // dist.step + 1
        return int(dist.low + dist.step * rng.randint(n))
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        return float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
    return float(rng.uniform(dist.low, dist.high))


def mutate_value(dist: BaseDistribution, value: Any, rng: np.random.RandomState) -> Any:
    """A different value of one distribution: another category, or a neighbouring step of a
    range (a width one notch up or down), as the mutations of regularized evolution."""
    if isinstance(dist, CategoricalDistribution):
        others = [c for c in dist.choices if c != value]
        return others[rng.randint(len(others))] if others else value
    if isinstance(dist, IntDistribution):
        if dist.log:
            factor = math.exp(rng.uniform(-0.7, 0.7))
            new = int(round(value * factor))
        else:
            n = (dist.high - dist.low) // dist.step + 1
            jump = max(1, int(round(abs(rng.normal(0, max(1.0, n / 4))))))
            new = value + dist.step * jump * (1 if rng.rand() < 0.5 else -1)
        new = min(dist.high, max(dist.low, new))
        return new if new != value else random_value(dist, rng)
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        new = value * math.exp(rng.normal(0, 0.5))
    else:
        new = value + rng.normal(0, (dist.high - dist.low) / 4)
    return float(min(dist.high, max(dist.low, new)))


class _SpaceSampler(BaseSampler):
    """A sampler over a space known up front (the project's decisions); anything else is drawn
    by a seeded random sampler."""

    def __init__(self, space: Space, seed: int = 0) -> None:
        self.space = dict(space)
        self.seed = seed
        self._fallback = RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> Space:
        return dict(self.space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def _finished(self, study: Study) -> list[FrozenTrial]:
        done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        trials = [t for t in study.get_trials(deepcopy=False, states=done)
                  if set(self.space) <= set(t.params)]
        return sorted(trials, key=lambda t: t.number)


def pareto_ranks(trials: Sequence[FrozenTrial]) -> dict[int, int]:
    """Non-dominated sorting of trials on (oriented metric up, cost down): rank 0 is the front
    of these trials, rank 1 the front once it is removed, and so on. Trials without both figures
    share the last rank."""
    pts = {t.number: (t.user_attrs.get("oriented"), t.user_attrs.get("cost")) for t in trials}
    ok = {n: p for n, p in pts.items() if all(isinstance(v, (int, float)) for v in p)}
    ranks = {n: len(trials) for n in pts}
    level, left = 0, dict(ok)
    while left:
        front = [n for n, (m, c) in left.items()
                 if not any(m2 >= m and c2 <= c and (m2 > m or c2 < c)
                            for n2, (m2, c2) in left.items() if n2 != n)]
        for n in front:
            ranks[n] = level
            del left[n]
        level += 1
    return ranks


class AgingEvolutionSampler(_SpaceSampler):
    """Regularized evolution (Real et al. 2019): the population is the ``population`` most recent
    completed trials (the oldest dies each time a child is born, whatever its fitness); a child is
    a copy of the winner of a tournament of ``sample_size`` random members, with one decision
    mutated. Since a search keeps the front of metric against cost, the tournament is won by the
    best Pareto rank within the population (ties: the higher fitness), as in multi-objective
    evolutionary NAS (LEMONADE, Elsken et al. 2019), so children spread along the front instead
    of crowding one point. Until the population is full, architectures are drawn at random."""

    def __init__(self, space: Space, seed: int = 0, population: int = 10,
                 sample_size: int = 3) -> None:
        super().__init__(space, seed)
        self.population, self.sample_size = max(2, population), max(1, sample_size)

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: Space
                        ) -> dict[str, Any]:
        rng = _rng(self.seed, trial.number)
        finished = self._finished(study)
        seen = {_key({k: t.params[k] for k in self.space}) for t in finished}
        alive = [t for t in finished if t.state == TrialState.COMPLETE
                 and fitness_of(t) is not None][-self.population:]
        if len(alive) < self.population:
            return self._fresh(rng, seen)
        picks = [alive[i] for i in rng.choice(len(alive), min(self.sample_size, len(alive)),
                                               replace=False)]
        rank = pareto_ranks(alive)
        parent = min(picks, key=lambda t: (rank[t.number], -(fitness_of(t) or -math.inf)))
        names = sorted(self.space)
        child = dict(parent.params)
        for _ in range(20):  # a child not tried before, when the space still has one nearby
            child = {k: parent.params[k] for k in self.space}
            name = names[rng.randint(len(names))]
            child[name] = mutate_value(self.space[name], child[name], rng)
            if _key(child) not in seen:
                break
        return child

    def _fresh(self, rng: np.random.RandomState, seen: set[str]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for _ in range(20):
            params = {k: random_value(d, rng) for k, d in self.space.items()}
            if _key(params) not in seen:
                break
        return params


class ReinforceSampler(_SpaceSampler):
    """A REINFORCE controller (Williams 1992, as used for NAS by Zoph & Le 2017), kept small: a
    policy that picks each decision in turn from softmax logits conditioned on the previous
    decision's pick (a table in place of the paper's LSTM). After each trial, the log-probability
    of its picks is pushed up by ``lr * (reward - baseline) / scale``; the baseline is an
    exponential moving average of rewards (decay ``beta``), ``scale`` one of ``|reward -
    baseline|``, so the step does not depend on the metric's units. The policy is replayed from
    the finished trials each time (stateless; see the module docstring)."""

    def __init__(self, space: Space, seed: int = 0, lr: float = 0.6, beta: float = 0.8) -> None:
        super().__init__(space, seed)
        self.lr, self.beta = lr, beta
        self.names = list(space)
        self.options = [self._options(space[n]) for n in self.names]

    @staticmethod
    def _options(dist: BaseDistribution) -> list[Any]:
        """The policy's actions for one decision: categories, every integer of a short range, or
        the edges of BINS bins of a wide or continuous one."""
        if isinstance(dist, CategoricalDistribution):
            return list(dist.choices)
        if isinstance(dist, IntDistribution) and not dist.log and \
                (dist.high - dist.low) // dist.step + 1 <= 16:
            return list(range(dist.low, dist.high + 1, dist.step))
        lo, hi = float(dist.low), float(dist.high)  # type: ignore[attr-defined]
        if dist.log:  # type: ignore[attr-defined]
            edges = np.exp(np.linspace(math.log(lo), math.log(hi), BINS + 1))
        else:
            edges = np.linspace(lo, hi, BINS + 1)
        return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def _action(self, i: int, value: Any) -> int:
        opts = self.options[i]
        if not isinstance(opts[0], tuple):
            return opts.index(value) if value in opts else 0
        for j, (_, b) in enumerate(opts):
            if value <= b:
                return j
        return len(opts) - 1

    def _value(self, i: int, action: int, rng: np.random.RandomState) -> Any:
        opt = self.options[i][action]
        if not isinstance(opt, tuple):
            return opt
        dist = self.space[self.names[i]]
        lo, hi = opt
        if isinstance(dist, IntDistribution):
            v = int(round(rng.uniform(lo, hi)))
            v = dist.low + ((v - dist.low) // dist.step) * dist.step
            return int(min(dist.high, max(dist.low, v)))
        return float(rng.uniform(lo, hi))

    def policy(self, study: Study) -> list[np.ndarray]:
        """Logits per decision: ``logits[i][prev, action]`` (row 0 for the first decision)."""
        logits = [np.zeros((len(self.options[i - 1]) if i else 1, len(self.options[i])))
                  for i in range(len(self.names))]
        baseline: float | None = None
        scale = 1e-3
        rewards_seen: list[float] = []
        for t in self._finished(study):
            reward = fitness_of(t)
            if reward is None:  # rejected, failed or pruned: the worst reward so far
                if t.state == TrialState.COMPLETE or not rewards_seen:
                    continue
                reward = min(rewards_seen)
            rewards_seen.append(reward)
            if baseline is None:
                baseline = reward
                continue
            adv = reward - baseline
            scale = self.beta * scale + (1 - self.beta) * abs(adv)
            step = self.lr * adv / max(scale, 1e-6)
            prev = 0
            for i, name in enumerate(self.names):
                a = self._action(i, t.params[name])
                row = logits[i][prev]
                p = _softmax(row)
                grad = -p
                grad[a] += 1.0
                row += step * grad
                prev = a
            baseline = self.beta * baseline + (1 - self.beta) * reward
        return logits

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: Space
                        ) -> dict[str, Any]:
        rng = _rng(self.seed, trial.number)
        logits = self.policy(study)
        out: dict[str, Any] = {}
        prev = 0
        for i, name in enumerate(self.names):
            p = _softmax(logits[i][prev])
            a = int(rng.choice(len(p), p=p))
            out[name] = self._value(i, a, rng)
            prev = a
        return out


def _softmax(row: np.ndarray) -> np.ndarray:
    z = np.exp(np.clip(row - row.max(), -50, 0))
    return z / z.sum()


def make_sampler(strategy: str, space: Space, seed: int, trials: int) -> BaseSampler:
    """The sampler of a strategy name (ValueError listing the names for an unknown one)."""
    if strategy == "evolution":
        pop = max(4, min(20, trials // 3))
        return AgingEvolutionSampler(space, seed, population=pop, sample_size=max(2, pop // 3))
    if strategy == "rl":
        return ReinforceSampler(space, seed)
    if strategy == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 4)),
                                          multivariate=True)
    if strategy == "random":
        return RandomSampler(seed=seed)
    if strategy == "nsga2":
        pop = max(4, min(20, trials // 3))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=pop)
    raise ValueError(f"unknown strategy '{strategy}'; use one of {', '.join(STRATEGIES)}")


def pareto_front(points: Sequence[tuple[int, float, float]], higher_is_better: bool
                 ) -> list[int]:
    """Trial numbers not dominated in (metric, cost): none is at least as good in both and
    better in one. ``points`` are (number, metric, cost); cost is always minimised."""
    sign = 1.0 if higher_is_better else -1.0
    front = []
    for n, m, c in points:
        dominated = any((sign * m2 >= sign * m and c2 <= c) and (sign * m2 > sign * m or c2 < c)
                        for n2, m2, c2 in points if n2 != n)
        twin = any(m2 == m and c2 == c and n2 < n for n2, m2, c2 in points)  # keep the first
        if not dominated and not twin:
            front.append(n)
    return sorted(front)


def hypervolume(points: Sequence[tuple[float, float]], ref_cost: float,
                ref_metric: float = 0.0) -> float:
    """Area dominated by (metric up, cost down) points above ``ref_metric`` and below
    ``ref_cost``: the usual figure of how good a whole front is (higher is better)."""
    pts = sorted((c, m) for m, c in points if c < ref_cost and m > ref_metric)
    area, best = 0.0, ref_metric
    # sweep cost upwards: between two costs the region reaches the best metric of any cheaper point
    for i, (c, m) in enumerate(pts):
        best = max(best, m)
        nxt = pts[i + 1][0] if i + 1 < len(pts) else ref_cost
        area += (nxt - c) * (best - ref_metric)
    return area
