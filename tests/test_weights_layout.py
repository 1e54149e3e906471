"""One weights layout: ``<project>.weights/<network>.safetensors``, whichever way the weights came
(an import, File ▸ Load Weights…), and training starts from it; an older import's one file
(``<project>.weights.safetensors``) still loads, and migrating it loses nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import isolated_app, make_window, mlp_project
from safetensors.torch import save_file

import templates
from compiler import build
from compiler.project import save
from compiler.project_weights import (
    ProjectWeightsError,
    legacy_weights_file,
    load_project_weights,
    migrate_legacy,
    read_project_weights,
    save_project_weights,
    stored_weights,
    weights_dir,
)


def _project():
    p = mlp_project()
    p.training = templates.build("mlp-digits").training
    return p


def _distinct_state(project, seed: int) -> dict[str, torch.Tensor]:
    """The network's own keys with seeded values no initialisation would give."""
    model = build(project).instantiate("net")
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * 0.5 + 3.0 for k, v in
            model.state_dict().items()}


def _write_legacy(path: Path, states: dict[str, dict[str, torch.Tensor]]) -> None:
    """The file an import wrote before the folder, byte for byte as that code did."""
    flat = {f"{net}/{k}": v.contiguous().clone() for net, sd in states.items()
            for k, v in sd.items()}
    save_file(flat, str(path), metadata={"format": "layerloom-weights/1",
                                         "networks": '["net"]', "source": "old"})


@pytest.mark.timeout(60)
def test_several_networks_in_one_folder(tmp_path: Path) -> None:
    a = {"w": torch.arange(4.0)}
    b = {"w": torch.ones(2), "v": torch.zeros(3)}
    folder = save_project_weights(tmp_path / "p.loom", {"encoder": a, "decoder": b})
    assert folder == weights_dir(tmp_path / "p.loom") == tmp_path / "p.weights"
    assert sorted(p.name for p in folder.iterdir()) == ["decoder.safetensors",
                                                        "encoder.safetensors"]
    states = read_project_weights(tmp_path / "p.loom")
    assert list(states["decoder"]) == ["w", "v"]  # the state_dict's order, kept
    assert torch.equal(states["encoder"]["w"], a["w"])
    assert read_project_weights(folder).keys() == states.keys()


@pytest.mark.timeout(60)
def test_the_old_import_file_still_loads_and_migrates_without_loss(tmp_path: Path) -> None:
    project = _project()
    path = tmp_path / "old.loom"
    save(project, path)
    state = _distinct_state(project, 1)
    legacy = legacy_weights_file(path)
    assert legacy == tmp_path / "old.weights.safetensors"
    _write_legacy(legacy, {"net": state})
    assert stored_weights(path) == {"net": legacy}
    for where in (weights_dir(path), legacy, path):  # the folder, the file, the project
        model = build(project).instantiate("net", weights=str(where))
        assert torch.equal(model.state_dict()["fc1.weight"], state["fc1.weight"])
    assert migrate_legacy(path) == ["net"]
    assert legacy.is_file()  # kept
    assert stored_weights(path) == {"net": weights_dir(path) / "net.safetensors"}
    migrated = read_project_weights(path)["net"]
    assert all(torch.equal(migrated[k], v) for k, v in state.items())
    assert migrate_legacy(path) == []


@pytest.mark.timeout(60)
def test_the_newer_of_old_file_and_folder_wins(tmp_path: Path) -> None:
    project = _project()
    path = tmp_path / "p.loom"
    old, new = _distinct_state(project, 1), _distinct_state(project, 2)
    save_project_weights(path, {"net": new})
    _write_legacy(legacy_weights_file(path), {"net": old})
    folder_file = weights_dir(path) / "net.safetensors"
    t = folder_file.stat().st_mtime
    os.utime(legacy_weights_file(path), (t - 100, t - 100))
    got = read_project_weights(path)["net"]["fc1.weight"]
    assert torch.equal(got, new["fc1.weight"])
    os.utime(legacy_weights_file(path), (t + 100, t + 100))
    assert torch.equal(read_project_weights(path)["net"]["fc1.weight"], old["fc1.weight"])


@pytest.mark.timeout(60)
def test_weights_that_do_not_fit_are_refused_by_name(tmp_path: Path) -> None:
    project = _project()
    state = _distinct_state(project, 1)
    state["fc1.weight"] = torch.zeros(3, 3)
    save_project_weights(tmp_path / "p.loom", {"net": state})
    model = build(project).instantiate("net")
    with pytest.raises(ProjectWeightsError, match="shape differs for fc1.weight"):
        load_project_weights(model, "net", tmp_path / "p.weights")
    with pytest.raises(ProjectWeightsError, match="no weights for network 'other'"):
        load_project_weights(model, "other", tmp_path / "p.weights")


