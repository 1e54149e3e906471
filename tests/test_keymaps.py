"""Published checkpoints load into the templates whose names cannot equal the publishers': a key
map (compiler.keymaps) converts Hugging Face GPT-2 / BERT and torchvision EfficientNet-B0
state_dicts, laid out exactly as the hand-written module trees of tests/reference_models lay them
out, and the converted model computes what the original computes."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import templates
from compiler import Project, add_network, build, generate
from compiler.keymaps import KEYMAPS, KeyMapError, adapt, covers, export_files, load_pretrained
from compiler.keymaps.convert import TRANSFORMS
from compiler.weights import load_into, save_weights
from templates import bert
from tests import reference_models as refs
from training.export import export_project

RUFF = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")


def _randomise(model: nn.Module, seed: int = 3) -> nn.Module:
    """Seeded random weights (by fan-in), norm weights near 1 and BatchNorm statistics away from
    (0, 1): a tensor loaded into the wrong place, or untransposed, changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() > 1:
                p.copy_(noise / p[0].numel() ** 0.5)
            else:
                p.copy_(noise * 0.1 + (1.0 if name.endswith("weight") else 0.0))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)
    return model.eval()


def _ours(project: Project, meta: bool = False) -> nn.Module:
    """The template's network; ``meta``: made without initialising (every tensor is loaded)."""
    if not meta:
        return build(project).instantiate("net").eval()
    with torch.device("meta"):
        model = build(project).instantiate("net")
    return model.to_empty(device="cpu").eval()


def _ids(vocab: int, t: int = 20, seed: int = 5) -> Tensor:
    return torch.randint(0, vocab, (2, t), generator=torch.Generator().manual_seed(seed))


def _max_diff(a: Tensor | tuple, b: Tensor | tuple) -> float:
    a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
    return max((x - y).abs().max().item() for x, y in zip(a, b, strict=True))


def _tiny_bert_base(layers: int = 3, d: int = 64, heads: int = 4, ff: int = 128,
                    vocab: int = 100, max_len: int = 32) -> Project:
    """bert-base's graph (segments and pooler) at toy size, from the template's own helpers."""
    p = Project()
    bert._encoder_block(p, d_model=d, nhead=heads, dim_feedforward=ff, dropout=0.1)
    g = add_network(p, "net")
    ids = g.add("io.input", "ids", shape=["N", "T"], dtype="long")
    segments = g.add("io.input", "segments", shape=["N", "T"], dtype="long")
    h = bert._embeddings(g, ids, vocab=vocab, d_model=d, max_len=max_len, dropout=0.1,
                         segments=segments)
    seq = g.chain(h, ("block.block", {"block": "BertLayer", "repeat": layers}, "encoder"))[-1]
    g.connect(seq, g.add("io.output", "sequence"))
    g.chain(seq, ("shape.select", {"dim": 1, "index": 0}, "first_token"),
            ("linear.linear", {"out_features": d}, "pooler"),
            ("activation.tanh", {}, "pooler_act"), ("io.output", {}, "pooled"))
    return p


# -- GPT-2 -------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_gpt_small_loads_a_hf_gpt2_checkpoint_strictly_and_agrees() -> None:
    theirs = _randomise(refs.HFGPT2LMHeadModel(vocab=96, d=128, layers=4, heads=4, max_len=128))
    state = theirs.state_dict()
    assert "transformer.h.0.attn.c_attn.weight" in state and "lm_head.weight" in state
    assert state["transformer.h.0.attn.c_attn.weight"].shape == (128, 384)  # Conv1D: [in, out]
    ours = _ours(templates.build("gpt-small"))
    report = load_pretrained(ours, state, source="hf-gpt2")
    assert report.strict and len(report.state) == len(ours.state_dict()) == 52
    # the causal-mask buffers of each layer and the tied head are dropped, on purpose
    assert sorted(report.ignored) == sorted(
        ["lm_head.weight"] + [f"transformer.h.{i}.attn.{b}" for i in range(4)
                              for b in ("bias", "masked_bias")])
    assert report.made["blocks.0.attn.in_proj_weight"] == (
        ("transformer.h.0.attn.c_attn.weight",), "transpose")
    torch.testing.assert_close(ours.state_dict()["blocks.2.mlp_proj.weight"],
                               state["transformer.h.2.mlp.c_proj.weight"].t())
    ids = _ids(96)
    with torch.no_grad():
        got, expected = ours(ids), theirs(ids)
    assert got.shape == expected.shape == (2, 20, 96)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.timeout(60)
