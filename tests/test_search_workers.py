"""Searches with several workers: trials train at the same time, each in a child process of its
own, and all land in the one SQLite study; a stopped multi-worker search resumes every stopped
trial from its checkpoint."""

from __future__ import annotations

import json

import optuna
import pytest

import templates
from training.search.cli import main as search_main
from training.search.study import Search, SearchOptions

#: Enough steps that a run of the tiny space lasts a few seconds, longer than the gap between
#: the two workers' starts (one ask and one analysis), so two runs at once must overlap in time.
STEPS = 600


def _events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _study(folder) -> optuna.Study:
    return optuna.load_study(study_name="layerloom", storage=f"sqlite:///{folder / 'study.db'}")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_workers_train_two_trials_at_once_into_one_study(tmp_path, capsys):
    out = tmp_path / "study"
    code = search_main(["nas-digits", "--trials", "2", "--steps", str(STEPS), "--workers", "2",
                        "--strategy", "random", "--no-prune", "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert sorted(t["number"] for t in summary["trials"]) == [0, 1]
    assert {t["state"] for t in summary["trials"]} == {"complete"}
    spans = []
    for n in (0, 1):
        run = out / "trials" / str(n) / "run"
        assert (run / "stdout.log").stat().st_size > 0  # written by a child, not in this process
        events = _events(run)
        assert events[0]["event"] == "started" and events[-1]["event"] == "finished"
        spans.append((events[0]["time"], events[-1]["time"]))
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1, f"the two runs did not overlap: {spans}"
    study = _study(out)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert {t.user_attrs["status"] for t in study.trials} == {"complete"}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_stopped_search_with_two_workers_resumes_both_trials(tmp_path):
    project = templates.build("nas-digits")
    # the stop must come while both train: a record every log_every steps, not one per
    # log_min_s, and trials long enough that the first is still training when the second
    # starts (at 600 steps, this seed's first trial finished first in 1 run of 8)
    project.training.hyper["log_min_s"] = 0
    steps = 5 * STEPS
    folder = tmp_path / "s.search"

    def search(on_event):
        opts = SearchOptions.of(project, trials=2, steps=steps, workers=2, strategy="random",
                                prune=False, study_dir=folder)
        return Search(project, opts, on_event=on_event)

    first_search = None
    progressed: dict[int, int] = {}

    def stop_when_both_train(ev):
        if ev["event"] == "trial_metric" and isinstance(ev.get("step"), int):
            progressed[ev["number"]] = ev["step"]
            if len(progressed) == 2 and min(progressed.values()) >= 20:
                first_search.stop()

    first_search = search(stop_when_both_train)
    first = first_search.run()
    assert first.stopped and first.best is None
    assert len(first.trials) == 2
    assert all("resume" in t["reason"] for t in first.trials)
    stopped = {t["number"]: t["choices"] for t in first.trials}
    for n in stopped:
        assert (folder / "trials" / str(n) / "run" / "checkpoints" / "latest.pt").exists()

    events: list[dict] = []
    second = search(events.append).run()
    assert not second.stopped and second.best is not None
    started = {e["number"]: e["choices"] for e in events if e["event"] == "trial_started"}
    assert sorted(started) == [2, 3]
    assert sorted(map(json.dumps, started.values())) == sorted(map(json.dumps, stopped.values()))
    for n in (2, 3):
        run_events = _events(folder / "trials" / str(n) / "run")
        assert run_events[0]["event"] == "started" and run_events[0]["start_step"] >= 20
        assert run_events[-1]["event"] == "finished" and run_events[-1]["step"] == steps
    study = _study(folder)
    states = {t.number: t.state for t in study.trials}
    assert states[2] == states[3] == optuna.trial.TrialState.COMPLETE
    assert {study.trials[n].user_attrs["resume_of"] for n in (2, 3)} == set(stopped)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_forked_trial_trains_exactly_as_python_m_training_runner(tmp_path, monkeypatch):
    """The forkserver start is only a faster start: the same losses, step for step, as a trial
    started as ``python -m training.runner``; and a stop sent down its pipe checkpoints."""
    from compiler.project import save
    from training.search import trial
    from training.search.space import resolve

    if not trial.forked_start():
        pytest.skip("no forkserver on this platform: trials always exec the runner")
    project_file = tmp_path / "arch.loom"
    save(resolve(templates.build("nas-digits"), {"width": 16, "depth": 2}), project_file)
    losses = {}
    for mode in ("exec", "fork"):
        monkeypatch.setenv("LAYERLOOM_TRIAL_START", mode)
        assert trial.forked_start() == (mode == "fork")
        run_dir = tmp_path / mode
        end = trial.TrialRun(project_file, run_dir, steps=40, threads=1).run(lambda ev: None)
        assert end["event"] == "finished", end
        assert (run_dir / "stdout.log").stat().st_size > 0
        losses[mode] = [x for ev in _events(run_dir) if ev["event"] == "metric"
                        and ev["split"] == "train" for x in ev["losses"]]
    assert len(losses["fork"]) == 40 and losses["fork"] == losses["exec"]

    run = trial.TrialRun(project_file, tmp_path / "stopped", steps=100_000, threads=1)

    def stop_once_training(ev):
        if ev["event"] == "metric":
            run.stop()

    end = run.run(stop_once_training)
    assert end["event"] == "stopped" and 0 < end["step"] < 100_000
    assert (tmp_path / "stopped" / "checkpoints" / "latest.pt").exists()
