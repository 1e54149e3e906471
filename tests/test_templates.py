"""Every registered template: builds, validates, compiles, trains a step, exports runnable code.

Reference variants are checked against the hand-written models of ``tests/reference_models.py``
(parameter count as published, multiset of parameter shapes, output shape, FLOPs) on torch's meta
device, so a 138M-parameter VGG costs milliseconds and no memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import templates
from compiler import Project, analyze, build, generate
from compiler.export import export_model
from compiler.summary import example_inputs
from nodes import registry as node_registry
from nodes.base import SYMBOL_SIZES, GraphSpec
from templates import registry as template_registry
from tests import reference_models as refs

ALL = [t.name for t in templates.all_templates()]
SMALL = [t.name for t in templates.all_templates() if t.variant == "small"]
REFERENCE = [t.name for t in templates.all_templates() if t.variant == "reference"]

RECIPES = {"classification", "regression", "language_model", "masked_lm", "seq2seq", "autoencoder",
           "vae", "gan", "simclr", "byol", "node_classification", "graph_classification"}
DATASETS = {"digits", "digits-flat", "shapes32", "shapes64", "text-chars", "seq-copy",
            "seq-reverse", "seq-sort", "karate", "graphs-synth"}
#: The networks each recipe reads, in the order the contract in templates/__init__.py gives.
RECIPE_NETWORKS = {"gan": ["generator", "discriminator"], "simclr": ["encoder", "projector"],
                   "byol": ["encoder", "projector", "predictor"]}

_BUILT: dict[str, tuple[Project, object]] = {}


def built(name: str):
    """(project, BuiltModule) of a template, built once per test session."""
    if name not in _BUILT:
        project = templates.build(name)
        _BUILT[name] = (project, build(generate(project)))
    return _BUILT[name]


# -- the registry -----------------------------------------------------------------------------


def test_registry_lists_every_family_with_a_small_variant() -> None:
    families = {t.family for t in templates.all_templates()}
    assert {"MLP", "AlexNet", "VGG", "ResNet", "EfficientNet", "Vanilla RNN", "LSTM", "GRU",
            "Transformer", "BERT", "GPT", "Autoencoder", "VAE", "GAN", "GNN", "SimCLR",
            "BYOL"} <= families
    for family in families:
        assert any(t.family == family and t.variant == "small"
                   for t in templates.all_templates()), family
    assert set(refs.REFERENCES) | {"transformer-base"} == set(REFERENCE)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        template_registry.register("mlp-digits", "MLP", "small", "again", "classification",
                                   "digits-flat")(lambda: Project())


def test_unknown_template_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="mlp-digits"):
        templates.get("no-such-template")


def test_build_fills_in_metadata_and_returns_fresh_projects() -> None:
    a, b = templates.build("resnet18-small"), templates.build("resnet18-small")
    assert a is not b and a.networks[0] is not b.networks[0]
    info = templates.get("resnet18-small")
    assert (a.name, a.template, a.description) == ("resnet18-small", "resnet18-small",
                                                    info.description)
    assert (a.training.recipe, a.training.dataset) == ("classification", "shapes32")
    assert a.ui["layout"] in ("LR", "TB")


@pytest.mark.parametrize("name", ALL)
def test_metadata_follows_the_contracts(name: str) -> None:
    info = templates.get(name)
    assert info.name == name and name == name.lower() and " " not in name
    assert info.variant in ("small", "reference")
    assert len(info.description) > 80
    assert info.recipe is None or info.recipe in RECIPES
    assert info.dataset is None or info.dataset in DATASETS
    if info.variant == "small":
        assert info.recipe and info.dataset, "a small variant trains on built-in data"
    project = templates.build(name)
    names = [n.name for n in project.networks]
    expected = RECIPE_NETWORKS.get(info.recipe or "", ["net"])
    assert names == expected
    if expected == ["net"] and info.recipe not in (None, "vae", "seq2seq"):
        net = project.networks[0]
        roles = Counter(n.type for n in net.nodes)
        assert roles["io.output"] == 1, "one Output for single-network recipes"
        assert roles["io.input"] + roles["io.graph_input"] == 1


# -- every template: validate, compile, forward + backward ------------------------------------


def _inputs(name: str, net: str, device: str) -> list:
    project, _ = built(name)
    res = analyze(project).networks[net]
    args = example_inputs(res, device=device, sizes=SYMBOL_SIZES)
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor) and a.dtype == torch.float:
            args[i] = torch.rand(a.shape, device=device)
    return args


@pytest.mark.parametrize("name", ALL)
def test_validates_compiles_and_runs_forward_backward(name: str) -> None:
    project, module = built(name)
    analysis = analyze(project)
    assert not analysis.errors, [str(d) for d in analysis.errors]
    reference = templates.get(name).variant == "reference"
    device = "meta" if reference else "cpu"  # references: too big for a 2-core CPU test
    for net in module.networks:
        with torch.device(device):
            model = module.instantiate(net)
        out = model(*_inputs(name, net, device))
        outs = out if isinstance(out, tuple) else (out,)
        loss = sum(o.float().sum() for o in outs if isinstance(o, torch.Tensor))
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), f"{net}: some weights got no gradient"
        if not reference:
            assert all(torch.isfinite(o).all() for o in outs)


def test_output_shapes_follow_the_recipe_contracts() -> None:
    n, t = SYMBOL_SIZES["N"], SYMBOL_SIZES["T"]
    checks = {"mlp-digits": (n, 10), "resnet18-small": (n, 4), "lstm-digits": (n, 10),
              "gru-charlm": (n, t, 96), "gpt-small": (n, t, 96), "bert-small": (n, t, 96),
              "transformer-small": (n, t, 16), "gcn-karate": (SYMBOL_SIZES["V"], 2),
              "autoencoder-conv": (n, 1, 8, 8)}
    for name, shape in checks.items():
        _, module = built(name)
        with torch.no_grad():
            out = module.instantiate("net").eval()(*_inputs(name, "net", "cpu"))
        assert tuple(out.shape) == shape, name
    _, module = built("vae-digits")
    recon, mu, logvar = module.instantiate("net")(*_inputs("vae-digits", "net", "cpu"))
    assert recon.shape == (n, 64) and mu.shape == logvar.shape == (n, 8)
    _, module = built("gan-dcgan")
    fake = module.instantiate("generator")(torch.randn(n, 64))
    assert fake.shape == (n, 3, 32, 32)
    assert module.instantiate("discriminator")(fake).shape == (n, 1)


# -- exported code runs with torch alone ------------------------------------------------------

_RUNNER = textwrap.dedent('''
    import importlib.abc, importlib.util, json, sys
    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"compiler", "nodes", "templates", "training", "builder"}:
                raise ImportError(f"exported code imported Layerloom's own package {name!r}")
    sys.meta_path.insert(0, Refuse())
    import torch
    jobs = json.load(open(sys.argv[1]))
    for job in jobs:
        spec = importlib.util.spec_from_file_location("model_" + str(len(sys.modules)), job["path"])
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        for net, inputs in job["networks"].items():
            with torch.device(job["device"]):
                model = mod.NETWORKS[net]()
                args = []
                for kind, shape, dtype in inputs:
                    if kind == "graph":
                        v, e = shape
                        args.append(mod.Graph(torch.randint(0, v, (2, e)), torch.zeros(v,
                                    dtype=torch.long), 1))
                    elif dtype == "long":
                        args.append(torch.zeros(shape, dtype=torch.long))
                    else:
                        args.append(torch.rand(shape))
                out = model(*args)
            print(job["name"], net, "ok")
''')


def test_exported_code_runs_in_a_fresh_interpreter_with_only_torch(tmp_path: Path) -> None:
    jobs = []
    for name in ALL:
        project, module = built(name)
        folder = tmp_path / name
        folder.mkdir()
        path = export_model(module.source, folder)
        analysis = analyze(project)
        networks = {}
        for net, res in analysis.networks.items():
            descs = []
            for inp in res.inputs():
                for spec in inp.outs.values():
                    if isinstance(spec, GraphSpec):
                        descs.append(("graph", [SYMBOL_SIZES["V"], SYMBOL_SIZES["E"]], ""))
                    else:
                        descs.append(("tensor", list(spec.concrete(SYMBOL_SIZES)), spec.dtype))
            networks[net] = descs
        device = "meta" if templates.get(name).variant == "reference" else "cpu"
        jobs.append({"name": name, "path": str(path), "device": device, "networks": networks})
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    (tmp_path / "run.py").write_text(_RUNNER)
    proc = subprocess.run([sys.executable, "-I", str(tmp_path / "run.py"),
                           str(tmp_path / "jobs.json")], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = sum(len(j["networks"]) for j in jobs)
    assert proc.stdout.count(" ok") == expected


# -- reference variants against the hand-written models ----------------------------------------

TIED = node_registry.has("linear.tied_linear")


def _figures(model: torch.nn.Module, args: list) -> tuple[int, Counter, list, int]:
    params = sum(p.numel() for p in model.parameters())
    shapes = Counter(tuple(p.shape) for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = model(*args)
    outs = out if isinstance(out, tuple) else (out,)
    return params, shapes, [tuple(o.shape) for o in outs], counter.get_total_flops()


@pytest.mark.parametrize("name", sorted(refs.REFERENCES))
def test_reference_variant_matches_the_publication(name: str) -> None:
    if name == "gpt2" and not TIED:
        pytest.skip("needs the shared-weight node types linear.tied_embedding/tied_linear")
    ctor, make_inputs, expected = refs.REFERENCES[name]
    _, module = built(name)
    with torch.device("meta"):
        ours = module.instantiate("net")
        theirs = ctor()
    args = [a.to("meta") for a in make_inputs()]
    p1, s1, o1, f1 = _figures(ours, args)
    p2, s2, o2, f2 = _figures(theirs, args)
    assert p2 == expected, "the hand-written reference itself is off"
    assert p1 == expected
    assert s1 == s2
    assert o1 == o2
    assert f1 == f2 and f1 > 0


def test_transformer_base_layers_match_nn_transformer() -> None:
    _, module = built("transformer-base")
    with torch.device("meta"):
        ours = module.instantiate("net")
        stack = torch.nn.Transformer(512, 8, 6, 6, 2048, batch_first=True)
        theirs = refs.Seq2SeqTransformer(37000, 37000)
    layers = [ours.encoder, ours.decoder, ours.encoder_norm, ours.decoder_norm]
    count = sum(p.numel() for m in layers for p in m.parameters())
    assert count == sum(p.numel() for p in stack.parameters()) == 44_140_544
    assert Counter(tuple(p.shape) for m in layers for p in m.parameters()) == \
        Counter(tuple(p.shape) for p in stack.parameters())
    args = [torch.zeros(1, 7, dtype=torch.long, device="meta"),
            torch.zeros(1, 5, dtype=torch.long, device="meta")]
    p1, s1, o1, f1 = _figures(ours, args)
    p2, s2, o2, f2 = _figures(theirs, args)
    assert (p1, s1, o1, f1) == (p2, s2, o2, f2)


# -- the README table ---------------------------------------------------------------------------


def test_table_rows_and_readme_section() -> None:
    from templates.table import END, START, markdown, replace_section, rows

    table = rows(["mlp-digits", "gan-dcgan-small"])
    assert [r.name for r in table] == ["mlp-digits", "gan-dcgan-small"]
    mlp = table[0]
    assert mlp.params == 64 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert mlp.flops == 2 * (64 * 128 + 128 * 64 + 64 * 10)
    text = markdown(table)
    assert "| `mlp-digits` | MLP | small | 17,226 |" in text
    assert text.count("\n") == 3
    readme = f"intro\n{START}\nstale\n{END}\noutro\n"
    new = replace_section(readme, text)
    assert new.startswith("intro\n") and new.endswith(f"{END}\noutro\n")
    assert "stale" not in new and replace_section(new, text) == new
    with pytest.raises(ValueError, match="templates:start"):
        replace_section("no markers here", text)


def test_table_script_refuses_a_file_without_markers(tmp_path: Path) -> None:
    target = tmp_path / "README.md"
    target.write_text("# no markers\n")
    script = Path(__file__).resolve().parents[1] / "scripts" / "template_table.py"
    proc = subprocess.run([sys.executable, str(script), "--write", str(target)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "templates:start" in proc.stderr
    assert target.read_text() == "# no markers\n"
