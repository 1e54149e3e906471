"""Import of hand-written models (torchvision- and nanoGPT-structured, and the reference models):
blocks, repeats, tied weights, opaque nodes, verification, and the messages when it cannot."""

from __future__ import annotations

import pytest
import reference_import_models as M
import reference_models as R
import torch

from compiler.build import build
from compiler.imported_weights import weights_path
from compiler.importing import ImportFailure, import_model
from compiler.loading import load
from compiler.shapes import analyze
from compiler.usercode import code_sources


def _blocks(result) -> dict[str, int]:
    return {name: uses for name, uses, _ in result.report.blocks}


def _net(result):
    return {n.name: n for n in result.project.network("net").nodes}


def test_torchvision_resnet_imports_as_blocks_with_a_repeat() -> None:
    r = import_model(M.ResNet, inputs=["N,3,32,32"])
    nodes = _net(r)
    # layer1 (two equal BasicBlocks in a Sequential) is one block node repeated twice; the
    # first block of each later stage (with a downsample) is the other block; layer2..4 keep
    # their Sequential (one block, Layer) so the state_dict keys stay torchvision's
    assert nodes["layer1"].params == {"block": "BasicBlock", "repeat": 2, "args": {"planes": 8}}
    assert nodes["layer2"].params == {"block": "Layer", "repeat": 1, "args": {"planes": 16}}
    assert _blocks(r) == {"BasicBlock": 5, "BasicBlock_2": 3, "Downsample": 3, "Layer": 3}
    # the stage width is a block param named after the constructor's argument
    assert [p.name for p in r.project.block("BasicBlock").params] == ["planes"]
    assert r.report.opaque == []
    assert r.report.max_difference <= 1e-5
    assert r.report.params_imported == r.report.params_original == sum(
        p.numel() for p in M.ResNet().parameters())


@pytest.mark.parametrize("factory, shape, expected_nodes", [
    (M.VGG, "N,3,32,32", 28),  # features, classifier: Sequential blocks (3 nodes more each)
    (M.AlexNet, "N,3,64,64", 30),
    (lambda: R.ResNet(18, num_classes=10, width=8), "N,3,32,32", 46),
])
def test_cnns_import_verified(factory, shape: str, expected_nodes: int) -> None:
    r = import_model(factory, inputs=[shape])
    assert r.report.nodes == expected_nodes
    assert r.report.max_difference <= 1e-5
    assert r.report.params_imported == r.report.params_original
    assert not analyze(r.project).errors


def test_nanogpt_draws_its_attention_and_ties_the_head() -> None:
    r = import_model(M.GPT, inputs=["N,T"], dtypes=["long"])
    nodes = _net(r)
    assert nodes["transformer_wte"].type == "linear.tied_embedding"
    assert nodes["lm_head"].type == "linear.tied_linear"
    assert nodes["wpe"].type == "attention.learned_position"
    assert nodes["transformer_h"].params["repeat"] == 2
    assert _blocks(r) == {"CausalSelfAttention": 2, "MLP": 2, "Block": 2}
    # the hand-written SDPA attention is one causal Multi-head Attention node, not opaque
    attn = {n.id: n for n in r.project.block("CausalSelfAttention").nodes}["c_attn"]
    assert attn.type == "attention.multihead_attention"
    assert attn.params["causal"] is True and attn.params["num_heads"] == 4
    assert r.report.opaque == []
    # tied: counted once, as in the original
    assert r.report.params_imported == r.report.params_original
    assert r.report.max_difference <= 1e-5


def test_reference_gpt2_imports_verified() -> None:
    r = import_model(lambda: R.GPT2(vocab=50, d=32, layers=2, heads=4, max_len=16),
                     inputs=["N,T"], dtypes=["long"])
    assert _blocks(r) == {"Attention": 2, "FeedForward": 2, "EncoderLayer": 2}
    assert r.report.opaque == [] and r.report.max_difference <= 1e-5


def test_untraceable_root_names_module_line_and_leaf() -> None:
    with pytest.raises(ImportFailure) as err:
        import_model(M.DataDependent, inputs=["N,4"])
    text = str(err.value)
    assert "reference_import_models.py:" in text and "if x.sum() > 0" in text
    assert "--leaf DataDependent" in text and "control flow" in text


