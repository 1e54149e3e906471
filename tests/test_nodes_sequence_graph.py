"""Recurrent, attention, graph and generative node types, checked through the real compiler.

Every model here is built from a project with the graph API, generated, exec'd and run in torch,
and its numbers are compared with torch's own modules or a dense reference computation.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from compiler import Project, add_block, add_network, analyze, build, generate, ref
from nodes import registry
from nodes.base import SYMBOL_SIZES, Example, GraphSpec, TensorSpec

FAMILIES = ("recurrent.", "attention.", "graph.", "generative.")
MY_TYPES = sorted(t.id for t in registry.all_types() if t.id.startswith(FAMILIES))


def make_graph(num_nodes: list[int], edges: list[tuple[int, int]], seed: int = 0):
    """A batch of graphs in the generated module's own Graph class (undirected edges doubled)."""
    both = edges + [(b, a) for a, b in edges]
    edge_index = torch.tensor(both, dtype=torch.long).t().reshape(2, -1)
    batch = torch.cat([torch.full((n,), i, dtype=torch.long) for i, n in enumerate(num_nodes)])
    return edge_index, batch, len(num_nodes)


def graph_value(module: Any, num_nodes: list[int], edges: list[tuple[int, int]]) -> Any:
    edge_index, batch, count = make_graph(num_nodes, edges)
    return module.Graph(edge_index=edge_index, batch=batch, num_graphs=count)


def random_graph(module: Any, v: int, e: int, b: int, seed: int = 0) -> Any:
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, v, (2, e), generator=gen)
    every = torch.cat([torch.arange(b), torch.randint(0, b, (v - b,), generator=gen)])
    batch = torch.sort(every).values  # each graph gets at least one node
    return module.Graph(edge_index=edge_index, batch=batch, num_graphs=b)


def example_project(type_id: str, ex: Example) -> tuple[Project, list[str]]:
    """A network: one Input per tensor port (a Graph Input for graph ports), the node, Outputs."""
    p = Project(name="example")
    g = add_network(p, "net")
    node = g.add(type_id, "node", **ex.params)
    graph_src = None
    for port, spec in ex.inputs.items():
        if isinstance(spec, GraphSpec):
            continue
        assert isinstance(spec, TensorSpec)
        if port == "x" and any(isinstance(s, GraphSpec) for s in ex.inputs.values()):
            graph_src = g.add("io.graph_input", "g", features=spec.dims[-1])
            g.connect(graph_src, node, "x", "x")
            continue
        src = g.add("io.input", port, shape=list(spec.dims),
                    dtype="long" if spec.dtype in ("long", "bool") else "float")
        g.connect(src, node, "y", port)
    if graph_src is not None:
        g.connect(graph_src, node, "graph", "graph")
    outs = [q.name for q in registry.get(type_id).outputs]
    for port in outs:
        g.connect(node, g.add("io.output", f"out_{port}"), port, "x")
    return p, outs


def example_args(res: Any, module: Any) -> list[Any]:
    args: list[Any] = []
    for inp in res.inputs():
        for spec in inp.outs.values():
            if isinstance(spec, GraphSpec):
                args.append(random_graph(module, SYMBOL_SIZES["V"], SYMBOL_SIZES["E"],
                                         SYMBOL_SIZES["B"]))
            elif spec.dtype == "long":  # padding masks: pad the last key of the first sample
                mask = torch.zeros(spec.concrete(), dtype=torch.long)
                mask[0, -1] = 1
                args.append(mask)
            else:
                args.append(torch.randn(spec.concrete()))
    return args


@pytest.mark.parametrize("type_id", MY_TYPES)
def test_examples_run_with_the_inferred_shapes(type_id: str) -> None:
    cls = registry.get(type_id)
    assert cls.examples(), f"{type_id} has no examples"
    assert cls.description and cls.category in ("Recurrent", "Attention", "Graph", "Generative")
    fields = cls.Params.model_fields
    assert set(cls.key_params) <= set(fields)
    for name, field in fields.items():
        assert field.description, f"{type_id}.{name} has no description"
        if field.annotation in (int, float):
            bounds = {type(m).__name__ for m in field.metadata}
            assert bounds & {"Ge", "Gt"} and bounds & {"Le", "Lt"}, f"{type_id}.{name} unbounded"
    for ex in cls.examples():
        p, outs = example_project(type_id, ex)
        analysis = analyze(p)
        assert not analysis.errors, [str(d) for d in analysis.errors]
        res = analysis.networks["net"]
        built = build(generate(analysis))
        model = built.instantiate("net")
        for mode in (model.train, model.eval):
            mode()
            got = model(*example_args(res, built.module))
            got = got if isinstance(got, tuple) else (got,)
            node = res.by_name("node")
            for port, tensor in zip(outs, got, strict=True):
                assert tuple(tensor.shape) == node.outs[port].concrete(), (type_id, ex.params)
                assert torch.isfinite(tensor).all(), (type_id, ex.params, port)