@pytest.fixture
def env(tmp_path, monkeypatch):
    isolated_app(tmp_path, monkeypatch)
    return tmp_path


def _load_through_the_window(env: Path, qtbot):
    """File ▸ Load Weights… on a saved project: the weights land in its folder and the Training
    panel offers to start from them."""
    w = make_window(qtbot, _project())
    w.choose_file = lambda caption, filt, save: str(env / "proj")
    assert w.save_as()
    theirs = _distinct_state(w.document.project, 7)
    torch.save(theirs, env / "theirs.pt")
    w.choose_file = lambda caption, filt, save: str(env / "theirs.pt")
    w.load_weights_action.trigger()
    assert w.messages[-1][0] == "Weights loaded", w.messages[-1]
    return w, theirs


@pytest.mark.timeout(120)
def test_loaded_weights_are_offered_to_training(env: Path, qtbot) -> None:
    from builder.dashboard.imported import runner_args

    w, theirs = _load_through_the_window(env, qtbot)
    folder = env / "proj.weights"
    assert (folder / "net.safetensors").is_file()
    form = w.training.form
    assert not form.init_weights.isHidden() and form.init_weights.isChecked()
    assert form.start_weights() == folder
    args = runner_args(w.document.project, set(), form.start_weights())
    assert args == ["--init-weights", str(folder)]
    model = build(w.document.project).instantiate("net", weights=args[1])
    assert torch.equal(model.state_dict()["fc2.bias"], theirs["fc2.bias"])


