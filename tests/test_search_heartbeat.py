"""Several searches on one study and a machine that dies: every search beats for its running
trials in the storage, and a trial whose heartbeat is older than the grace period is failed and
its architecture queued again (Optuna's heartbeat, ``fail_stale_trials`` and its retry
callback), so the study's trial count still completes. The "dead machine" is a trial written
straight through the storage, as another process would, that beats once and then never again."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

import templates
from training.search.study import RETRIES, Search, SearchOptions


def _search(tmp_path, project=None, **kw) -> tuple[Search, list[dict]]:
    project = project or templates.build("nas-digits")
    opts = dict(strategy="random", trials=1, steps=2, inline=True, prune=False,
                study_dir=tmp_path / "s.search", heartbeat_s=1, grace_s=1)
    opts.update(kw)
    events: list[dict] = []
    return Search(project, SearchOptions.of(project, **opts), on_event=events.append), events


def _smallest(search: Search) -> dict:
    """The first value of each decision (the smallest net of the space: a quick retry)."""
    out = {}
    for label, dist in search.dists.items():
        if isinstance(dist, CategoricalDistribution):
            out[label] = dist.choices[0]
        elif isinstance(dist, (IntDistribution, FloatDistribution)):
            out[label] = dist.low
    return out


def _dead_trial(study: optuna.Study, search: Search, params: dict, *, owner: str,
                system_attrs: dict | None = None) -> int:
    """A RUNNING trial of another machine, made through the storage: params, the owner and
    choices its search writes, and the one heartbeat it wrote when it started."""
    storage = study._storage
    trial_id = storage.create_new_trial(study._study_id)
    for label, value in params.items():
        dist = search.dists[label]
        storage.set_trial_param(trial_id, label, dist.to_internal_repr(value), dist)
    storage.set_trial_user_attr(trial_id, "owner", owner)
    storage.set_trial_user_attr(trial_id, "choices", search.assignment(params))
    for key, value in (system_attrs or {}).items():
        storage.set_trial_system_attr(trial_id, key, value)
    storage.record_heartbeat(trial_id)
    return storage.get_trial(trial_id).number


@pytest.mark.timeout(60)
def test_a_dead_machines_trial_is_failed_and_run_again_after_the_grace_period(tmp_path):
    search, _ = _search(tmp_path)
    study = search.open_study()
    params = _smallest(search)
    dead = _dead_trial(study, search, params, owner="gone-host:4242")
    # One already lost as often as it may be: failed again, it counts and is not queued.
    worn = _dead_trial(study, search, params, owner="gone-host:4243",
                       system_attrs={"failed_trial": 0, "retry_history": list(range(RETRIES))})
    time.sleep(2.5)  # > the 1 s grace at the storage's one-second clock
    again, events = _search(tmp_path, trials=2)
    result = again.run()

    trials = {t.number: t for t in optuna.load_study(study_name="layerloom",
                                                     storage=again.open_study()._storage).trials}
    assert trials[dead].state == TrialState.FAIL and trials[worn].state == TrialState.FAIL
    retried = [t for t in trials.values() if t.user_attrs.get("resume_of") == dead]
    assert len(retried) == 1, "the lost trial is queued exactly once"
    retry = retried[0]
    assert retry.state == TrialState.COMPLETE and retry.params == params
    assert retry.system_attrs["failed_trial"] == dead  # Optuna's retry callback made it
    assert not [t for t in trials.values() if t.user_attrs.get("resume_of") == worn]
    # The budget of 2: the worn-out trial (failed) and the retry; no fresh trial was asked for.
    assert sorted(trials) == sorted([dead, worn, retry.number])
    started = [e for e in events if e["event"] == "trial_started"]
    assert [e["number"] for e in started] == [retry.number]
    assert started[0]["choices"] == again.assignment(params)
    # found as the search started: two of the study's earlier trials, each saying why
    lost = {n: result.record(n) for n in (dead, worn)}
    assert lost[dead]["state"] == "failed" and "gone-host:4242" in lost[dead]["reason"]
    assert "runs this architecture again" in lost[dead]["reason"]
    assert "not run again" in lost[worn]["reason"]
    assert result.best == retry.number


@pytest.mark.timeout(60)
def test_a_machine_that_dies_during_a_search_has_its_trial_taken_over(tmp_path):
    """Another machine's trial goes stale while this search trains its first one: its next ask
    fails it (a ``trial_finished`` event saying why) and runs the architecture itself."""
    search, _ = _search(tmp_path, grace_s=2)
    study = search.open_study()
    params = _smallest(search)
    dead = _dead_trial(study, search, params, owner="gone-host:99")  # alive as this one starts
    again, events = _search(tmp_path, trials=2, grace_s=2)

    slept: list[int] = []

    def slow_first_trial(ev: dict) -> None:
        events.append(ev)
        if ev["event"] == "trial_started" and not slept:
            slept.append(ev["number"])
            time.sleep(3.5)  # a first trial longer than the grace: the dead one goes stale

    again.on_event = slow_first_trial
    again.run()
    kinds = [(e["event"], e.get("number")) for e in events
             if e["event"] in ("trial_started", "trial_finished")]
    first = kinds[0][1]
    assert first != dead
    retry = next(n for kind, n in kinds if kind == "trial_started" and n != first)
    assert kinds == [("trial_started", first), ("trial_finished", first),
                     ("trial_finished", dead), ("trial_started", retry),
                     ("trial_finished", retry)]
    lost = next(e for e in events if e["event"] == "trial_finished" and e["number"] == dead)
    assert lost["state"] == "failed" and "gone-host:99" in lost["reason"]
    started = next(e for e in events if e["event"] == "trial_started" and e["number"] == retry)
    assert started["choices"] == again.assignment(params)


@pytest.mark.timeout(60)
def test_a_live_machines_running_trial_is_left_alone_and_counted(tmp_path):
    search, _ = _search(tmp_path, grace_s=60)
    study = search.open_study()
    live = _dead_trial(study, search, _smallest(search), owner="busy-host:77")
    again, events = _search(tmp_path, trials=2, grace_s=60)
    again.run()
    trials = {t.number: t for t in optuna.load_study(study_name="layerloom",
                                                     storage=again.open_study()._storage).trials}
    assert trials[live].state == TrialState.RUNNING  # its heartbeat is fresh: still training
    started = [e["number"] for e in events if e["event"] == "trial_started"]
    assert len(started) == 1 and live not in started  # it holds one of the two trials


@pytest.mark.timeout(120)
def test_a_running_search_keeps_its_own_trials_alive(tmp_path):
    """A watcher that fails stale trials all along (as another machine's search does before
    each ask) never takes a trial of a live search, however long it trains past the grace."""
    search, _ = _search(tmp_path, steps=100_000, grace_s=2)
    watcher = search.open_study()
    thread = threading.Thread(target=search.run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not search._runs and time.monotonic() < deadline:
            time.sleep(0.05)
        assert search._runs, "the trial did not start training"
        began = time.monotonic()
        while time.monotonic() - began < 5:  # 5 s > the 2 s grace: only beats keep it alive
            optuna.storages.fail_stale_trials(watcher)
            time.sleep(0.25)
        running = watcher.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        assert [t.number for t in running] == [0]
    finally:
        search.stop()
        thread.join(timeout=60)
    trial = watcher.get_trials(deepcopy=False)[0]
    assert trial.user_attrs.get("status") == "stopped"  # its own search's end, not a lost one
