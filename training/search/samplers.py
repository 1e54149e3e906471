"""The search strategies, each an Optuna sampler, so one study engine keeps the bookkeeping.

Optuna brings TPE, random search and NSGA-II; it has no aging evolution and no REINFORCE
controller, so those two are written here as samplers over the known space. Both are *stateless*:
every sample is recomputed from the study's finished trials (and a seed mixed with the trial
number), so a resumed search, a second worker thread or a second machine on the same storage
continue the same strategy without any state of their own.

A search keeps the front of metric against cost, so both judge a trial by its standing on that
front (the ``oriented`` metric and the ``cost`` user attributes the study writes): its Pareto
rank, then its exclusive hypervolume. The trial's ``fitness`` (the metric oriented so higher is
better, times ``cost ** -w``: the soft cost term of MnasNet, Tan et al. 2019) breaks ties, and is
the whole figure for a history without costs. Measured on the digits space (accuracy against
params, same budget and seeds), selecting on fitness alone lost the front's hypervolume to random
search; see ``benchmarks/bench_search.py``. Rejected trials (shape errors, broken constraints)
carry ``status = "rejected"``: evolution never breeds from them and never proposes them again; the
controller is told with the lowest reward seen.
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


def is_ordinal(dist: BaseDistribution) -> bool:
    """A list of three or more numbers (widths, channel counts): its values have an order, so a
    mutation moves to a neighbour rather than anywhere, as a range's would."""
    return isinstance(dist, CategoricalDistribution) and len(dist.choices) > 2 and all(
        isinstance(c, (int, float)) and not isinstance(c, bool) for c in dist.choices)


def _neighbour(ordered: list[Any], value: Any, rng: np.random.RandomState) -> Any:
    """One or (one time in four) two notches up or down an ordered list, turned back at an end."""
    i = ordered.index(value)
    step = 1 if rng.rand() < 0.75 else 2
    j = i + (step if rng.rand() < 0.5 else -step)
    if not 0 <= j < len(ordered):
        j = i - (j - i)
    return ordered[min(len(ordered) - 1, max(0, j))]


def mutate_value(dist: BaseDistribution, value: Any, rng: np.random.RandomState) -> Any:
    """A different value of one distribution: another category, or a neighbouring step of a
    range (a width one notch up or down), as the mutations of regularized evolution. A list of
    numbers moves to a neighbour half the time and to any other value otherwise: local steps
    refine the front, long ones reach its far end within a short search."""
    if isinstance(dist, CategoricalDistribution):
        if is_ordinal(dist) and value in dist.choices and rng.rand() < 0.5:
            return _neighbour(sorted(dist.choices), value, rng)
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


def figures(trial: FrozenTrial) -> tuple[float, float] | None:
    """(oriented metric, cost) of a trial the study scored, or None (rejected, failed, or a
    history without a cost)."""
    m, c = trial.user_attrs.get("oriented"), trial.user_attrs.get("cost")
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
             for v in (m, c))
    return (float(m), float(c)) if ok and float(c) > 0 else None  # type: ignore[arg-type]


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


def normalised(trials: Sequence[FrozenTrial]) -> dict[int, tuple[float, float]]:
    """(metric, log cost) of the scored trials, each scaled to [0, 1] over these trials, so the
    two axes weigh alike whatever the metric's units and however many decades the cost spans."""
    figs = {t.number: f for t in trials if (f := figures(t)) is not None}
    if not figs:
        return {}
    ms = [m for m, _ in figs.values()]
    cs = [math.log(c) for _, c in figs.values()]
    m_lo, m_span = min(ms), (max(ms) - min(ms)) or 1.0
    c_lo, c_span = min(cs), (max(cs) - min(cs)) or 1.0
    return {n: ((m - m_lo) / m_span, (math.log(c) - c_lo) / c_span) for n, (m, c) in figs.items()}


def hv_contributions(points: dict[int, tuple[float, float]],
                     ref: tuple[float, float] = (-1.0, 2.0)) -> dict[int, float]:
    """Exclusive hypervolume of each (metric up, cost down) point: the area that only it
    dominates, against the reference (metric, cost) ``ref``. Dominated points and the later of
    two equal ones get 0; the ends of the front get the slack to the reference, so a search keeps
    pushing the front outwards at both ends. On axes normalised to [0, 1] the default reference
    lies as far beyond the worst point as the front spans (the usual nadir + 1 x range): with
    a slack of 0.1 the cheapest, least accurate end weighed almost nothing, while a front judged
    against accuracy 0 owes much of its area to that end."""
    out = {n: 0.0 for n in points}
    front = sorted(((c, -m, n) for n, (m, c) in points.items()))
    kept: list[tuple[float, float, int]] = []  # cost up, metric up: the staircase
    for c, neg_m, n in front:
        if not kept or -neg_m > kept[-1][1]:
            if kept and kept[-1][0] == c:
                continue
            kept.append((c, -neg_m, n))
    for i, (c, m, n) in enumerate(kept):
        nxt_c = kept[i + 1][0] if i + 1 < len(kept) else ref[1]
        prev_m = kept[i - 1][1] if i else ref[0]
        out[n] = max(0.0, nxt_c - c) * max(0.0, m - prev_m)
    return out


