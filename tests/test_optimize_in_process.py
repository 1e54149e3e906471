"""Optimised runs one after another in one process (tests, a notebook calling training.run):
each compiles its own model. torch.compile caches per function, so without a reset between runs
the recipe's loss, compiled for one model after another, reaches dynamo's recompile limit and
the next run trains eagerly while saying it compiled (in ~0 s)."""

from __future__ import annotations

import pytest

import templates
import training


@pytest.mark.timeout(300)
def test_each_in_process_optimised_run_compiles_its_own_model(tmp_path, monkeypatch):
    import torch._dynamo

    limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else \
        "cache_size_limit"  # its name before torch 2.6
    monkeypatch.setattr(torch._dynamo.config, limit, 1)  # the limit, reached sooner
    seconds = []
    for i, hidden in enumerate((32, 48)):  # two models: the second recompiles the same loss
        project = templates.build("mlp-digits")
        layer = next(n for n in project.networks[0].nodes if n.type == "linear.linear")
        layer.params["out_features"] = hidden
        events: list[dict] = []
        ev = training.run(project, tmp_path / str(i), steps=2, device="cpu", on_event=events.append,
                          hyper={"optimize": True, "log_every": 1, "max_val_samples": 32})
        assert ev["event"] == "finished", ev
        compiled = [e for e in events if e["event"] == "compiled"]
        assert len(compiled) == 1, events
        seconds.append(compiled[0]["seconds"])
    assert min(seconds) >= 0.05, seconds  # an eager step of this MLP takes milliseconds
