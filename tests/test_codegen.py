"""Codegen, build and export: one text, readable, safe names, equal to what the user takes away."""

from __future__ import annotations

import shutil
import subprocess
import sys
import traceback

import pytest
import torch

from compiler import Project, add_network, analyze, build, generate
from compiler.codegen import Namespace, snake_case
from compiler.export import export_model
from compiler.graph import add_block, ref
from tests.helpers import mlp_project


def staged_project() -> Project:
    """A block used in two stages with different widths, and a repeated multi-input block."""
    p = Project(name="staged")
    b = add_block(p, "Layer", {"width": 8})
    b.chain(b.add("io.block_input", "x"), ("linear.linear", {"out_features": ref("width")}, "fc"),
            ("activation.relu", {}, "act"), ("io.block_output", {}, "y"))
    m = add_block(p, "Mix")
    x, ctx = m.add("io.block_input", "x"), m.add("io.block_input", "ctx")
    add = m.add("merge.add", "add")
    m.connect(x, add)
    m.connect(ctx, add)
    m.chain(add, ("linear.linear", {"out_features": 8}, "proj"), ("io.block_output", {}, "y"))
    g = add_network(p, "net")
    inp = g.add("io.input", "features", shape=["N", 16])
    s1 = g.add("block.block", "stage1", block="Layer", repeat=2, args={"width": 8})
    s2 = g.add("block.block", "stage2", block="Layer", repeat=1, args={"width": 8})
    mix = g.add("block.block", "mix", block="Mix", repeat=3)
    g.chain(inp, s1, s2)
    g.connect(s2, mix, dst_port="x")
    g.connect(s1, mix, dst_port="ctx")
    g.chain(mix, ("linear.linear", {"out_features": 3}, "head"), ("io.output", {}, "logits"))
    return p


def test_generated_code_reads_like_pytorch():
    text = generate(staged_project()).text
    # a block that is a plain chain of layers is an nn.Sequential, repeats flattened into it
    assert "class Layer" not in text
    assert ("self.stage1 = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())"
            in text)
    assert "self.stage2 = nn.Sequential(nn.Linear(8, 8), nn.ReLU())" in text
    assert "for layer in self.mix:" in text  # repeated two-input block loops over a ModuleList
    assert "mix = self.head(mix)  # [N, 3]" in text  # a dying value's name is reused
    assert "features = self.stage1(features)  # [N, 8]" in text
    assert "NETWORKS" in text


def pair_project(widths: tuple[int, int] = (8, 8)) -> Project:
    """A block that is not a chain (two branches added), used at two input widths."""
    p = Project(name="pair")
    b = add_block(p, "Pair", {"width": 8})
    x = b.add("io.block_input", "x")
    add = b.add("merge.add", "add")
    for name in ("left", "right"):
        b.connect(b.chain(x, ("linear.linear", {"out_features": ref("width")}, name))[-1], add)
    b.chain(add, ("activation.relu", {}, "act"), ("io.block_output", {}, "y"))
    g = add_network(p, "net")
    g.chain(g.add("io.input", "features", shape=["N", 16]),
            ("block.block", {"block": "Pair", "args": {"width": widths[0]}}, "first"),
            ("block.block", {"block": "Pair", "args": {"width": widths[1]}}, "second"),
            ("io.output", {}, "y"))
    return p


def test_block_param_names_the_lifted_argument():
    text = generate(pair_project()).text
    # every declared block param is an argument; the inferred in_features (16 vs 8) is lifted
    assert "def __init__(self, in_features: int, width: int) -> None:" in text
    assert "self.left = nn.Linear(in_features, width)" in text
    assert "self.first = Pair(in_features=16, width=8)" in text
    assert "self.second = Pair(in_features=8, width=8)" in text
    text = generate(pair_project((8, 4))).text
    assert "self.second = Pair(in_features=8, width=4)" in text
    # inside the block, shape comments name sizes after its arguments
    assert "out = self.left(x)  # [N, width]" in text
    model = build(pair_project((8, 4))).instantiate()
    assert model(torch.randn(2, 16)).shape == (2, 4)


