"""The loop pieces train.py copies (training.engine), checked directly: the optimised mode's
kernel choices, the older-torch CPU probe, evaluation under a forked RNG, samples asked only of
recipes that make them, and what train.py prints."""

from __future__ import annotations

import json
import types

import pytest
import torch
from torch import nn

from training import engine
from training.engine import Hooks, Recipe, Sampler, cpu_has_fast_bf16, fast_kernels, run_eval


class _Recorder(Hooks):
    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[dict] = []
        self.samples: list[dict] = []

    def metric(self, record: dict) -> None:
        self.metrics.append(record)

    def sample(self, record: dict) -> None:
        self.samples.append(record)


class _Evaluating(Recipe):
    """Evaluation draws random numbers, as a sampling recipe's does."""

    def evaluate(self) -> dict[str, float]:
        assert not self.nets["net"].training, "evaluation runs in eval mode"
        return {"loss": float(torch.rand(()))}


class _Sampling(_Evaluating):
    def samples(self, step: int, out_dir: str | None) -> list[dict]:
        return [{"kind": "text", "text": f"sample at {step} in {out_dir}"}]


def _recipe(cls: type[Recipe], net: nn.Module | None = None, amp: str = "off") -> Recipe:
    return cls({"net": net or nn.Linear(2, 2)}, None, {"seed": 3, "amp": amp},
               torch.device("cpu"))


