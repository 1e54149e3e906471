"""Import of sequence models written by hand: RNN final states (``h_n[-1]``, ``h_n.squeeze(0)``,
both directions of the last layer, ``out[:, -1]``, time-major RNNs) and attention (no mask, a
causal flag, a ``triu`` or ``tril`` mask buffer, ``nn.MultiheadAttention``,
``nn.TransformerEncoder``) become catalogue nodes, not opaque ones, verified, and the project
builds from its saved file and trains."""

from __future__ import annotations

import functools

import pytest
import reference_import_models as M
import torch
from torch import nn

from compiler.build import build
from compiler.export import export_model
from compiler.imported_weights import weights_path
from compiler.importing import ImportFailure, import_model
from compiler.loading import load
from compiler.shapes import analyze

P = functools.partial

#: id -> (factory, --input, --dtype, node types the graph must hold)
MODELS = {
    "lstm-h_n[-1]": (M.LSTMClassifier, ["N,T,8"], [], {"recurrent.lstm"}),
    "lstm-out[:,-1]": (M.LSTMLastStep, ["N,T,8"], [], {"recurrent.lstm", "shape.select"}),
    "gru-squeeze": (M.GRUClassifier, ["N,T"], ["long"], {"recurrent.gru"}),
    "bilstm-cat": (M.BiLSTM, ["N,T,8"], [], {"recurrent.lstm"}),
    "lstm-time-major": (M.SeqFirstLSTM, ["T,N,8"], [], {"recurrent.lstm", "shape.transpose"}),
    "mha-no-mask": (M.SelfAttentionClassifier, ["N,T,16"], [],
                    {"attention.multihead_attention", "pool.global_avg_pool"}),
    "mha-time-major-causal": (M.SeqFirstAttention, ["T,N,16"], [],
                              {"attention.multihead_attention"}),
    "sdpa-no-mask": (P(M.AttentionStack, mask="none"), ["N,T"], ["long"],
                     {"attention.multihead_attention"}),
    "sdpa-is_causal": (P(M.AttentionStack, mask="is_causal"), ["N,T"], ["long"],
                       {"attention.multihead_attention"}),
    "sdpa-triu-buffer": (P(M.AttentionStack, mask="buffer"), ["N,T"], ["long"],
                         {"attention.multihead_attention"}),
    "masked_fill-tril": (P(M.AttentionStack, mask="tril"), ["N,T"], ["long"],
                         {"attention.multihead_attention"}),
    "encoder": (M.TransformerClassifier, ["N,T"], ["long"],
                {"attention.transformer_encoder_layer"}),
    "encoder-causal-norm": (P(M.TransformerClassifier, causal=True), ["N,T"], ["long"],
                            {"attention.transformer_encoder_layer", "norm.layer_norm"}),
}


def _types(project) -> set[str]:
    return {n.type for g in [*project.networks, *project.blocks] for n in g.nodes}


def _nodes(project, type_id: str) -> list:
    return [n for g in [*project.networks, *project.blocks] for n in g.nodes if n.type == type_id]