def test_generated_code_passes_ruff(tmp_path):
    ruff = shutil.which("ruff") or str(__import__("pathlib").Path(sys.executable).parent / "ruff")
    path = export_model(staged_project(), tmp_path)
    res = subprocess.run([ruff, "check", "--isolated", "--select", "E,F,W,B", "--line-length",
                          "120", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_names_are_made_safe():
    ns = Namespace()
    assert ns.create("class") == "class_"
    assert ns.create("1st layer!") == "n1st_layer"
    assert ns.create("self") == "self_1"
    assert ns.create("Conv Block") == "conv_block"
    assert ns.create("conv block") == "conv_block_1"
    assert ns.create("print") == "print_"
    assert snake_case("ConvBlock2D") == "conv_block2_d"
    p = Project(name="weird")
    g = add_network(p, "for")
    g.chain(("io.input", {"shape": ["N", 4]}, "in"), ("linear.linear", {"out_features": 2}, "def"),
            ("linear.linear", {"out_features": 2}, "DEF"), ("io.output", {}, "return"))
    model = build(p).instantiate("for")
    assert model(torch.randn(2, 4)).shape == (2, 2)


def test_export_equals_build_in_fresh_interpreter(tmp_path):
    p = staged_project()
    export_model(p, tmp_path)  # model.py, imported by the fresh interpreter below
    built = build(p).instantiate("net")
    torch.manual_seed(0)
    ref_model = build(p).instantiate("net")
    x = torch.randn(4, 16)
    torch.save({"state": ref_model.state_dict(), "x": x}, tmp_path / "ref.pt")
    script = (
        "import sys, torch\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "import model\n"
        "torch.manual_seed(0)\n"
        "m = model.NETWORKS['net']()\n"
        f"ref = torch.load({str(tmp_path / 'ref.pt')!r}, weights_only=True)\n"
        "own = m.state_dict()\n"
        "assert list(own) == list(ref['state']), (list(own), list(ref['state']))\n"
        "assert all(own[k].shape == ref['state'][k].shape for k in own)\n"
        "assert all(torch.equal(own[k], ref['state'][k]) for k in own), 'same seed, same init'\n"
        "print(m(ref['x']).sum().item())\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env={"PATH": "", "PYTHONPATH": ""}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    built.load_state_dict(ref_model.state_dict())
    expected = ref_model(x).sum().item()
    assert float(res.stdout) == pytest.approx(expected, rel=1e-6)


def test_exported_text_is_the_built_text(tmp_path):
    p = mlp_project()
    built = build(p)
    path = export_model(built.source, tmp_path)
    assert path.read_text() == built.source.text
    assert generate(p).text == built.source.text  # deterministic


def test_traceback_points_at_generated_line():
    p = mlp_project()
    model = build(p).instantiate()
    try:
        model(torch.randn(2, 63))  # wrong feature size on purpose
    except RuntimeError:
        tb = traceback.format_exc()
    assert "model.py" in tb and "self.fc1(x)" in tb


def test_node_lines_locate_each_node():
    p = mlp_project()
    src = generate(p)
    lines = src.text.splitlines()
    fc1 = p.networks[0].node_by_name("fc1").id
    where = src.node_lines[("net", fc1)]
    assert any("self.fc1 = nn.Linear(64, 32)" in lines[i - 1] for i in where)
    assert any("x = self.fc1(x)" in lines[i - 1] for i in where)


def test_codegen_refuses_projects_with_errors():
    from compiler import CodegenError

    p = mlp_project()
    p.networks[0].node_by_name("fc1").params["out_features"] = 0
    with pytest.raises(CodegenError, match="fc1"):
        generate(p)
    assert not analyze(p).ok


def test_a_value_returned_and_used_again_keeps_its_name():
    """An output read before a later node uses the same value (BERT's sequence and pooled
    outputs): rebinding that name would return the wrong tensor."""
    p = Project(name="two outputs")
    g = add_network(p, "net")
    fc = g.chain(("io.input", {"shape": ["N", 4]}, "x"),
                 ("linear.linear", {"out_features": 3}, "fc"))[-1]
    g.connect(fc, g.add("io.output", "hidden"))
    g.chain(fc, ("activation.tanh", {}, "act"), ("linear.linear", {"out_features": 2}, "head"),
            ("io.output", {}, "y"))
    model = build(p).instantiate()
    x = torch.randn(5, 4)
    hidden, y = model(x)
    with torch.no_grad():
        expected = model.fc(x)
        torch.testing.assert_close(hidden, expected)
        torch.testing.assert_close(y, model.head(torch.tanh(expected)))
    text = generate(p).text
    assert "        x = self.fc(x)  # [N, 3]\n        out = self.act(x)\n" in text
    assert "return x, out" in text


def test_no_op_layers_write_no_code():
    p = Project(name="noop")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 4]}, "x"), ("norm.dropout", {"p": 0.0}, "drop"),
            ("linear.linear", {"out_features": 2}, "fc"), ("io.output", {}, "y"))
    text = generate(p).text
    assert "Dropout" not in text and "self.drop" not in text
    assert "        x = self.fc(x)  # [N, 2]\n        return x\n" in text
    assert build(p).instantiate()(torch.randn(3, 4)).shape == (3, 2)
