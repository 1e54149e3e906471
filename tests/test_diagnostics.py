"""One test per diagnostic kind: each names the node and carries a hint that says how to fix it.

Some broken wirings cannot be made through the Graph API (it refuses them); a file can still hold
them, so those tests edit the model directly, as a loaded file would.
"""

from __future__ import annotations

from compiler import EdgeModel, Project, add_network, analyze
from tests.helpers import mlp_project


def _only(diags, severity="error"):
    found = [d for d in diags if d.severity == severity]
    assert found, f"expected a {severity}; got {diags}"
    return found


def test_clean_project_has_no_diagnostics():
    assert analyze(mlp_project()).diagnostics == []


def test_cycle_names_its_nodes():
    p = mlp_project()
    net = p.networks[0]
    fc1, act = net.node_by_name("fc1"), net.node_by_name("act1")
    # act1 -> fc1 closes a loop fc1 -> act1 -> fc1; the Graph API would refuse it.
    net.edges.append(EdgeModel(src=act.id, src_port="y", dst=fc1.id, dst_port="x"))
    errs = _only(analyze(p).diagnostics)
    cyc = next(d for d in errs if "cycle" in d.message)
    assert "act1" in cyc.message and "fc1" in cyc.message and cyc.hint


def test_unconnected_required_input():
    p = Project()
    g = add_network(p, "net")
    g.add("io.input", "x", shape=["N", 4])
    fc = g.add("linear.linear", "fc", out_features=3)
    out = g.add("io.output", "y")
    g.connect(fc, out)
    d = next(d for d in analyze(p).errors if d.node_name == "fc")
    assert d.port == "x" and "not connected" in d.message and d.hint


def test_two_wires_into_one_input():
    p = mlp_project()
    net = p.networks[0]
    x, fc2 = net.node_by_name("x"), net.node_by_name("fc2")
    net.edges.append(EdgeModel(src=x.id, dst=fc2.id))
    d = next(d for d in analyze(p).errors if "2 wires" in d.message)
    assert d.node_name == "fc2" and "Add or Concat" in d.hint


def test_port_kind_mismatch():
    p = Project()
    g = add_network(p, "net")
    gi = g.add("io.graph_input", "data", features=5)
    fc = g.add("linear.linear", "fc", out_features=2)
    out = g.add("io.output", "y")
    g.connect(fc, out)
    p.networks[0].edges.append(EdgeModel(src=gi, src_port="graph", dst=fc, dst_port="x"))
    d = next(d for d in analyze(p).errors if d.node_name == "fc")
    assert "takes a tensor" in d.message and "graph" in d.message


def test_add_shape_mismatch_says_which_dims_and_suggests_projection():
    p = Project()
    g = add_network(p, "net")
    a = g.add("io.input", "a", shape=["N", 64, 56, 56])
    b = g.add("io.input", "b", shape=["N", 128, 28, 28])
    add = g.add("merge.add", "residual")
    g.connect(a, add)
    g.connect(b, add)
    g.connect(add, g.add("io.output", "y"))
    d = next(d for d in analyze(p).errors if d.node_name == "residual")
    assert "[N, 64, 56, 56]" in d.message and "[N, 128, 28, 28]" in d.message
    assert "dim 1: 64 vs 128" in d.message
    assert "1×1 Conv2d" in d.hint and "stride=2" in d.hint and "out_channels=128" in d.hint


def test_invalid_param_in_file():
    p = mlp_project()
    p.networks[0].node_by_name("fc1").params["out_features"] = -3
    d = next(d for d in analyze(p).errors if d.node_name == "fc1")
    assert "out_features" in d.message and d.hint


def test_dead_node_is_a_warning():
    p = mlp_project()
    g = __import__("compiler").Graph(p, "net")
    extra = g.add("linear.linear", "unused", out_features=5)
    g.connect(g.find("act1"), extra)
    a = analyze(p)
    assert a.ok
    w = _only(a.diagnostics, "warning")
    assert w[0].node_name == "unused" and "reaches no Output" in w[0].message


def test_network_without_output():
    p = Project()
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 4]}, "x"), ("linear.linear", {"out_features": 2}, "fc"))
    assert any("has no Output" in d.message for d in analyze(p).errors)


def test_shape_error_does_not_cascade():
    p = Project()
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 4], "dtype": "long"}, "ids"),
            ("linear.linear", {"out_features": 2}, "fc"),
            ("activation.relu", {}, "act"),
            ("io.output", {}, "y"))
    errs = analyze(p).errors
    assert [d.node_name for d in errs] == ["fc"]
    assert "Embedding" in errs[0].hint


def test_error_inside_block_names_block_and_node():
    from compiler.graph import add_block, ref

    p = Project()
    b = add_block(p, "Blk", {"w": 4})
    i = b.add("io.block_input", "x")
    b.chain(i, ("linear.linear", {"out_features": ref("w")}, "inner"), ("io.block_output", {}, "y"))
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 3], "dtype": "long"}, "x"),
            ("block.block", {"block": "Blk"}, "blk"), ("io.output", {}, "out"))
    d = analyze(p).errors[0]
    assert d.node_name == "blk" and "block 'Blk'" in d.message and "'inner'" in d.message


def test_instance_norm_on_one_pixel_is_refused_before_it_runs():
    """Found by tests/test_random_graphs.py: check passed, forward raised (checked means runs)."""
    p = Project(name="r")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 2, 1, 1]}, "x"),
            ("norm.instance_norm2d", {}, "norm"), ("io.output", {}, "y"))
    errors = analyze(p).errors
    assert [d.node_name for d in errors] == ["norm"]
    assert "one spatial element" in errors[0].message and errors[0].hint
