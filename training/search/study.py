"""A search: an Optuna study beside the project, trials run by the runner, events for the app.

The study lives in ``<project stem>.search/`` (``study.db``, SQLite, and ``trials/<n>/`` with
each trial's resolved ``project.loom`` and run folder), or in any Optuna RDB storage given by
URL, so several processes or machines can share one study. Each trial: ask the strategy for an
assignment, resolve it to an ordinary project, analyse it (a shape error or a broken constraint
rejects it without training), train it with the runner for the per-trial step budget (successive
halving stops weak ones early on the validation metric in single-objective searches), then tell
the study the metric and the cost. Events (one dict each, see ``/docs`` and the CLI's
``--events``): ``search_started``, ``trial_started``, ``trial_metric``, ``trial_finished``,
``front``, ``search_finished``, ``error``.

A machine that dies mid-trial leaves that trial RUNNING. Every search records a heartbeat per
running trial in the storage (Optuna's heartbeat: ``RDBStorage(heartbeat_interval=...,
grace_period=...)``), and before each ask fails the trials whose heartbeat is older than the
grace period (``optuna.storages.fail_stale_trials``); its callback (Optuna's
``RetryHeartbeatStaleTrialCallback``) queues the same architecture again as a waiting trial,
which the next free worker of any machine runs (from the lost trial's checkpoint when the
folder is shared). A restarted search on the machine that died does not wait for the grace
period: :meth:`Search._recover` sees that the trial's process is gone.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import shutil
import socket
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, Trial, TrialState

from compiler.project import Project, save

from .. import recipes
from .evaluate import assess
from .samplers import STRATEGIES, make_sampler, pareto_front
from .space import Decision, decisions, resolve, space_size
from .trial import TrialRun

try:  # Optuna >= 4.9 names it after what it does; the older name is deprecated there
    from optuna.storages import RetryHeartbeatStaleTrialCallback as RetryStale
except ImportError:  # pragma: no cover - Optuna 4.0-4.8
    from optuna.storages import RetryFailedTrialCallback as RetryStale

Event = dict[str, Any]
OBJECTIVES = ("params", "flops", "latency")
_PRIMITIVE = (type(None), bool, int, float, str)
#: How often a search records that its running trials are alive, and how long a trial may go
#: without a heartbeat before another search fails it and runs its architecture again. The
#: grace is four beats, so one slow write to a busy database never costs a live trial.
HEARTBEAT_S = 30
GRACE_S = 120
#: How many times one architecture is queued again after its machine died: one that kills its
#: machine itself (the out-of-memory killer) then counts as failed instead of looping.
RETRIES = 2
LOST = ("its worker ({owner}) stopped sending heartbeats, so its machine or process is gone; "
        "the search runs this architecture again as a new trial")


class SearchError(Exception):
    """A search that cannot start (no choices, an unknown strategy, a study of another kind)."""


@dataclass
class SearchOptions:
    strategy: str = "evolution"
    trials: int = 20
    steps: int | None = None
    objective: str = "params"
    workers: int = 1
    storage: str | None = None
    study_dir: Path | None = None
    study_name: str | None = None
    seed: int = 0
    max_params: int | None = None
    max_flops: int | None = None
    #: w of the soft cost term ``metric * cost ** -w`` that evolution and RL maximise (MnasNet).
    cost_weight: float = 0.07
    prune: bool = True
    inline: bool = False
    time_limit_s: float | None = None
    device: str | None = None
    threads: int | None = None
    #: seconds between heartbeats, and without one before a trial counts as lost (integers:
    #: Optuna's storage takes whole seconds)
    heartbeat_s: int = HEARTBEAT_S
    grace_s: int = GRACE_S

    @classmethod
    def of(cls, project: Project, **overrides: Any) -> "SearchOptions":
        """The project's own search settings, overridden by the non-None ``overrides``."""
        s = project.search
        base = cls(strategy=s.strategy, trials=s.trials, steps=s.steps, objective=s.objective,
                   seed=s.seed, max_params=s.max_params, max_flops=s.max_flops)
        for k, v in overrides.items():
            if v is not None:
                setattr(base, k, v)
        return base