# -- recurrent ------------------------------------------------------------------------------------


def sequence_net(type_id: str, features: int = 5, **params: Any) -> Project:
    p = Project(name="rnn")
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", "T", features])
    r = g.add(type_id, "rnn", **params)
    g.connect(x, r)
    g.connect(r, g.add("io.output", "seq"), "output", "x")
    g.connect(r, g.add("io.output", "last"), "hidden", "x")
    return p


def test_lstm_hidden_is_the_last_layer_final_state_of_both_directions() -> None:
    p = sequence_net("recurrent.lstm", hidden_size=6, num_layers=2, bidirectional=True)
    model = build(p).instantiate().eval()
    x = torch.randn(3, 4, 5)
    seq, hidden = model(x)
    ref_out, (h_n, _c_n) = model.rnn(x)  # the torch module itself
    assert isinstance(model.rnn, torch.nn.LSTM) and model.rnn.batch_first
    torch.testing.assert_close(seq, ref_out)
    torch.testing.assert_close(hidden, torch.cat([h_n[-2], h_n[-1]], dim=-1))
    assert hidden.shape == (3, 12)
    # Forward direction's final state is the last step; backward's is the first step.
    torch.testing.assert_close(hidden[:, :6], seq[:, -1, :6])
    torch.testing.assert_close(hidden[:, 6:], seq[:, 0, 6:])


@pytest.mark.parametrize("type_id", ["recurrent.gru", "recurrent.rnn"])
def test_unidirectional_hidden_is_the_last_step(type_id: str) -> None:
    extra = {"nonlinearity": "relu"} if type_id == "recurrent.rnn" else {}
    p = sequence_net(type_id, hidden_size=4, num_layers=3, **extra)
    model = build(p).instantiate().eval()
    seq, hidden = model(torch.randn(2, 7, 5))
    torch.testing.assert_close(hidden, seq[:, -1])
    assert "output_and_hidden(self.rnn(x), directions=1)" in generate(p).text


# -- attention ------------------------------------------------------------------------------------


def attention_net(type_id: str, masked: bool = False, memory: bool = False, **params: Any):
    p = Project(name="attn")
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", "T", 8])
    node = g.add(type_id, "layer", **params)
    g.connect(x, node)
    if memory:
        g.connect(g.add("io.input", "memory", shape=["N", "S", 8]), node, "y", "memory")
    if masked:
        port = "key_padding_mask" if type_id.endswith("multihead_attention") else "padding_mask"
        g.connect(g.add("io.input", "mask", shape=["N", "T"], dtype="long"), node, "y", port)
    g.connect(node, g.add("io.output", "y"))
    return build(p).instantiate().eval()


CAUSAL = [("attention.multihead_attention", {"num_heads": 2, "causal": True}, False),
          ("attention.transformer_encoder_layer",
           {"nhead": 2, "dim_feedforward": 16, "causal": True}, False),
          ("attention.transformer_decoder_layer", {"nhead": 2, "dim_feedforward": 16}, True)]


@pytest.mark.parametrize("type_id,params,memory", CAUSAL)
def test_causal_output_at_t_ignores_later_steps(type_id: str, params: dict, memory: bool) -> None:
    torch.manual_seed(0)
    model = attention_net(type_id, memory=memory, **params)
    x = torch.randn(2, 6, 8)
    extra = (torch.randn(2, 4, 8),) if memory else ()
    y = model(x, *extra)
    for t in range(5):
        x2 = x.clone()
        x2[:, t + 1:] = torch.randn(2, 5 - t, 8)
        y2 = model(x2, *extra)
        torch.testing.assert_close(y2[:, : t + 1], y[:, : t + 1])
        assert not torch.allclose(y2[:, t + 1:], y[:, t + 1:])


def test_non_causal_attention_sees_later_steps() -> None:
    model = attention_net("attention.multihead_attention", num_heads=2)
    x = torch.randn(1, 4, 8)
    x2 = x.clone()
    x2[:, -1] += 1.0
    assert not torch.allclose(model(x)[:, 0], model(x2)[:, 0])