def test_a_gpt2_model_file_without_prefix_or_head_loads_too() -> None:
    """The hub's gpt2 weights are a GPT2Model state_dict: no ``transformer.``, no ``lm_head``."""
    theirs = _randomise(refs.HFGPT2Model(vocab=96, d=128, layers=4, heads=4, max_len=128))
    ours = _ours(templates.build("gpt-small"))
    report = load_pretrained(ours, theirs.state_dict())  # source defaults to "hf-gpt2"
    assert report.strict
    ids = _ids(96, seed=6)
    with torch.no_grad():
        hidden = theirs(ids)
        expected = hidden @ theirs.wte.weight.t()
        torch.testing.assert_close(ours(ids), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_gpt2_template_loads_a_full_size_hf_gpt2_checkpoint() -> None:
    theirs = _randomise(refs.HFGPT2LMHeadModel())
    ours = _ours(templates.build("gpt2"), meta=True)
    report = load_pretrained(ours, theirs.state_dict(), source="hf-gpt2")
    assert report.strict and len(report.state) == 148
    ids = _ids(50257, t=16)
    with torch.no_grad():
        diff = _max_diff(ours(ids), theirs(ids))
    assert diff < 1e-4, diff


# -- BERT --------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_bert_base_structure_loads_a_hf_bert_checkpoint_and_agrees() -> None:
    theirs = _randomise(refs.HFBertModel(vocab=100, d=64, layers=3, heads=4, ff=128, max_len=32))
    # as BertForPreTraining files store it: a bert. prefix, old LayerNorm names, the MLM head
    state = {"bert." + k.replace("LayerNorm.weight", "LayerNorm.gamma")
             .replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in theirs.state_dict().items()}
    state["cls.predictions.bias"] = torch.zeros(100)
    assert "bert.encoder.layer.0.attention.self.query.weight" in state
    assert "bert.embeddings.LayerNorm.gamma" in state and "bert.embeddings.position_ids" in state
    ours = _ours(_tiny_bert_base())
    report = load_pretrained(ours, state, source="hf-bert")
    assert report.strict and len(report.state) == len(ours.state_dict())
    assert sorted(report.ignored) == ["bert.embeddings.position_ids", "cls.predictions.bias"]
    q, k, v = (state[f"bert.encoder.layer.1.attention.self.{w}.weight"]
               for w in ("query", "key", "value"))
    assert torch.equal(ours.state_dict()["encoder.1.attention.in_proj_weight"],
                       torch.cat([q, k, v]))
    ids, segments = _ids(100, t=12), _ids(2, t=12, seed=7)
    with torch.no_grad():
        got, expected = ours(ids, segments), theirs(ids, segments)
    assert _max_diff(got, expected) < 1e-5


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_bert_base_template_loads_a_full_size_hf_bert_checkpoint() -> None:
    theirs = _randomise(refs.HFBertModel())
    ours = _ours(templates.build("bert-base"), meta=True)
    report = load_pretrained(ours, theirs.state_dict(), source="hf-bert")
    assert report.strict and len(report.state) == len(ours.state_dict()) == 151
    ids, segments = _ids(30522, t=16), _ids(2, t=16, seed=7)
    with torch.no_grad():
        diff = _max_diff(ours(ids, segments), theirs(ids, segments))
    assert diff < 1e-4, diff


# -- EfficientNet ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_efficientnet_b0_loads_a_torchvision_checkpoint_and_agrees() -> None:
    theirs = _randomise(refs.TVEfficientNet())
    state = theirs.state_dict()
    assert "features.1.0.block.0.0.weight" in state  # stage 1: no expand, depthwise first
    assert "features.2.0.block.1.0.weight" in state  # later stages: expand, then depthwise
    assert "features.8.0.weight" in state and "classifier.1.weight" in state
    ours = _ours(templates.build("efficientnet-b0"), meta=True)
    report = load_pretrained(ours, state, source="torchvision-efficientnet_b0")
    assert report.strict and len(report.state) == len(state) == 360
    assert report.made["stage6.2.se_reduce.weight"] == (("features.6.3.block.2.fc1.weight",),
                                                        "copy")
    assert report.made["stage2.depthwise_bn.running_var"][0] == (
        "features.2.1.block.1.1.running_var",)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got, expected = ours(x), theirs(x)
    assert got.shape == expected.shape == (2, 1000)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.timeout(60)
def test_an_older_file_without_num_batches_tracked_keeps_the_models() -> None:
    theirs = _randomise(refs.TVEfficientNet())
    state = {k: v for k, v in theirs.state_dict().items() if "num_batches_tracked" not in k}
    ours = _ours(templates.build("efficientnet-b0"), meta=True)
    report = load_pretrained(ours, state, source="torchvision-efficientnet_b0")
    assert report.complete and len(report.kept) == 49 and not report.missing


# -- refusals and the map itself ---------------------------------------------------------------


def _gpt_small_pair() -> tuple[nn.Module, dict[str, Tensor]]:
    theirs = _randomise(refs.HFGPT2LMHeadModel(vocab=96, d=128, layers=4, heads=4, max_len=128))
    return _ours(templates.build("gpt-small")), dict(theirs.state_dict())


@pytest.mark.timeout(60)
def test_a_missing_tensor_or_an_unknown_one_is_refused_and_the_model_untouched() -> None:
    ours, state = _gpt_small_pair()
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    del state["transformer.h.3.mlp.c_fc.bias"]
    with pytest.raises(KeyMapError, match="1 missing") as err:
        load_pretrained(ours, state, source="hf-gpt2")
    assert err.value.conversion.missing == ["blocks.3.mlp_fc.bias"]
    assert all(torch.equal(before[k], v) for k, v in ours.state_dict().items())
    ours, state = _gpt_small_pair()
    state["transformer.extra.weight"] = torch.zeros(3)
    with pytest.raises(KeyMapError, match="1 of the file unused"):
        load_pretrained(ours, state, source="hf-gpt2")
    assert load_pretrained(ours, state, strict=False).unused == ["transformer.extra.weight"]


@pytest.mark.timeout(60)
def test_an_untied_lm_head_is_reported_not_dropped() -> None:
    ours, state = _gpt_small_pair()
    state["lm_head.weight"] = state["lm_head.weight"].clone() + 1.0  # fine-tuned apart
    with pytest.raises(KeyMapError) as err:
        load_pretrained(ours, state, source="hf-gpt2")
    assert err.value.conversion.unused == ["lm_head.weight"]


@pytest.mark.timeout(60)
def test_a_shape_that_disagrees_is_refused() -> None:
    theirs = refs.HFGPT2LMHeadModel(vocab=96, d=128, layers=4, heads=4, max_len=64)
    with pytest.raises(KeyMapError, match="wrong shape") as err:
        load_pretrained(_ours(templates.build("gpt-small")), theirs.state_dict())
    assert err.value.conversion.mismatched == [("wpe.embedding.weight", (128, 128), (64, 128))]


@pytest.mark.timeout(120)
def test_the_maps_are_data_and_fit_exactly_their_templates() -> None:
    for keymap in KEYMAPS.entries():
        assert ast.literal_eval(repr(keymap)) == keymap  # nothing but literals
        assert {rule[2] for rule in keymap["rules"]} <= set(TRANSFORMS)
    assert KEYMAPS.names() == ["hf-gpt2", "hf-bert", "torchvision-efficientnet_b0"]
    fits = {}
    for t in templates.all_templates():
        with torch.device("meta"):
            try:
                state = build(templates.build(t.name)).instantiate("net").state_dict()
            except KeyError:  # a template without a network called net (GAN, ...)
                continue
        found = [m["name"] for m in KEYMAPS.entries() if covers(m, state)]
        if found:
            fits[t.name] = found
    assert fits == {"gpt2": ["hf-gpt2"], "gpt-small": ["hf-gpt2"], "bert-base": ["hf-bert"],
                    "efficientnet-b0": ["torchvision-efficientnet_b0"]}


# -- File ▸ Load weights… and the export -------------------------------------------------------


@pytest.mark.timeout(60)
def test_load_weights_converts_a_hf_file_by_its_key_map(tmp_path: Path) -> None:
    ours, state = _gpt_small_pair()
    theirs = refs.HFGPT2LMHeadModel(vocab=96, d=128, layers=4, heads=4, max_len=128)
    theirs.load_state_dict(state)
    path = save_weights(state, tmp_path / "model.safetensors")
    report = load_into(ours, "net", path)
    assert report.strict_by_name and len(report.by_name) == 52
    ids = _ids(96, seed=8)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), theirs.eval()(ids), rtol=1e-5, atol=1e-5)
    already = ours.state_dict()
    assert adapt(already, already) is already  # a file in our names is never converted