@pytest.mark.slow  # a real run (data, writer): ~15 s on the shared machine
@pytest.mark.timeout(240)
def test_training_starts_from_weights_loaded_in_the_window(env: Path, qtbot) -> None:
    from training.engine import read_checkpoint
    from training.runner import run

    w, theirs = _load_through_the_window(env, qtbot)
    start = w.training.form.start_weights()
    ev = run(env / "proj.loom", env / "run", steps=1, hyper={"lr": 1e-12},
             init_weights=str(start))
    assert ev["event"] == "finished", ev
    trained = read_checkpoint(str(env / "run" / "checkpoints" / "latest.pt"))["nets"]["net"]
    for key, value in theirs.items():  # one step at lr 1e-12: still the loaded values
        assert torch.allclose(trained[key].float(), value, atol=1e-5), key


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_cli_init_weights_alone_means_the_projects_own(tmp_path: Path) -> None:
    from training.cli import main
    from training.engine import read_checkpoint

    project = _project()
    path = tmp_path / "p.loom"
    save(project, path)
    state = _distinct_state(project, 3)
    save_project_weights(path, {"net": state})
    assert main([str(path), "--steps", "1", "--init-weights", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0
    trained = read_checkpoint(str(tmp_path / "run" / "checkpoints" / "latest.pt"))["nets"]["net"]
    # one optimiser step moves each weight by about the learning rate, far less than the
    # distance (about 3) from any random initialisation to these values
    for key, value in state.items():
        assert (trained[key].float() - value).abs().max() < 0.1, key


# -- an unsaved project's weights, Save As, recovery --------------------------------------------


def _load_into_unsaved(env: Path, qtbot, state: dict[str, torch.Tensor] | None = None):
    w = make_window(qtbot, _project())
    theirs = state if state is not None else _distinct_state(w.document.project, 11)
    torch.save(theirs, env / "theirs.pt")
    w.choose_file = lambda caption, filt, save: str(env / "theirs.pt")
    w.load_weights_action.trigger()
    assert w.messages[-1][0] == "Weights loaded", w.messages[-1]
    return w, theirs


def _stored(location: Path, key: str) -> torch.Tensor:
    return read_project_weights(location)["net"][key]


@pytest.mark.timeout(120)
def test_weights_loaded_into_an_unsaved_project_reach_its_first_save(env: Path, qtbot) -> None:
    from builder.weights_actions import pending_dir

    w, theirs = _load_into_unsaved(env, qtbot)
    assert w.document.path is None and "first save writes these weights" in w.messages[-1][1]
    pending = pending_dir(w)
    assert w.pending_weights == pending and (pending / "net.safetensors").is_file()
    form = w.training.form  # training can start from them before any save
    assert form.start_weights() == pending and form.init_weights.isChecked()
    w.training.load_settings()  # a training edit refills the form: the offer stays
    assert form.start_weights() == pending
    asked: list[str] = []
    w.ask = lambda title, text: asked.append(text) or False  # "cancel": nothing replaced
    w.new_project()
    assert asked and w.pending_weights == pending  # the weights are unsaved work: asked first
    w.ask = lambda title, text: True
    stale = _distinct_state(w.document.project, 12)  # a file saved over: its old weights go
    save_project_weights(env / "first.loom", {"net": stale})
    w.choose_file = lambda caption, filt, save: str(env / "first")
    assert w.save()
    saved = env / "first.weights" / "net.safetensors"
    assert saved.is_file() and torch.equal(_stored(env / "first.loom", "fc1.weight"),
                                           theirs["fc1.weight"])
    assert w.pending_weights is None and not pending.exists()
    assert form.start_weights() == env / "first.weights"
    # Save As takes them along; the old project keeps its own
    w.choose_file = lambda caption, filt, save: str(env / "second")
    assert w.save_as()
    assert torch.equal(_stored(env / "second.loom", "fc2.bias"), theirs["fc2.bias"])
    assert saved.is_file() and form.start_weights() == env / "second.weights"
    # another project: the weights loaded for this one are not carried over to it
    w.new_project()
    assert w.loaded_weights == {} and not w.training.form.init_weights.isChecked()


@pytest.mark.timeout(120)
def test_recovery_after_a_crash_brings_back_an_unsaved_projects_weights(env: Path,
                                                                        qtbot) -> None:
    crashed, theirs = _load_into_unsaved(env, qtbot)
    assert crashed.autosave() is not None  # undirtied, but its weights are unsaved work
    left = crashed.recovery_file.path
    crashed.recovery_file.path = env / "gone.json"  # the crashed window leaves its file behind
    w = make_window(qtbot)
    assert w.offer_recovery()
    assert w.pending_weights is not None and torch.equal(
        _stored(w.pending_weights, "fc1.bias"), theirs["fc1.bias"])
    assert not left.exists()
    w.choose_file = lambda caption, filt, save: str(env / "recovered")
    assert w.save()
    assert torch.equal(_stored(env / "recovered.loom", "fc1.bias"), theirs["fc1.bias"])


# -- weights that an edit outgrew: a partial start only with the user's yes ------------------


def _widen_fc1(project) -> None:
    """fc1 gets 40 outputs instead of 32 (an edit made after the weights were saved)."""
    next(n for n in project.network("net").nodes if n.name == "fc1").params["out_features"] = 40


@pytest.mark.timeout(60)
def test_a_partial_load_keeps_fresh_values_where_shapes_changed(tmp_path: Path) -> None:
    project = _project()
    state = _distinct_state(project, 5)
    save_project_weights(tmp_path / "p.loom", {"net": state})
    _widen_fc1(project)
    model = build(project).instantiate("net")
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ProjectWeightsError, match="--partial-weights"):
        load_project_weights(model, "net", tmp_path / "p.weights")
    fit = load_project_weights(model, "net", tmp_path / "p.weights", allow_partial=True)
    assert fit.reinitialised == ["fc1.weight", "fc1.bias", "fc2.weight"]
    assert fit.loaded == ["fc2.bias"] and "3 start from fresh values" in fit.text()
    got = model.state_dict()
    assert torch.equal(got["fc2.bias"], state["fc2.bias"])
    assert torch.equal(got["fc1.weight"], fresh["fc1.weight"])


@pytest.mark.slow  # two short CLI runs (data, writer): ~20 s on the shared machine
@pytest.mark.timeout(240)
def test_cli_partial_weights_starts_with_what_fits_and_says_what_not(tmp_path: Path,
                                                                     capsys) -> None:
    from training.cli import main
    from training.engine import read_checkpoint

    project = _project()
    path = tmp_path / "p.loom"
    state = _distinct_state(project, 3)
    save_project_weights(path, {"net": state})
    _widen_fc1(project)
    save(project, path)
    args = [str(path), "--steps", "1", "--init-weights", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "refused")]) == 1
    assert "--partial-weights" in capsys.readouterr().err
    assert main([*args, "--partial-weights", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "1 of 4 tensors load" in err and "fc1.weight" in err, err
    trained = read_checkpoint(str(tmp_path / "run" / "checkpoints" / "latest.pt"))["nets"]["net"]
    assert (trained["fc2.bias"].float() - state["fc2.bias"]).abs().max() < 0.1
    assert tuple(trained["fc1.weight"].shape) == (40, 64)
