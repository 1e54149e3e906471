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
    assert "class Layer(nn.Module):" in text
    assert "def __init__(self, in_features: int) -> None:" in text  # lifted: 16 vs 8
    assert "self.fc = nn.Linear(in_features, 8)" in text
    assert "for layer in self.mix:" in text  # repeated two-input block loops over a ModuleList
    assert "head = self.head(mix)  # [N, 3]" in text
    assert "NETWORKS" in text


def test_block_param_names_the_lifted_argument():
    p = staged_project()
    net = p.networks[0]
    net.node_by_name("stage2").params["args"] = {"width": 4}
    ctx = next(e for e in net.edges if e.dst_port == "ctx")
    ctx.src = net.node_by_name("stage2").id  # mix now adds stage2 to itself: both [N, 4]
    net.node_by_name("mix").params["repeat"] = 1
    text = generate(p).text
    assert "def __init__(self, in_features: int, width: int)" in text
    assert "nn.Linear(in_features, width)" in text


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
    path = export_model(p, tmp_path)
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
    assert any("fc1 = self.fc1(x)" in lines[i - 1] for i in where)


def test_codegen_refuses_projects_with_errors():
    from compiler import CodegenError

    p = mlp_project()
    p.networks[0].node_by_name("fc1").params["out_features"] = 0
    with pytest.raises(CodegenError, match="fc1"):
        generate(p)
    assert not analyze(p).ok