@pytest.mark.timeout(30)
def test_fast_kernels_puts_2d_conv_nets_channels_last_and_counts_every_conv_for_bf16():
    auto = "bf16" if cpu_has_fast_bf16() else "off"
    conv2d = _recipe(Recipe, nn.Sequential(nn.Conv2d(3, 4, 3)), "auto")
    fast_kernels(conv2d)
    weight = conv2d.nets["net"][0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and weight.dim() == 4
    assert conv2d.hp["amp"] == auto
    conv1d = _recipe(Recipe, nn.Sequential(nn.ConvTranspose1d(3, 4, 3)), "auto")
    fast_kernels(conv1d)
    assert conv1d.hp["amp"] == auto, "a 1-d (transposed) conv counts as a conv net too"
    dense = _recipe(Recipe, nn.Sequential(nn.Linear(3, 4)), "auto")
    fast_kernels(dense)
    assert dense.hp["amp"] == "off"


@pytest.mark.timeout(30)
def test_cpu_bf16_probe_falls_back_on_torch_without_get_capabilities(monkeypatch):
    """torch 2.4 (the oldest our pyproject allows) may lack ``torch.cpu.get_capabilities``."""
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    monkeypatch.setattr(torch, "cpu", types.SimpleNamespace(_is_avx512_bf16_supported=lambda: True))
    assert cpu_has_fast_bf16()
    monkeypatch.setattr(torch, "cpu", types.SimpleNamespace(_is_amx_tile_supported=lambda: False))
    assert not cpu_has_fast_bf16()
    monkeypatch.setattr(torch, "cpu", types.SimpleNamespace(get_capabilities=lambda: {
        "amx_bf16": True}))
    assert cpu_has_fast_bf16()
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert not cpu_has_fast_bf16(), "no oneDNN: no fast bf16, whatever the CPU"


@pytest.mark.timeout(30)
def test_eval_forks_the_rng_and_asks_samples_only_of_recipes_that_make_them():
    sampler = Sampler(8, 4, seed=0)
    for cls, want in ((_Evaluating, []), (_Sampling, ["sample at 5 in out"])):
        recipe, hooks = _recipe(cls), _Recorder()
        hooks.sample_dir = "out"
        torch.manual_seed(11)
        before = torch.get_rng_state()
        metrics = run_eval(recipe, 5, sampler, hooks)
        assert torch.equal(torch.get_rng_state(), before), "evaluating drew from the run's RNG"
        assert recipe.nets["net"].training, "back in training mode"
        assert hooks.metrics == [{"step": 5, "epoch": 2.5, "split": "val", **metrics}]
        assert [s["text"] for s in hooks.samples] == want
        assert all(s["step"] == 5 for s in hooks.samples)
    again = run_eval(_recipe(_Evaluating), 5, sampler, _Recorder())
    assert again == metrics, "the eval RNG is seeded from the run's seed, not the run's state"
    assert not hasattr(Recipe, "samples"), "train.py of a classifier copies no sampling code"


@pytest.mark.timeout(30)
def test_train_py_prints_rounded_json_lines_without_per_step_losses(capsys):
    Hooks(show=False).metric({"step": 1, "split": "train", "loss": 1.0})
    assert capsys.readouterr().out == ""
    Hooks(show=True).metric({"step": 2, "epoch": 0.123456789, "split": "train", "loss": 2.0,
                             "losses": [1.0, 3.0], "lr": 0.001})
    line = json.loads(capsys.readouterr().out)
    assert line == {"step": 2, "epoch": 0.12346, "split": "train", "loss": 2.0, "lr": 0.001}
    say = engine.setup.__defaults__[-1]  # the optimised mode's notes, in train.py
    say({"kind": "compiled", "step": 1, "seconds": 1.5})
    assert json.loads(capsys.readouterr().out) == {"kind": "compiled", "step": 1, "seconds": 1.5}


@pytest.mark.timeout(30)
def test_batches_hold_the_sampled_rows_of_every_tensor_on_the_training_device():
    from training.data.common import Data

    g = torch.Generator().manual_seed(0)
    images = torch.randn(50, 3, 4, 4, generator=g)
    tokens = torch.randint(0, 99, (50, 9), generator=g)[:, :7]  # a sliced, strided view
    labels = torch.arange(50)
    data = Data((images, tokens, labels), (images[:5], tokens[:5], labels[:5]), {})
    idx = torch.tensor([7, 0, 49, 7, 13])  # any order, repeats too
    batch = data.batcher("train", torch.device("cpu"))(idx)
    assert [t.tolist() for t in batch] == [t[idx].tolist() for t in (images, tokens, labels)]
    assert all(t.dtype == s.dtype for t, s in zip(batch, (images, tokens, labels), strict=True))
    assert batch[2].tolist() == [7, 0, 49, 7, 13], "row i of every tensor is sample idx[i]"
    batch[0].zero_()
    assert images.abs().sum() > 0, "a batch is a copy: a recipe may write into it"
    moved = data.batcher("val", torch.device("meta"))(torch.tensor([4, 1]))  # a device elsewhere
    assert [t.device.type for t in moved] == ["meta"] * 3 and moved[1].shape == (2, 7)


@pytest.mark.timeout(30)
def test_the_sampler_draws_each_epoch_on_the_cpu_and_sends_it_where_the_data_are():
    cpu = Sampler(50, 8, seed=3)
    assert cpu.device == torch.device("cpu")
    steps = [cpu.indices(s).tolist() for s in range(12)]  # six batches an epoch: two epochs
    again = Sampler(50, 8, seed=3)
    assert [again.indices(s).tolist() for s in (11, 0, 7)] == [steps[11], steps[0], steps[7]]
    elsewhere = Sampler(50, 8, seed=3)
    elsewhere.device = torch.device("meta")  # as setup sets it for data preloaded on a GPU
    idx = elsewhere.indices(7)
    assert idx.device.type == "meta" and idx.shape == (8,) and idx.dtype == torch.long


@pytest.mark.timeout(60)
def test_under_ddp_every_rank_records_every_log_every_steps_whatever_its_clock():
    """``log_min_s`` times records by each process's clock; DDP's ranks would then record at
    different steps, and a NaN found at one rank's record would leave the others waiting for it
    in the next all-reduce. So with more than one rank the limit is off: records every
    ``log_every`` steps (alone, the same run records only where a record is never left out)."""
    import templates
    from training.engine import fit, setup
    from training.plan import prepare

    plan = prepare(templates.build("mlp-digits"), {"log_every": 2, "log_min_s": 3600,
                                                   "eval_every": 100, "steps": 7})
    steps = {}
    for world in (1, 2):
        torch.manual_seed(0)
        nets = {role: plan.built.instantiate(net) for role, net in plan.roles.items()}
        recipe = plan.recipe_cls(nets, plan.data, plan.hyper.model_dump(), torch.device("cpu"))
        recipe.adapt(plan.input_specs)
        hooks = _Recorder()
        fit(recipe, setup(recipe, rank=0, world=world), 7, 0, hooks)
        steps[world] = [m["step"] for m in hooks.metrics if m["split"] == "train"]
    assert steps[1] == [7], "alone: no hour passes, only the last step's record"
    assert steps[2] == [2, 4, 6, 7], "every rank: each log_every steps, and the last"