@pytest.mark.parametrize("type_id,params", [
    ("attention.multihead_attention", {"num_heads": 4}),
    ("attention.transformer_encoder_layer", {"nhead": 2, "dim_feedforward": 16, "dropout": 0.0}),
])
def test_padding_mask_hides_padded_keys(type_id: str, params: dict) -> None:
    torch.manual_seed(1)
    model = attention_net(type_id, masked=True, **params)
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]])  # 1 = padding
    y = model(x, mask)
    x2 = x.clone()
    x2[0, 3:] = torch.randn(2, 8) * 10
    y2 = model(x2, mask)
    torch.testing.assert_close(y2[0, :3], y[0, :3])  # real steps do not see the padding
    torch.testing.assert_close(y2[1], y[1])
    y3 = model(x2, torch.zeros_like(mask))  # without the mask the change shows
    assert not torch.allclose(y3[0, :3], y[0, :3])
    # A bool mask (torch's own convention) means the same thing.
    torch.testing.assert_close(model(x, mask.bool()), y)


def test_cross_attention_with_other_key_and_value_sizes() -> None:
    p = Project(name="cross")
    g = add_network(p, "net")
    q = g.add("io.input", "q", shape=["N", "T", 8])
    k = g.add("io.input", "k", shape=["N", "S", 6])
    v = g.add("io.input", "v", shape=["N", "S", 3])
    a = g.add("attention.multihead_attention", "attn", num_heads=2)
    for src, port in ((q, "query"), (k, "key"), (v, "value")):
        g.connect(src, a, "y", port)
    g.connect(a, g.add("io.output", "y"))
    text = generate(p).text
    assert "nn.MultiheadAttention(8, 2, kdim=6, vdim=3, batch_first=True)" in text
    model = build(p).instantiate().eval()
    y = model(torch.randn(2, 4, 8), torch.randn(2, 9, 6), torch.randn(2, 9, 3))
    assert y.shape == (2, 4, 8)


def test_sinusoidal_position_adds_the_known_encoding() -> None:
    p = Project(name="pos")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", "T", 6]}, "x"),
            ("attention.sinusoidal_position", {"max_len": 10}, "pos"), ("io.output", {}, "y"))
    model = build(p).instantiate().eval()
    y = model(torch.zeros(1, 4, 6))
    pos = torch.arange(4.0).unsqueeze(1)
    freq = 10000.0 ** (-torch.arange(0, 6, 2) / 6)
    expected = torch.stack([torch.sin(pos * freq), torch.cos(pos * freq)], dim=-1).reshape(4, 6)
    torch.testing.assert_close(y[0], expected)
    assert not list(model.parameters()) and "pos.pe" not in model.state_dict()
    with pytest.raises(ValueError, match="sequence length 11 exceeds max_len=10"):
        model(torch.zeros(1, 11, 6))


def test_attention_block_repeats_carry_x_and_keep_memory() -> None:
    p = Project(name="decoder")
    b = add_block(p, "DecoderLayer", {"heads": 2})
    x = b.add("io.block_input", "x")
    mem = b.add("io.block_input", "memory")
    layer = b.add("attention.transformer_decoder_layer", "layer", nhead=ref("heads"),
                  dim_feedforward=16)
    b.connect(x, layer, "y", "x")
    b.connect(mem, layer, "y", "memory")
    b.connect(layer, b.add("io.block_output", "y"))
    g = add_network(p, "net")
    tgt = g.add("io.input", "tgt", shape=["N", "T", 8])
    memory = g.add("io.input", "memory", shape=["N", "S", 8])
    blk = g.add("block.block", "decoder", block="DecoderLayer", repeat=2, args={"heads": 4})
    g.connect(tgt, blk, "y", "x")
    g.connect(memory, blk, "y", "memory")
    g.connect(blk, g.add("io.output", "y"))
    model = build(p).instantiate().eval()
    assert model(torch.randn(2, 3, 8), torch.randn(2, 5, 8)).shape == (2, 3, 8)


# -- graph ----------------------------------------------------------------------------------------


def graph_net(type_id: str, features: int = 3, pool: str | None = None, **params: Any):
    p = Project(name="gnn")
    g = add_network(p, "net")
    src = g.add("io.graph_input", "g", features=features)
    node = g.add(type_id, "conv", **params)
    g.connect(src, node, "x", "x")
    g.connect(src, node, "graph", "graph")
    g.connect(node, g.add("io.output", "y"))
    return build(p)


TWO_GRAPHS = ([3, 4], [(0, 1), (1, 2), (3, 4), (4, 5), (5, 6), (3, 6)])


def dense_adjacency(v: int, edge_index: torch.Tensor) -> torch.Tensor:
    a = torch.zeros(v, v)
    for s, t in edge_index.t().tolist():
        a[t, s] += 1.0  # row = receiving node
    return a