def study_dir_for(project_file: Path | None, project: Project) -> Path:
    """``<project stem>.search/`` beside the file (or in the working folder for a template)."""
    if project_file is not None:
        return project_file.with_name(project_file.stem + ".search")
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in project.name) or "search"
    return Path.cwd() / f"{stem}.search"


@dataclass
class SearchResult:
    trials: list[Event] = field(default_factory=list)
    best: int | None = None
    front: list[int] = field(default_factory=list)
    stopped: bool = False
    metric_name: str = "loss"
    higher_is_better: bool = False
    study_dir: Path | None = None

    def record(self, number: int) -> Event | None:
        return next((t for t in self.trials if t["number"] == number), None)


def distribution(d: Decision) -> tuple[BaseDistribution, bool]:
    """The Optuna distribution of a decision, and whether its params are positions in the list
    (values that are not plain JSON scalars, or repeat, are searched by index)."""
    dom = d.domain
    if dom.kind == "values":
        values = list(dom.values or [])
        plain = all(isinstance(v, _PRIMITIVE) for v in values) and \
            len({repr(v) for v in values}) == len(values)
        return CategoricalDistribution(values if plain else list(range(len(values)))), not plain
    if dom.kind == "int":
        return IntDistribution(int(dom.low), int(dom.high), log=dom.log,  # type: ignore[arg-type]
                               step=1 if dom.log else (dom.step or 1)), False
    return FloatDistribution(float(dom.low), float(dom.high), log=dom.log), False  # type: ignore


