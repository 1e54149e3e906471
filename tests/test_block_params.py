"""Transformer templates declare their layer sizes as block params, so the exported block class
takes them as named constructor arguments (``GPTBlock(embed_dim=128, num_heads=4, ...)``)
instead of baking literals into its body, and changing an argument changes the layer."""

from __future__ import annotations

import re

import pytest
import torch

import templates
from compiler import Project, build, generate

# template -> (block, its params' defaults, the network's constructor call)
EXPECTED = {
    "gpt-small": ("GPTBlock", {"embed_dim": 128, "num_heads": 4, "mlp_dim": 512},
                  "GPTBlock(embed_dim=128, num_heads=4, mlp_dim=512)"),
    "gpt2": ("GPTBlock", {"embed_dim": 768, "num_heads": 12, "mlp_dim": 3072, "dropout": 0.1},
             "GPTBlock(embed_dim=768, num_heads=12, mlp_dim=3072, dropout=0.1)"),
    "bert-small": ("BertLayer", {"embed_dim": 128, "num_heads": 4, "dim_feedforward": 512},
                   "BertLayer(embed_dim=128, num_heads=4, dim_feedforward=512)"),
    "bert-base": ("BertLayer", {"embed_dim": 768, "num_heads": 12, "dim_feedforward": 3072,
                                "dropout": 0.1},
                  "BertLayer(embed_dim=768, num_heads=12, dim_feedforward=3072, dropout=0.1)"),
    "transformer-small": ("DecoderLayer", {"d_model": 64, "nhead": 4, "dim_feedforward": 128,
                                           "dropout": 0.0},
                          "DecoderLayer(d_model=64, nhead=4, dim_feedforward=128, dropout=0.0)"),
    "transformer-base": ("DecoderLayer", {"d_model": 512, "nhead": 8, "dim_feedforward": 2048,
                                          "dropout": 0.1},
                         "DecoderLayer(d_model=512, nhead=8, dim_feedforward=2048, "
                         "dropout=0.1)"),
}


def _class_body(text: str, cls: str) -> str:
    start = text.index(f"\nclass {cls}(nn.Module):")
    end = text.find("\nclass ", start + 1)
    return text[start:end if end > 0 else len(text)]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_block_params_are_named_constructor_arguments(name: str) -> None:
    block, defaults, call = EXPECTED[name]
    project = templates.build(name)
    assert project.block(block).param_defaults() == defaults
    text = generate(project).text
    assert call in text
    body = _class_body(text, block)
    sig = ", ".join(f"{k}: {type(v).__name__}" for k, v in defaults.items())
    head = body[body.index("def __init__("):body.index(") -> None:")]
    assert re.sub(r"\s+", " ", head).replace("( ", "(").rstrip(", ") == f"def __init__(self, {sig}"
    # no size is baked into the class: every declared value reaches it as an argument
    init = body[body.index("def __init__"):body.index("def forward")]
    for value in defaults.values():
        if isinstance(value, int):
            assert not re.search(rf"(?<![\w.-]){value}\b", init.split("\n", 1)[1]), (value, init)


def _with_block_args(name: str, **changes: int) -> Project:
    project = templates.build(name)
    for node in project.network("net").nodes:
        if node.type == "block.block":
            node.params["args"] = {**node.params["args"], **changes}
    return project


@pytest.mark.timeout(120)
def test_changing_a_gpt_block_argument_changes_the_layer() -> None:
    net = build(_with_block_args("gpt-small", num_heads=2, mlp_dim=256)).instantiate("net")
    blocks = list(net.blocks)
    assert len(blocks) == 4
    assert all(b.attn.num_heads == 2 and b.mlp_fc.out_features == 256 for b in blocks)
    logits = net(torch.randint(0, 96, (2, 9)))
    assert logits.shape == (2, 9, 96)


@pytest.mark.timeout(120)
def test_the_exported_block_class_builds_any_size_by_keyword() -> None:
    module = build(templates.build("gpt-small")).module
    block = module.GPTBlock(embed_dim=32, num_heads=2, mlp_dim=64)
    assert block.attn.embed_dim == 32 and block.mlp_proj.in_features == 64
    assert block(torch.randn(2, 5, 32)).shape == (2, 5, 32)
    layer = build(templates.build("bert-small")).module.BertLayer(
        embed_dim=16, num_heads=4, dim_feedforward=24)
    assert layer(torch.randn(3, 7, 16)).shape == (3, 7, 16)


@pytest.mark.timeout(120)
def test_a_model_without_dropout_gets_no_dropout_argument() -> None:
    # a no-op Dropout(0.0) or an unused ``dropout`` parameter is not what a person writes
    text = generate(templates.build("gpt-small")).text
    body = _class_body(text, "GPTBlock")
    assert "dropout" not in body
    assert "dropout=dropout" in _class_body(generate(templates.build("gpt2")).text, "GPTBlock")