def test_gcn_equals_the_dense_normalised_adjacency() -> None:
    built = graph_net("graph.gcn_conv", out_channels=4)
    model = built.instantiate().eval()
    graph = graph_value(built.module, *TWO_GRAPHS)
    x = torch.randn(7, 3)
    a_hat = dense_adjacency(7, graph.edge_index) + torch.eye(7)
    d = a_hat.sum(dim=1).rsqrt()
    weight, bias = model.conv.linear.weight, model.conv.bias
    expected = (d[:, None] * a_hat * d[None, :]) @ x @ weight.t() + bias
    torch.testing.assert_close(model(x, graph), expected)


@pytest.mark.parametrize("aggr", ["sum", "mean", "max"])
def test_message_passing_aggregates_neighbours(aggr: str) -> None:
    built = graph_net("graph.message_passing", out_channels=2, aggr=aggr)
    model = built.instantiate().eval()
    graph = graph_value(built.module, [3, 2], [(0, 1), (1, 2)])  # node 3, 4 isolated
    x = torch.randn(5, 3)
    a = dense_adjacency(5, graph.edge_index)
    rows = []
    for i in range(5):
        nbrs = x[a[i] > 0]
        if len(nbrs) == 0:
            rows.append(torch.zeros(3))
        else:
            rows.append({"sum": nbrs.sum(0), "mean": nbrs.mean(0), "max": nbrs.amax(0)}[aggr])
    expected = model.conv.root(x) + model.conv.neighbour(torch.stack(rows))
    torch.testing.assert_close(model(x, graph), expected)


def test_gin_and_sage_follow_their_formulas() -> None:
    built = graph_net("graph.gin_conv", out_channels=4, eps=0.5)
    model = built.instantiate().eval()
    graph = graph_value(built.module, *TWO_GRAPHS)
    x = torch.randn(7, 3)
    a = dense_adjacency(7, graph.edge_index)
    torch.testing.assert_close(model(x, graph), model.conv.mlp(1.5 * x + a @ x))
    built = graph_net("graph.sage_conv", out_channels=4, normalize=True)
    model = built.instantiate().eval()
    mean = (a @ x) / a.sum(1, keepdim=True)
    out = model.conv.root(x) + model.conv.neighbour(mean)
    expected = torch.nn.functional.normalize(out, dim=-1)
    torch.testing.assert_close(model(x, graph), expected)


@pytest.mark.parametrize("reduce", ["mean", "sum", "max"])
def test_global_pool_per_graph(reduce: str) -> None:
    built = graph_net("graph.global_pool", reduce=reduce)
    model = built.instantiate().eval()
    graph = graph_value(built.module, *TWO_GRAPHS)
    x = torch.randn(7, 3)
    op = {"mean": lambda t: t.mean(0), "sum": lambda t: t.sum(0), "max": lambda t: t.amax(0)}
    expected = torch.stack([op[reduce](x[:3]), op[reduce](x[3:])])
    y = model(x, graph)
    assert y.shape == (2, 3)
    torch.testing.assert_close(y, expected)