def _import(path: Path, name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_the_export_writes_a_pretrained_py_that_loads_on_its_own(tmp_path: Path,
                                                                monkeypatch) -> None:
    written = export_project(templates.build("gpt-small"), tmp_path / "out")
    names = [p.name for p in written]
    assert "pretrained.py" in names and "README.md" in names
    folder = tmp_path / "out"
    readme = (folder / "README.md").read_text()
    assert "## Published weights" in readme and 'source="hf-gpt2"' in readme
    assert "train.py" in readme  # the section is added to the training README, not instead
    text = (folder / "pretrained.py").read_text()
    assert "compiler" not in text and "nodes" not in text  # needs only torch
    check = subprocess.run([RUFF, "check", "--isolated", "--line-length", "100",
                            str(folder / "pretrained.py")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    monkeypatch.syspath_prepend(str(folder))
    model_mod = _import(folder / "model.py", "model")
    pretrained = _import(folder / "pretrained.py", "pretrained")
    try:
        model = model_mod.NETWORKS["net"]().eval()
        theirs = _randomise(refs.HFGPT2LMHeadModel(vocab=96, d=128, layers=4, heads=4,
                                                   max_len=128))
        assert pretrained.KEYMAPS == {"hf-gpt2": KEYMAPS.get("hf-gpt2")}  # the same data
        report = pretrained.load_pretrained(model, theirs.state_dict(), source="hf-gpt2")
        assert report.strict
        ids = _ids(96, seed=9)
        with torch.no_grad():
            torch.testing.assert_close(model(ids), theirs(ids), rtol=1e-5, atol=1e-5)
    finally:
        sys.modules.pop("model", None)
        sys.modules.pop("pretrained", None)


@pytest.mark.timeout(60)
def test_an_export_without_a_fitting_map_gets_no_loader(tmp_path: Path) -> None:
    assert export_files(generate(templates.build("resnet18")), {"model.py": ""}) == {}
    files = export_files(generate(templates.build("bert-base")), {"model.py": ""})
    assert sorted(files) == ["README.md", "pretrained.py"]  # no recipe: a README of its own
    assert "'hf-bert'" in files["pretrained.py"] and "'hf-gpt2'" not in files["pretrained.py"]
    written = export_project(templates.build("gpt-small"), tmp_path / "m", model_only=True)
    assert [p.name for p in written] == ["model.py"]


@pytest.mark.timeout(60)
def test_load_weights_menu_converts_a_hf_gpt2_file(tmp_path: Path, monkeypatch, qtbot) -> None:
    from helpers import isolated_app, make_window

    from builder.weights_actions import load_weights

    isolated_app(tmp_path, monkeypatch)
    w = make_window(qtbot, templates.build("gpt-small"))
    _, state = _gpt_small_pair()
    torch.save(state, tmp_path / "pytorch_model.bin")
    w.ask = lambda title, text: pytest.fail(f"asked: {text}")  # nothing partial to ask about
    reports = load_weights(w, str(tmp_path / "pytorch_model.bin"))
    assert reports["net"].strict_by_name
    title, text = w.messages[-1]
    assert title == "Weights loaded" and "52 of 52 tensors matched by name" in text
    assert "translated with the hf-gpt2 key map" in text
    asked: list[str] = []  # closing asks: the unsaved project holds the loaded weights
    w.ask = lambda title, text: asked.append(text) or True


@pytest.mark.timeout(60)
def test_a_file_of_another_layout_under_the_same_names_is_refused_not_an_error() -> None:
    ours, state = _gpt_small_pair()
    state["transformer.h.1.attn.c_attn.weight"] = torch.zeros(384)  # 1-D: nothing to transpose
    with pytest.raises(KeyMapError, match="wrong shape") as err:
        load_pretrained(ours, state, source="hf-gpt2")
    assert err.value.conversion.mismatched == [("blocks.1.attn.in_proj_weight", (384, 128),
                                                (384,))]
    assert adapt(ours.state_dict(), state) is state  # Load weights… then matches as before


@pytest.mark.timeout(60)
def test_two_keys_of_the_file_naming_one_tensor_leave_the_second_unused() -> None:
    ours, state = _gpt_small_pair()
    state["wte.weight"] = torch.zeros_like(state["transformer.wte.weight"])  # which one wins?
    with pytest.raises(KeyMapError) as err:
        load_pretrained(ours, state, source="hf-gpt2")
    assert err.value.conversion.unused == ["wte.weight"]
