"""The editing API that templates, tests and the GUI's undo commands share."""

from __future__ import annotations

import pytest
import torch

from compiler import Graph, GraphEditError, Project, add_network, analyze, build
from compiler.graph import expand_block, make_block
from tests.helpers import mlp_project


def test_refusals_say_why_and_change_nothing():
    p = mlp_project()
    g = Graph(p, "net")
    before = p.model_dump()
    fc1, fc2, act = g.find("fc1"), g.find("fc2"), g.find("act1")
    with pytest.raises(GraphEditError, match="already has a wire"):
        g.connect(fc1, fc2)
    with pytest.raises(GraphEditError, match="cycle"):
        g.connect(fc2, fc1, dst_port="x", replace=True)
    with pytest.raises(GraphEditError, match="feed itself"):
        g.connect(fc1, fc1, replace=True)
    with pytest.raises(GraphEditError, match="out_features"):
        g.set_params(fc1, out_features=0)
    with pytest.raises(GraphEditError, match="no input 'q'"):
        g.connect(act, fc2, dst_port="q")
    with pytest.raises(GraphEditError, match="already exists"):
        g.rename(fc1, "fc2")
    with pytest.raises(GraphEditError, match="unknown node type"):
        g.add("conv.warp9")
    assert p.model_dump() == before


def test_rewire_with_replace_and_undo_data():
    p = mlp_project()
    g = Graph(p, "net")
    x, fc2 = g.find("x"), g.find("fc2")
    g.set_params(fc2, out_features=10)
    edge = g.connect(x, fc2, replace=True)
    assert [e.src for e in g.edges_into(fc2)] == [x]
    assert analyze(p).networks["net"].by_name("fc2").ins["x"].dims == ("N", 64)
    g.disconnect(edge)
    assert g.edges_into(fc2) == []


def test_remove_and_restore_is_exact():
    p = mlp_project()
    g = Graph(p, "net")
    before = p.model_dump()
    node, index, wires = g.remove(g.find("act1"))
    assert len(p.networks[0].nodes) == 4
    g.restore(node, index, wires)
    assert p.model_dump() == before


def test_notify_called_for_each_edit():
    events = []
    p = mlp_project()
    g = Graph(p, "net", notify=lambda e, info: events.append(e))
    fc = g.add("linear.linear", out_features=3)
    g.set_params(fc, out_features=4)
    g.rename(fc, "extra")
    g.remove(fc)
    assert events == ["node_added", "node_changed", "node_changed", "node_removed"]


def test_auto_names_are_unique():
    p = Project()
    g = add_network(p, "net")
    a, b = g.add("linear.linear"), g.add("linear.linear")
    assert g.node(a).name == "linear" and g.node(b).name == "linear_1"


def test_networkx_round_trip():
    p = mlp_project()
    nxg = Graph(p, "net").to_networkx()
    assert nxg.number_of_nodes() == 5 and nxg.number_of_edges() == 4
    q = Project()
    Graph.from_networkx(q, nxg, "copy")
    assert analyze(q).ok
    torch.manual_seed(0)
    a = build(p).instantiate("net")
    torch.manual_seed(0)
    b = build(q).instantiate("copy")
    x = torch.randn(3, 64)
    assert torch.equal(a(x), b(x))


def test_make_block_then_expand_keeps_the_function():
    p = mlp_project()
    g = Graph(p, "net")
    torch.manual_seed(0)
    reference = build(p).instantiate()
    node = make_block(p, "net", [g.find("fc1"), g.find("act1")], "Hidden")
    assert analyze(p).ok, analyze(p).errors
    block = p.block("Hidden")
    assert {n.type for n in block.nodes} >= {"io.block_input", "io.block_output"}
    blocked = build(p).instantiate()
    assert sum(t.numel() for t in blocked.parameters()) == sum(
        t.numel() for t in reference.parameters())
    expand_block(p, "net", node)
    assert analyze(p).ok
    assert len(p.networks[0].nodes) == 5
    x = torch.randn(2, 64)
    flat = build(p).instantiate()
    with torch.no_grad():  # expanded nodes are renamed (hidden_fc1), so copy by order
        for mine, theirs in zip(flat.parameters(), reference.parameters(), strict=True):
            mine.copy_(theirs)
    assert torch.allclose(flat(x), reference(x))


def test_make_block_refuses_io_nodes_and_duplicates():
    p = mlp_project()
    g = Graph(p, "net")
    with pytest.raises(GraphEditError, match="network input/output"):
        make_block(p, "net", [g.find("x"), g.find("fc1")], "B")
    make_block(p, "net", [g.find("fc1")], "B")
    with pytest.raises(GraphEditError, match="already exists"):
        make_block(p, "net", [g.find("fc2")], "B")