class Search:
    """One search of ``project``'s space. :meth:`run` blocks; :meth:`stop` (any thread) ends it
    after marking the running trials stopped (they are re-run on resume)."""

    def __init__(self, project: Project, options: SearchOptions, *,
                 project_file: Path | None = None,
                 on_event: Callable[[Event], None] | None = None) -> None:
        if options.strategy not in STRATEGIES:
            raise SearchError(f"unknown strategy '{options.strategy}'; use one of "
                              + ", ".join(STRATEGIES))
        if options.objective not in OBJECTIVES:
            raise SearchError(f"unknown objective '{options.objective}'; use one of "
                              + ", ".join(OBJECTIVES))
        self.project = project
        self.options = options
        self.decisions = decisions(project)
        if not self.decisions:
            raise SearchError("the project has no search choices: right-click a param in the "
                              "Inspector and choose 'Search over…', or start from a search "
                              "template (layerloom templates: the nas-* ones)")
        self.dists: dict[str, BaseDistribution] = {}
        self.by_index: set[str] = set()
        for d in self.decisions:
            dist, by_index = distribution(d)
            self.dists[d.label] = dist
            if by_index:
                self.by_index.add(d.label)
        recipe = project.training.recipe
        if not recipe or recipe not in recipes.NAMES:
            raise SearchError("the project has no known training recipe; choose one in the "
                              "Train panel, since each trial is a training run")
        self.metric_name, direction = recipes.get(recipe).metric
        self.higher = direction == "max"
        self.multi = options.strategy == "nsga2"
        self.study_dir = Path(options.study_dir or study_dir_for(project_file, project))
        self.on_event = on_event or (lambda ev: None)
        self._emit_lock = threading.Lock()
        self._ask_lock = threading.Lock()
        self._stop = threading.Event()
        self._runs: dict[int, TrialRun] = {}
        self._beating: dict[int, int] = {}  # trial number -> trial id, for the heartbeat thread
        self._beat_lock = threading.Lock()
        self._running = threading.Event()  # set once search_started is out
        self.result = SearchResult(metric_name=self.metric_name, higher_is_better=self.higher,
                                   study_dir=self.study_dir)

    # -- control ------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        for run in list(self._runs.values()):
            run.stop()

    def emit(self, ev: Event) -> None:
        with self._emit_lock:
            self.on_event(ev)

    # -- the study ----------------------------------------------------------------------------
    def open_study(self) -> optuna.Study:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study_dir.mkdir(parents=True, exist_ok=True)
        url = self.options.storage or f"sqlite:///{(self.study_dir / 'study.db').resolve()}"
        kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
        _quiet_heartbeat_warnings()
        callback = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in \
            inspect.signature(optuna.storages.RDBStorage).parameters else "failed_trial_callback"
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs=kwargs, heartbeat_interval=max(1, int(self.options.heartbeat_s)),
            grace_period=max(1, int(self.options.grace_s)), **{callback: self._lost})
        name = self.options.study_name or "layerloom"
        sampler = make_sampler(self.options.strategy, self.dists, self.options.seed,
                               self.options.trials)
        metric_dir = "maximize" if self.higher else "minimize"
        directions = [metric_dir, "minimize"] if self.multi else [metric_dir]
        pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
        if self.options.prune and not self.multi:
            pruner = optuna.pruners.SuccessiveHalvingPruner()
        try:
            existing = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            existing = None
        if existing is not None:
            if [d.name.lower() for d in existing.directions] != directions:
                raise SearchError(
                    f"the study in {self.study_dir} was made for "
                    f"{len(existing.directions)} objective(s); this search has "
                    f"{len(directions)} (nsga2 is multi-objective): use another --out folder")
            keys = existing.user_attrs.get("labels")
            if keys is not None and keys != list(self.dists):
                raise SearchError(f"the study in {self.study_dir} searched other choices "
                                  f"({keys}); use another --out folder for this space")
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                    pruner=pruner, directions=directions, load_if_exists=True)
        if existing is None:
            study.set_user_attr("labels", list(self.dists))
            study.set_user_attr("objective", self.options.objective)
            study.set_user_attr("metric", self.metric_name)
        return study

    def _recover(self, study: optuna.Study) -> None:
        """Trials a killed search of this machine left RUNNING (their process is gone) become
        stopped, and stopped trials are queued to run again. A running trial of another machine
        or of a live process on this one is left alone."""
        storage = study._storage
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            host, _, pid = str(t.user_attrs.get("owner", "")).rpartition(":")
            if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
                continue
            try:
                storage.set_trial_user_attr(t._trial_id, "status", "stopped")
                storage.set_trial_user_attr(t._trial_id, "reason", "the search was interrupted")
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                pass  # another search failed it first (its heartbeat was stale): theirs to queue
        trials = study.get_trials(deepcopy=False)
        requeued = {t.user_attrs.get("resume_of") for t in trials}
        for t in trials:
            if t.user_attrs.get("status") == "stopped" and t.number not in requeued \
                    and set(self.dists) <= set(t.params):
                study.enqueue_trial({k: t.params[k] for k in self.dists},
                                    user_attrs={"resume_of": t.number})

    def _counted(self, study: optuna.Study) -> int:
        """Trials that used or use the budget: all but stopped ones and lost ones queued again
        (they run again as waiting trials, which count once they start)."""
        trials = study.get_trials(deepcopy=False)
        again = {t.user_attrs.get("resume_of") for t in trials}
        return sum(1 for t in trials if t.state != TrialState.WAITING
                   and t.user_attrs.get("status") != "stopped"
                   and not (_lost_trial(t) and t.number in again))

    # -- heartbeats ---------------------------------------------------------------------------
    def _lost(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna's callback for a trial ``fail_stale_trials`` failed (only the process whose
        state change won calls it, so one architecture is queued once): queue it again, marked
        ``resume_of`` like a stopped trial so resume and the budget treat both alike. A trial
        with a status already had its end written by its own search: a stopped one is queued by
        :meth:`_recover`, any other has its result. Found while this search runs, the lost trial
        is a ``trial_finished`` event; found as it starts, it is one of the study's earlier
        trials."""
        if "status" in trial.user_attrs:
            return
        again = copy.deepcopy(trial)  # the queued copy takes its user attrs: only this one
        again.user_attrs = {"resume_of": trial.number}
        RetryStale(max_retry=RETRIES)(study, again)
        if self._running.is_set():
            rec = record(trial)
            self.result.trials.append(rec)
            self.emit({"event": "trial_finished", **rec})

    def _fail_stale(self, study: optuna.Study) -> None:
        """Fail the trials of dead machines and queue them again (Optuna's own check)."""
        optuna.storages.fail_stale_trials(study)

    def _beat(self, study: optuna.Study, number: int, trial_id: int | None) -> None:
        """Start (a trial id) or stop (None) the heartbeat of a trial of this search. The
        first beat is written at once: a trial without any is never counted as stale."""
        storage = study._storage
        with self._beat_lock:
            if trial_id is None:
                self._beating.pop(number, None)
                return
            self._beating[number] = trial_id
        storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]

    def _heartbeats(self, study: optuna.Study, done: threading.Event) -> None:
        """One thread per search beats for all its running trials every interval; a failed
        write (a locked or unreachable database) is tried again at the next beat."""
        storage = study._storage
        while not done.wait(max(1, int(self.options.heartbeat_s))):
            with self._beat_lock:
                ids = list(self._beating.values())
            for trial_id in ids:
                try:
                    storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
                except Exception:  # noqa: BLE001 - the next beat retries; the grace allows it
                    pass

    # -- running ------------------------------------------------------------------------------
    def run(self) -> SearchResult:
        study = self.open_study()
        self._recover(study)
        self._fail_stale(study)
        self.result.trials = [record(t) for t in study.get_trials(deepcopy=False)
                              if t.state != TrialState.RUNNING and t.state != TrialState.WAITING]
        self.emit({"event": "search_started", "study_dir": str(self.study_dir),
                   "space_size": space_size(self.project), "strategy": self.options.strategy,
                   "trials_planned": self.options.trials, "metric_name": self.metric_name,
                   "higher_is_better": self.higher, "objective": self.options.objective,
                   "trials_done": self._counted(study)})
        self._running.set()
        t0 = time.monotonic()
        workers = 1 if self.options.inline else max(1, self.options.workers)
        done = threading.Event()
        beats = threading.Thread(target=self._heartbeats, args=(study, done), daemon=True,
                                 name="search-heartbeat")
        beats.start()
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(self._worker, study, t0) for _ in range(workers)]
                for f in futures:
                    f.result()
        finally:
            done.set()
            beats.join()
        self.result.stopped = self._stop.is_set()
        self.result.trials = [record(t) for t in study.get_trials(deepcopy=False)
                              if t.state not in (TrialState.RUNNING, TrialState.WAITING)]
        self._update_front()
        self.emit({"event": "search_finished", "best": self.result.best,
                   "front": self.result.front, "stopped": self.result.stopped})
        return self.result

    def _worker(self, study: optuna.Study, t0: float) -> None:
        limit = self.options.time_limit_s
        while not self._stop.is_set():
            if limit is not None and time.monotonic() - t0 > limit:
                return
            with self._ask_lock:
                self._fail_stale(study)
                if self._counted(study) >= self.options.trials:
                    return
                trial = study.ask(fixed_distributions=self.dists)
                self._beat(study, trial.number, trial._trial_id)
            try:
                self._trial(study, trial)
            finally:
                self._beat(study, trial.number, None)

    def assignment(self, params: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for d in self.decisions:
            v = params[d.label]
            out[d.label] = (d.domain.values or [])[v] if d.label in self.by_index else v
        return out

    def _trial(self, study: optuna.Study, trial: Trial) -> None:
        number, t_start = trial.number, time.monotonic()
        choices = self.assignment(trial.params)
        trial.set_user_attr("choices", choices)
        trial.set_user_attr("owner", f"{socket.gethostname()}:{os.getpid()}")
        self.emit({"event": "trial_started", "number": number, "choices": choices})
        folder = self.study_dir / "trials" / str(number)
        folder.mkdir(parents=True, exist_ok=True)
        rec: Event = {"number": number, "choices": choices, "metric": None, "params": None,
                      "flops": None, "latency_ms": None, "cost": None, "reason": None,
                      "project": None}
        try:
            resolved = resolve(self.project, choices)
            resolved.name = f"{self.project.name[:80]} trial {number}"
            path = folder / "project.loom"
            save(resolved, path)
            rec["project"] = str(path)
            a = assess(resolved, max_params=self.options.max_params,
                       max_flops=self.options.max_flops,
                       latency=self.options.objective == "latency")
            rec.update(params=a.params, flops=a.flops, latency_ms=a.latency_ms)
            rec["cost"] = {"params": a.params, "flops": a.flops,
                           "latency": a.latency_ms}[self.options.objective]
            twin = self._twin(choices)
            if not a.ok:
                rec.update(state="rejected", reason=a.reason)
            elif twin is not None:  # the strategy asked again for a trained architecture
                rec.update(state="complete", metric=twin["metric"],
                           reason=f"the same architecture as trial {twin['number']}: its result "
                                  "is reused, not trained again")
            else:
                self._train(study, trial, folder, path, rec)
        except Exception as err:  # a bug must cost one trial, not the search
            rec.update(state="failed", reason=f"{type(err).__name__}: {err}")
        rec["duration_s"] = round(time.monotonic() - t_start, 3)
        self._tell(study, trial, rec)

    def _twin(self, choices: dict[str, Any]) -> Event | None:
        """A completed trial of this search with exactly these choices, if any."""
        return next((t for t in list(self.result.trials) if t.get("state") == "complete"
                     and t.get("metric") is not None and t.get("choices") == choices), None)

    def _train(self, study: optuna.Study, trial: Trial, folder: Path, path: Path,
               rec: Event) -> None:
        resume_of = trial.user_attrs.get("resume_of")
        run_dir = folder / "run"
        resume = False
        if resume_of is not None:  # a stopped trial again: continue from its checkpoint
            old = self.study_dir / "trials" / str(resume_of) / "run" / "checkpoints"
            if (old / "latest.pt").exists():
                shutil.copytree(old, run_dir / "checkpoints", dirs_exist_ok=True)
                resume = True
        threads = self.options.threads or trial_threads(self.options.workers)
        run = TrialRun(path, run_dir, steps=self.options.steps, threads=threads,
                       device=self.options.device, resume=resume, inline=self.options.inline)
        self._runs[trial.number] = run
        if self._stop.is_set():
            run.stop()
        pruned = {"flag": False}

        def on_event(ev: Event) -> None:
            if ev.get("event") != "metric":
                return
            value = ev.get(self.metric_name)
            if not isinstance(value, (int, float)):
                value = None
            self.emit({"event": "trial_metric", "number": trial.number, "step": ev.get("step"),
                       "loss": ev.get("loss"), "metric": value, "split": ev.get("split")})
            if ev.get("split") != "val" or value is None or not math.isfinite(value):
                return
            if not self.multi:
                trial.report(float(value), int(ev.get("step") or 0))
                if not pruned["flag"] and trial.should_prune():
                    pruned["flag"] = True
                    run.stop()

        try:
            end = run.run(on_event)
        finally:
            self._runs.pop(trial.number, None)
        kind = end.get("event")
        if kind == "finished":
            metrics = end.get("metrics") or {}
            value = metrics.get(self.metric_name, metrics.get("loss"))
            if isinstance(value, (int, float)) and math.isfinite(value):
                rec.update(state="complete", metric=float(value))
            else:
                rec.update(state="failed", reason=f"the run reported no {self.metric_name}")
        elif kind == "stopped":
            if pruned["flag"]:
                rec.update(state="pruned", reason="stopped early by successive halving: its "
                           f"{self.metric_name} trailed the other trials at the same step")
            else:
                rec.update(state="stopped", reason="the search was stopped; resume re-runs it "
                           "from its checkpoint")
        else:
            hint = end.get("hint")
            rec.update(state="failed", reason=str(end.get("reason") or "the run failed")
                       + (f" — {hint}" if hint else ""))

    def _fitness(self, rec: Event) -> float | None:
        m = rec.get("metric")
        if rec.get("state") != "complete" or m is None:
            return None
        oriented = m if self.higher else -m
        cost, w = rec.get("cost"), self.options.cost_weight
        if not w or not isinstance(cost, (int, float)) or cost <= 0:
            return oriented
        factor = cost ** (-w) if oriented >= 0 else cost ** w  # a loss: larger costs hurt too
        return oriented * factor

    def _tell(self, study: optuna.Study, trial: Trial, rec: Event) -> None:
        try:
            self._store(study, trial, rec)
        except UpdateFinishedTrialError:
            # Another search saw no heartbeat for the grace period (a database out of reach)
            # and failed this trial first: it queued the architecture again unless this search
            # had already written its status (then the study keeps it as failed).
            queued = _lost_trial(study._storage.get_trial(trial._trial_id))
            rec.update(state="failed", reason="no heartbeat reached the study for "
                       f"{self.options.grace_s} s, so another search took this trial as lost"
                       + (" and queued its architecture again" if queued else ""))
            self.result.trials.append(dict(rec))
            self.emit({"event": "trial_finished", **rec})
            return
        state = rec["state"]
        if state == "stopped":
            rec["state"] = "failed"  # the contract's states; the reason says it will run again
            rec["reason"] = "stopped with the search; " + rec["reason"].split("; ", 1)[-1]
        self.result.trials.append({**rec, "state": rec["state"]})
        self.emit({"event": "trial_finished", **rec})
        self._update_front()
        self.emit({"event": "front", "numbers": self.result.front})

    def _store(self, study: optuna.Study, trial: Trial, rec: Event) -> None:
        """Write the record's figures as user attrs and tell the study the trial's end."""
        state = rec["state"]
        status = "stopped" if state == "stopped" else state
        for key in ("params", "flops", "latency_ms", "cost", "metric", "reason", "project",
                    "duration_s"):
            trial.set_user_attr(key, rec.get(key))
        trial.set_user_attr("status", status)
        fit = self._fitness(rec)
        if fit is not None:
            trial.set_user_attr("fitness", fit)
            trial.set_user_attr("oriented", rec["metric"] if self.higher else -rec["metric"])
        if state == "complete":
            values: list[float] = [rec["metric"]]
            if self.multi:
                cost = rec.get("cost")
                values.append(float(cost) if isinstance(cost, (int, float)) else math.inf)
            study.tell(trial, values if self.multi else values[0])
        elif state == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, state=TrialState.FAIL)

    def _update_front(self) -> None:
        points = [(t["number"], t["metric"], t["cost"]) for t in self.result.trials
                  if t.get("state") == "complete" and t.get("metric") is not None
                  and isinstance(t.get("cost"), (int, float))]
        self.result.front = pareto_front(points, self.higher)
        done = [t for t in self.result.trials if t.get("state") == "complete"
                and t.get("metric") is not None]
        if done:
            sign = 1 if self.higher else -1
            best = max(done, key=lambda t: (sign * t["metric"], -(t.get("cost") or 0)))
            self.result.best = best["number"]
        else:
            self.result.best = None