def front_scores(trials: Sequence[FrozenTrial]) -> dict[int, tuple[int, float]]:
    """Per scored trial, (Pareto rank, exclusive hypervolume) among ``trials``: the order in
    which a multi-objective search prefers them (lower rank, then more hypervolume)."""
    scored = [t for t in trials if figures(t) is not None]
    ranks = pareto_ranks(scored)
    hvc = hv_contributions(normalised(scored))
    return {n: (ranks[n], hvc.get(n, 0.0)) for n in ranks}


class AgingEvolutionSampler(_SpaceSampler):
    """Regularized evolution (Real et al. 2019): the population is the ``population`` most recent
    completed trials (the oldest dies each time a child is born, whatever its fitness); a child is
    a copy of the winner of a tournament of ``sample_size`` random members, with one decision
    mutated (see :func:`mutate_value`). An architecture already tried is never proposed again
    (the winner's next untried neighbour, else the next best member's). Until the population is
    full, architectures are drawn at random, as a Latin hypercube (:func:`latin_design`).

    Since a search keeps the front of metric against cost, the tournament is won by the best
    Pareto rank within the population, then the larger exclusive hypervolume (SMS-EMOA, Beume et
    al. 2007; as in multi-objective evolutionary NAS, LEMONADE, Elsken et al. 2019), so children
    spread along the front and push its ends instead of crowding one point; the fitness breaks
    the remaining ties (and decides alone in a history without costs)."""

    def __init__(self, space: Space, seed: int = 0, population: int = 10,
                 sample_size: int = 3) -> None:
        super().__init__(space, seed)
        self.population, self.sample_size = max(2, population), max(1, sample_size)

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: Space
                        ) -> dict[str, Any]:
        rng = _rng(self.seed, trial.number)
        finished = self._finished(study)
        seen = {_key({k: t.params[k] for k in self.space}) for t in finished}
        alive = self.alive(finished)
        if len(alive) < self.population:
            design = latin_design(self.space, self.seed, self.population, trial.number, rng)
            return design if _key(design) not in seen else _fresh(self.space, rng, seen)
        picks = [alive[i] for i in rng.choice(len(alive), min(self.sample_size, len(alive)),
                                               replace=False)]
        order = self.preference(alive)
        parents = sorted(picks, key=order) + sorted(alive, key=order)
        for parent in parents:  # the winner; if all its neighbours were tried, the next best
            child = self.mutate(parent, rng, seen)
            if child is not None:
                return child
        return _fresh(self.space, rng, seen)

    def alive(self, finished: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        """The population: the most recent completed, scored trials, oldest first."""
        return [t for t in finished if t.state == TrialState.COMPLETE
                and fitness_of(t) is not None][-self.population:]

    @staticmethod
    def preference(alive: Sequence[FrozenTrial]) -> Any:
        """Sort key of the population, best first: Pareto rank, exclusive hypervolume, fitness."""
        scores = front_scores(alive)

        def key(t: FrozenTrial) -> tuple[float, float, float]:
            rank, hvc = scores.get(t.number, (len(alive), 0.0))
            return rank, -hvc, -(fitness_of(t) or -math.inf)
        return key

    def mutate(self, parent: FrozenTrial, rng: np.random.RandomState, seen: set[str]
               ) -> dict[str, Any] | None:
        """A copy of ``parent`` with one decision changed, not tried before (None if every
        attempt landed on a tried one)."""
        names = sorted(self.space)
        for _ in range(8 * len(names)):
            child = {k: parent.params[k] for k in self.space}
            name = names[rng.randint(len(names))]
            child[name] = mutate_value(self.space[name], child[name], rng)
            if _key(child) not in seen:
                return child
        return None


def latin_design(space: Space, seed: int, size: int, index: int, rng: np.random.RandomState
                 ) -> dict[str, Any]:
    """Member ``index`` (mod ``size``) of a Latin hypercube of ``size`` architectures: each
    decision's values cut into ``size`` strata in their order, every stratum used once, strata
    paired at random across decisions (McKay et al. 1979). A first population drawn so covers
    each decision's whole range (the smallest widths too), where as many independent draws
    often miss an end; the pairing and the pick inside a stratum stay random."""
    perm_rng = np.random.RandomState((seed * 7_777_777 + 99991) % (2**32 - 1))
    out: dict[str, Any] = {}
    for name in sorted(space):
        dist = space[name]
        stratum = int(perm_rng.permutation(size)[index % size])
        u = (stratum + rng.rand()) / size  # a point of the stratum, in [0, 1)
        out[name] = _at_quantile(dist, u)
    return {k: out[k] for k in space}


def _at_quantile(dist: BaseDistribution, u: float) -> Any:
    """The value at quantile ``u`` of a distribution's values in their order (a log range on
    its log scale)."""
    if isinstance(dist, CategoricalDistribution):
        values = sorted(dist.choices) if is_ordinal(dist) else list(dist.choices)
        return values[min(len(values) - 1, int(u * len(values)))]
    if isinstance(dist, IntDistribution):
        if dist.log:
            v = math.exp(math.log(dist.low) + u * (math.log(dist.high + 1) - math.log(dist.low)))
            return int(min(dist.high, max(dist.low, math.floor(v))))
        n = (dist.high - dist.low) // dist.step + 1
        return int(dist.low + dist.step * min(n - 1, int(u * n)))
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        return float(math.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low))))
    return float(dist.low + u * (dist.high - dist.low))