def _fresh(inputs: list[str], dtypes: list[str]) -> list[torch.Tensor]:
    """Sizes the import never saw: N=4, T=9."""
    gen = torch.Generator().manual_seed(7)
    shape = [[{"N": 4, "T": 9}.get(d, d) for d in s.split(",")] for s in inputs]
    shape = [[int(d) for d in s] for s in shape]
    if dtypes == ["long"]:
        return [torch.randint(0, 30, shape[0], generator=gen)]
    return [torch.randn(shape[0], generator=gen)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("key", list(MODELS))
def test_sequence_model_imports_as_nodes_and_trains(key: str, tmp_path) -> None:
    factory, inputs, dtypes, types = MODELS[key]
    original = factory()
    result = import_model(lambda: original, inputs=inputs, dtypes=dtypes)
    report = result.report
    assert report.opaque == [], report.text()
    assert report.max_difference <= 1e-5
    assert report.params_imported == report.params_original
    assert types <= _types(result.project)
    assert not analyze(result.project).errors
    # the saved project (data) builds, with its weights, into what the original computes at
    # sizes the import did not see; then it trains: every weight gets a gradient
    saved, _ = result.save(tmp_path / "m.loom")
    project = load(saved)
    built = build(project).instantiate("net", weights=str(weights_path(saved)))
    xs = _fresh(inputs, dtypes)
    original.eval(), built.eval()
    with torch.no_grad():
        assert torch.allclose(original(*xs), built(*xs), atol=1e-5)
    built.train()
    built(*xs).float().pow(2).mean().backward()
    assert [name for name, p in built.named_parameters() if p.grad is None] == []
    assert export_model(project, tmp_path).read_text().count("class Net(nn.Module)") == 1


def test_final_states_are_the_hidden_port() -> None:
    """``h_n[-1]``, ``h_n.squeeze(0)`` and ``cat((h_n[-2], h_n[-1]), 1)`` are the RNN node's
    'hidden' output itself: no Select, Slice or Concat between it and the head."""
    for factory, inputs, dtypes in [(M.LSTMClassifier, ["N,T,8"], []),
                                    (M.GRUClassifier, ["N,T"], ["long"]),
                                    (M.BiLSTM, ["N,T,8"], [])]:
        net = import_model(factory, inputs=inputs, dtypes=dtypes).project.network("net")
        rnn = next(n for n in net.nodes if n.type.startswith("recurrent."))
        assert not {"shape.slice", "merge.concat", "shape.select"} & {n.type for n in net.nodes}
        assert any(e.src == rnn.id and e.src_port == "hidden" for e in net.edges)
    bi = next(n for n in import_model(M.BiLSTM, inputs=["N,T,8"]).project.network("net").nodes
              if n.type == "recurrent.lstm")
    assert bi.params["bidirectional"] is True and bi.params["num_layers"] == 2


@pytest.mark.timeout(30)
def test_causal_flags_follow_the_masks() -> None:
    flags = {}
    for mask in ("none", "is_causal", "buffer", "tril"):
        r = import_model(P(M.AttentionStack, mask=mask), inputs=["N,T"], dtypes=["long"])
        (attn,) = _nodes(r.project, "attention.multihead_attention")
        flags[mask] = (attn.params["causal"], attn.params["num_heads"])
        assert [(b, uses) for b, uses, _ in r.report.blocks] == [("SDPAttention", 2)]
    assert flags == {"none": (False, 4), "is_causal": (True, 4), "buffer": (True, 4),
                     "tril": (True, 4)}
    layers = _nodes(import_model(P(M.TransformerClassifier, causal=True), inputs=["N,T"],
                                 dtypes=["long"]).project, "attention.transformer_encoder_layer")
    assert [n.params["causal"] for n in layers] == [True, True]
    (attn,) = _nodes(import_model(M.SeqFirstAttention, inputs=["T,N,16"]).project,
                     "attention.multihead_attention")
    assert attn.params["causal"] is True
    r = import_model(_BoolMask, inputs=["N,T,8"])
    (attn,) = _nodes(r.project, "attention.multihead_attention")
    assert attn.params["causal"] is True and r.report.max_difference <= 1e-5


class _BoolMask(nn.Module):
    """The bool causal mask (True = blocked) built in forward. (``torch.ones(t, t, ...)``, the
    sizes as separate arguments, stops fx: its torch.export fallback does not draw it yet.)"""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.size(1)
        mask = torch.ones((t, t), dtype=torch.bool).triu(1)
        return self.attn(x, x, x, attn_mask=mask, need_weights=False)[0]


class _CellState(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 6, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, c) = self.lstm(x)
        return self.fc(c[-1])


class _LowerLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 6, num_layers=2, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x)
        return self.fc(h[0])


class _Weights(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, weights = self.attn(x, x, x)
        return weights


@pytest.mark.timeout(30)
@pytest.mark.parametrize("model, words", [
    (_CellState, "cell state c_n has no port"),
    (_LowerLayer, "h_n[0] is the final state of layer 1 of 2"),
    (_Weights, "attention weights"),
])
def test_states_without_a_port_are_named(model, words: str) -> None:
    with pytest.raises(ImportFailure, match=words.replace("[", r"\[").replace("]", r"\]")):
        import_model(model, inputs=["N,T,4" if model is not _Weights else "N,T,8"])


class _NotAttention(nn.Module):
    """Shaped like attention (Linear E -> 3E, Linear E -> E) but a sum of projections: the
    numeric check refuses the pattern and it stays what it is (here: opaque)."""

    def __init__(self, e: int = 8) -> None:
        super().__init__()
        self.qkv = nn.Linear(e, 3 * e)
        self.proj = nn.Linear(e, e)
        self.e = e

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).split(self.e, dim=-1)
        return self.proj(q + k * v)


class _Wrap(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mix = _NotAttention()
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.mix(x))


@pytest.mark.timeout(30)
def test_a_module_shaped_like_attention_is_not_drawn_as_one() -> None:
    r = import_model(_Wrap, inputs=["N,T,8"])
    assert _nodes(r.project, "attention.multihead_attention") == []
    assert [q for q, _, _ in r.report.opaque] == ["mix"]
    assert r.report.max_difference <= 1e-5


class _ZeroInit(nn.Module):
    """A residual stack whose attention output projection starts at zero (a common init): the
    module's own weights cannot tell heads or causality apart, the probe's fresh ones can."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = M.SDPAttention(16, 2, mask="is_causal")
        nn.init.zeros_(self.attn.c_proj.weight)
        nn.init.zeros_(self.attn.c_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(x)


@pytest.mark.timeout(30)
def test_zero_initialised_attention_is_still_read_right() -> None:
    r = import_model(_ZeroInit, inputs=["N,T,16"])
    (attn,) = _nodes(r.project, "attention.multihead_attention")
    assert (attn.params["causal"], attn.params["num_heads"]) == (True, 2)
    assert r.report.opaque == [] and r.report.max_difference <= 1e-5