def trial_threads(workers: int) -> int:
    """Torch threads per trial: the cores but one, shared by the workers. On a small or busy
    machine more threads than free cores make every op wait for the slowest (measured on the
    2-core VM under load: 2 threads trained ~20x slower a step than 1)."""
    return max(1, ((os.cpu_count() or 2) - 1) // max(1, workers))


def _quiet_heartbeat_warnings() -> None:
    """Optuna marks its heartbeat experimental and warns that it expects ``Study.optimize``; this
    search drives ask and tell itself and beats in its own thread, so both warnings are noise
    (re-added on each open: the filter list is the process's, and pytest resets it per test)."""
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used",
                            category=UserWarning)
    warnings.filterwarnings("ignore", category=ExperimentalWarning,
                            message=r".*(heartbeat|fail_stale_trials|"
                                    r"Retry(HeartbeatStale|Failed)TrialCallback)")


def _lost_trial(t: FrozenTrial) -> bool:
    """Failed by a heartbeat check, not by its own search (which always writes a status)."""
    return t.state == TrialState.FAIL and "status" not in t.user_attrs


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is only starting: nothing of it runs yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def record(t: FrozenTrial) -> Event:
    """A trial of the study as the trials table shows it (the ``trial_finished`` fields)."""
    a = t.user_attrs
    status = a.get("status")
    if status is None:
        status = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(t.state,
                                                                                    "failed")
    state = "failed" if status == "stopped" else status
    reason = a.get("reason")
    if reason is None and _lost_trial(t):
        reason = LOST.format(owner=a.get("owner") or "unknown")
        if len(t.system_attrs.get("retry_history", [])) >= RETRIES:  # Optuna's record
            reason = reason.split("; ")[0] + f"; it was lost {RETRIES + 1} times, so it counts " \
                "as failed and is not run again"
    return {"number": t.number, "state": state, "choices": a.get("choices") or {},
            "metric": a.get("metric"), "params": a.get("params"), "flops": a.get("flops"),
            "latency_ms": a.get("latency_ms"), "cost": a.get("cost"),
            "duration_s": a.get("duration_s") or 0.0, "reason": reason,
            "project": a.get("project")}