def _fresh(space: Space, rng: np.random.RandomState, seen: set[str]) -> dict[str, Any]:
    """A random architecture not tried before (any, once 50 draws found none)."""
    params: dict[str, Any] = {}
    for _ in range(50):
        params = {k: random_value(d, rng) for k, d in space.items()}
        if _key(params) not in seen:
            break
    return params


class ReinforceSampler(_SpaceSampler):
    """A REINFORCE controller (Williams 1992, as used for NAS by Zoph & Le 2017), kept small: a
    policy that picks each decision in turn from softmax logits conditioned on the previous
    decision's pick (a table in place of the paper's LSTM). After each trial, the log-probability
    of its picks is pushed up by ``lr * (reward - baseline) / scale``; the baseline is an
    exponential moving average of rewards (decay ``beta``), ``scale`` one of ``|reward -
    baseline|``, so the step does not depend on the reward's units; an entropy bonus
    (``entropy``) keeps every choice possible. The first ``warmup`` architectures are drawn at
    random (a Latin hypercube), so the first rewards compare against something; an
    architecture already tried is drawn again from the policy rather than trained twice. The
    policy is replayed from the finished trials each time (stateless; see the module
    docstring).

    The reward is the trial's standing on the metric-cost front among all scored trials: minus
    its Pareto rank, plus its exclusive hypervolume (normalised axes, at most 1.2): a pick that
    extends the front is rewarded, one that lands far behind it is penalised, which is the
    objective a front of accuracy against parameters is judged by. In a history without costs
    the reward is the fitness."""

    def __init__(self, space: Space, seed: int = 0, lr: float = 1.0, beta: float = 0.8,
                 entropy: float = 0.05, warmup: int = 4) -> None:
        super().__init__(space, seed)
        self.lr, self.beta, self.entropy, self.warmup = lr, beta, entropy, warmup
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

    def rewards(self, trials: Sequence[FrozenTrial]) -> dict[int, float]:
        """The reward of each scored trial (see the class docstring)."""
        scored = [t for t in trials if t.state == TrialState.COMPLETE
                  and fitness_of(t) is not None]
        if scored and all(figures(t) is not None for t in scored):
            return {n: -rank + hvc for n, (rank, hvc) in front_scores(scored).items()}
        return {t.number: fitness_of(t) for t in scored}  # type: ignore[misc]

    def policy(self, study: Study) -> list[np.ndarray]:
        """Logits per decision: ``logits[i][prev, action]`` (row 0 for the first decision)."""
        logits = [np.zeros((len(self.options[i - 1]) if i else 1, len(self.options[i])))
                  for i in range(len(self.names))]
        baseline: float | None = None
        scale = 1e-3
        finished = self._finished(study)
        rewards = self.rewards(finished)
        rewards_seen: list[float] = []
        for t in finished:
            reward = rewards.get(t.number)
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
                log_p = np.log(np.maximum(p, 1e-12))
                entropy_grad = -p * (log_p - float((p * log_p).sum()))
                row += step * grad + self.lr * self.entropy * entropy_grad
                prev = a
            baseline = self.beta * baseline + (1 - self.beta) * reward
        return logits

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: Space
                        ) -> dict[str, Any]:
        rng = _rng(self.seed, trial.number)
        finished = self._finished(study)
        seen = {_key({k: t.params[k] for k in self.space}) for t in finished}
        if len(finished) < self.warmup:
            design = latin_design(self.space, self.seed, self.warmup, trial.number, rng)
            return design if _key(design) not in seen else _fresh(self.space, rng, seen)
        logits = self.policy(study)
        out: dict[str, Any] = {}
        for _ in range(50):  # an architecture not tried yet, while the policy still finds one
            out, prev = {}, 0
            for i, name in enumerate(self.names):
                p = _softmax(logits[i][prev])
                a = int(rng.choice(len(p), p=p))
                out[name] = self._value(i, a, rng)
                prev = a
            if _key(out) not in seen:
                break
        return out


def _softmax(row: np.ndarray) -> np.ndarray:
    z = np.exp(np.clip(row - row.max(), -50, 0))
    return z / z.sum()


def make_sampler(strategy: str, space: Space, seed: int, trials: int) -> BaseSampler:
    """The sampler of a strategy name (ValueError listing the names for an unknown one)."""
    if strategy == "evolution":
        # half the budget explores (a Latin hypercube), half breeds; a large tournament (0.7 of
        # the population) since the front's ends must win often within a budget of ~20 trials
        # (tuned on the digits space, see benchmarks/bench_search.py)
        pop = max(4, min(20, trials // 2))
        return AgingEvolutionSampler(space, seed, population=pop,
                                     sample_size=max(2, round(0.7 * pop)))
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