def test_graph_classifier_trains_and_generated_code_needs_only_torch() -> None:
    p = Project(name="gnn classifier")
    g = add_network(p, "net")
    src = g.add("io.graph_input", "g", features=3)
    c1 = g.add("graph.gcn_conv", "conv1", out_channels=8)
    c2 = g.add("graph.sage_conv", "conv2", out_channels=8)
    pool = g.add("graph.global_pool")  # default names must not shadow the generated helpers
    for node in (c1, c2, pool):
        g.connect(src, node, "graph", "graph")
    g.connect(src, c1, "x", "x")
    g.chain(c1, ("activation.relu", {}, "act"), c2)
    g.connect(c2, pool, "y", "x")
    g.chain(pool, ("linear.linear", {"out_features": 2}, "head"), ("io.output", {}, "logits"))
    analysis = analyze(p)
    assert not analysis.errors, [str(d) for d in analysis.errors]
    assert analysis.networks["net"].by_name("global_pool").outs["y"] == TensorSpec(("B", 8))
    text = generate(p).text
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert all("torch" in line or "__future__" in line or "typing" in line for line in imports)
    built = build(p)
    model = built.instantiate()
    graph = graph_value(built.module, *TWO_GRAPHS)
    x = torch.randn(7, 3)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    target = torch.tensor([0, 1])
    first = None
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(model(x, graph), target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first


# -- generative -----------------------------------------------------------------------------------


def test_reparameterize_samples_in_training_and_returns_mu_in_eval() -> None:
    p = Project(name="vae")
    g = add_network(p, "net")
    h = g.add("io.input", "h", shape=["N", 6])
    mu = g.add("linear.linear", "mu", out_features=4)
    logvar = g.add("linear.linear", "logvar", out_features=4)
    z = g.add("generative.reparameterize", "z")
    g.connect(h, mu)
    g.connect(h, logvar)
    g.connect(mu, z, "y", "mu")
    g.connect(logvar, z, "y", "logvar")
    g.connect(z, g.add("io.output", "sample"))
    assert analyze(p).networks["net"].by_name("z").outs["z"] == TensorSpec(("N", 4))
    model = build(p).instantiate()
    x = torch.randn(3, 6)
    model.eval()
    z1, z2 = model(x), model(x)
    torch.testing.assert_close(z1, model.mu(x))
    torch.testing.assert_close(z1, z2)
    model.train()
    torch.manual_seed(0)
    s1 = model(x)
    assert s1.shape == (3, 4) and not torch.allclose(s1, model(x))
    # The noise is scaled by exp(logvar / 2): a large batch recovers that spread.
    big = torch.randn(4000, 6)
    spread = ((model(big) - model.mu(big)) / torch.exp(0.5 * model.logvar(big))).std()
    assert 0.9 < spread.item() < 1.1


# -- errors a user can make --------------------------------------------------------------------


def single_node_errors(type_id: str, inputs: dict[str, tuple[list, str]], **params: Any):
    p = Project(name="err")
    g = add_network(p, "net")
    node = g.add(type_id, "node", **params)
    for port, (shape, dtype) in inputs.items():
        g.connect(g.add("io.input", port, shape=shape, dtype=dtype), node, "y", port)
    outs = registry.get(type_id).outputs
    g.connect(node, g.add("io.output", "out"), outs[0].name, "x")
    errors = analyze(p).errors
    assert errors, "expected an error"
    assert all(e.node_name == "node" and e.hint for e in errors), [str(e) for e in errors]
    return " ".join(str(e) for e in errors)


@pytest.mark.parametrize("type_id,inputs,params,words", [
    ("attention.multihead_attention", {"query": (["N", "T", 10], "float")}, {"num_heads": 4},
     ["does not divide", "divisor of 10"]),
    ("attention.transformer_encoder_layer", {"x": (["N", "T", 6], "float")}, {"nhead": 4},
     ["nhead=4", "divisor of 6"]),
    ("recurrent.lstm", {"x": (["N", "T"], "long")}, {}, ["long", "Embedding"]),
    ("recurrent.gru", {"x": (["N", 5], "float")}, {}, ["[N, T, features]"]),
    ("recurrent.rnn", {"x": (["N", "T", 3], "float")}, {"dropout": 0.2}, ["num_layers"]),
    ("recurrent.lstm", {"x": (["N", "T", "T"], "float")}, {}, ["input_size", "symbolic"]),
    ("attention.multihead_attention", {"query": (["N", "T"], "long")}, {"num_heads": 1},
     ["Embedding"]),
    ("attention.multihead_attention",
     {"query": (["N", "T", 8], "float"), "key_padding_mask": (["N", "S"], "long")},
     {"num_heads": 2}, ["key_padding_mask", "[N, T]"]),
    ("attention.transformer_decoder_layer",
     {"x": (["N", "T", 8], "float"), "memory": (["N", "S", 6], "float")},
     {"nhead": 2}, ["memory", "out_features=8"]),
    ("attention.learned_position", {"x": (["N", 20, 8], "float")}, {"max_len": 16},
     ["max_len", "at least 20"]),
    ("generative.reparameterize", {"mu": (["N", 4], "float"), "logvar": (["N", 5], "float")}, {},
     ["same shape"]),
])
def test_errors_name_the_problem_and_the_fix(type_id: str, inputs: dict, params: dict,
                                             words: list[str]) -> None:
    text = single_node_errors(type_id, inputs, **params)
    for w in words:
        assert w in text, text


def test_graph_layer_on_pooled_features_is_refused() -> None:
    p = Project(name="err")
    g = add_network(p, "net")
    src = g.add("io.graph_input", "g", features=3)
    pool = g.add("graph.global_pool", "pool")
    conv = g.add("graph.gcn_conv", "conv", out_channels=2)
    g.connect(src, pool, "x", "x")
    g.connect(src, pool, "graph", "graph")
    g.connect(pool, conv, "y", "x")
    g.connect(src, conv, "graph", "graph")
    g.connect(conv, g.add("io.output", "y"))
    (err,) = analyze(p).errors
    assert err.node_name == "conv" and "B rows" in err.message and "Global Pool" in err.hint