class _Wraps(torch.nn.Module):
    """A traceable model around an untraceable submodule: that one becomes opaque."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = M.DataDependent()
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.inner(x)))


def test_untraceable_submodule_becomes_opaque_and_verifies() -> None:
    r = import_model(_Wraps, inputs=["N,4"])
    assert [(q, ref) for q, ref, _ in r.report.opaque] == [
        ("inner", "reference_import_models:DataDependent")]
    assert "if x.sum() > 0" in r.report.opaque[0][2]
    opaque = _net(r)["inner"]
    assert opaque.params["inputs"] == [{"dims": ["N", 4], "dtype": "float"}]
    assert opaque.params["output"] == {"dims": ["N", 4], "dtype": "float"}
    assert r.report.max_difference <= 1e-5


def test_leaf_option_keeps_a_class_as_code() -> None:
    r = import_model(lambda: R.ResNet(18, num_classes=10, width=8), inputs=["N,3,32,32"],
                     leaves=["BasicBlock"])
    assert len(r.report.opaque) == 8
    assert [cls for *_, cls in r.report.blocks] == ["Sequential", "Sequential"]  # stem, layers
    assert r.report.max_difference <= 1e-5


def test_a_wrong_weight_is_refused_by_the_verification(monkeypatch) -> None:
    """The check compares outputs: break one copied weight and the import is refused."""
    from compiler.importing import verify

    real = verify.copy_weights

    def broken(*args, **kw):
        real(*args, **kw)
        model = args[1]
        with torch.no_grad():
            next(model.parameters()).add_(1.0)

    monkeypatch.setattr("compiler.importing.pipeline.copy_weights", broken)
    with pytest.raises(ImportFailure, match="differ from the original"):
        import_model(M.VGG, inputs=["N,3,32,32"])


def test_saved_weights_load_into_the_built_project(tmp_path) -> None:
    model = M.VGG()
    r = import_model(lambda: model, inputs=["N,3,32,32"])
    path, weights = r.save(tmp_path / "vgg.loom")
    assert weights == weights_path(path) and weights.name == "vgg.weights"
    assert (weights / "net.safetensors").is_file()
    net = build(load(path)).instantiate("net", weights=str(weights)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x), model.eval()(x), atol=1e-5)


def test_bad_input_shape_and_missing_input_are_clear() -> None:
    with pytest.raises(ImportFailure, match="not a size or a symbol"):
        import_model(M.VGG, inputs=["N,3,3.5,32"])
    with pytest.raises(ImportFailure, match="give each one's shape with --input"):
        import_model(lambda: R.Seq2SeqTransformer(10, 10, 8, 2, 1, 16, 16))


def test_default_input_follows_the_first_layer() -> None:
    r = import_model(M.AlexNet)
    assert _net(r)["x"].params["shape"] == ["N", 3, 64, 64]
    assert code_sources(r.project) == []


@pytest.mark.slow  # ~5 s alone, ~20 s on the loaded test machine
def test_reference_torchvision_resnet50_reads_like_the_template() -> None:
    """Full size (25.6 M parameters): each stage one Layer block (its Sequential, so the keys stay
    torchvision's): a first block and one repeated block, the repeat a block param."""
    r = import_model(lambda: R.TVResNet(50), inputs=["N,3,64,64"])
    blocks = [n for n in r.project.network("net").nodes if n.type == "block.block"]
    assert [(n.name, n.params["block"], n.params["args"]["repeat"]) for n in blocks] == [
        ("layer1", "Layer", 2), ("layer2", "Layer", 3), ("layer3", "Layer", 5),
        ("layer4", "Layer", 2)]
    # x, conv1, bn1, relu, maxpool, 4 stage nodes, avgpool, flatten, fc, output
    assert len(r.project.network("net").nodes) == 13
    assert sorted(b.name for b in r.project.blocks) == [
        "Downsample", "Layer", "TVBottleneck", "TVBottleneck_2"]
    assert r.report.params_imported == r.report.params_original == 25_557_032
    assert r.report.max_difference <= 1e-5
