"""Helper classes and functions that generated models use, as a real, linted, type-checked module.

Codegen copies each one it needs into ``model.py`` by its source (``inspect.getsource``), so the
exported file still needs only PyTorch; the node types register them (``register_helper``) with
the helpers they depend on. Keep every definition self-contained: it may use ``math``, ``torch``,
``nn``, ``F``, ``Tensor``, ``NamedTuple`` and the helpers it names as dependencies, nothing else.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def causal_mask(query: Tensor, key: Tensor | None = None) -> Tensor:
    """[T, S] bool mask, True above the diagonal: step t may attend to keys 0..t only.

    Eagerly, the mask is made once per (T, S, device) and reused (no tensor code per block);
    under tracing (torch.compile, torch.export, ONNX) it is made in the graph, so T stays a
    variable there and the compiler fuses it.
    """
    t = query.size(1)
    s = t if key is None else key.size(1)
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return torch.ones(t, s, dtype=torch.bool, device=query.device).triu(1)
    mask = CAUSAL_MASKS.get((t, s, query.device))
    if mask is None:
        if len(CAUSAL_MASKS) >= 8:  # a few lengths at a time (training, sampling) are plenty
            CAUSAL_MASKS.clear()
        mask = torch.ones(t, s, dtype=torch.bool, device=query.device).triu(1)
        CAUSAL_MASKS[t, s, query.device] = mask
    return mask


#: causal masks by (T, S, device): made once and shared by every block, as a hand-written model
#: makes one mask per forward
CAUSAL_MASKS: dict[tuple[int, int, torch.device], Tensor] = {}


class SinusoidalPosition(nn.Module):
    """Adds the fixed sin/cos position encoding of "Attention Is All You Need" to [N, T, E]."""

    def __init__(self, embed_dim: int, max_len: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        rate = torch.exp(torch.arange(0, embed_dim, 2) * (-math.log(10000.0) / embed_dim))
        pe = torch.zeros(max_len, embed_dim)
        pe[:, 0::2] = torch.sin(position * rate)
        pe[:, 1::2] = torch.cos(position * rate)[:, : embed_dim // 2]
        self.register_buffer("pe", pe, persistent=False)  # a constant: not saved in checkpoints
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        if x.size(1) > self.pe.size(0):
            raise ValueError(f"sequence length {x.size(1)} exceeds max_len={self.pe.size(0)}")
        return self.dropout(x + self.pe[: x.size(1)])


class LearnedPosition(nn.Module):
    """Adds a learned vector per position (GPT-2's wpe) to [N, T, E]; T may not exceed max_len."""

    def __init__(self, embed_dim: int, max_len: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(max_len, embed_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        if x.size(1) > self.embedding.num_embeddings:
            raise ValueError(
                f"sequence length {x.size(1)} exceeds max_len={self.embedding.num_embeddings}"
            )
        positions = torch.arange(x.size(1), device=x.device)
        return self.dropout(x + self.embedding(positions))


class Reparameterize(nn.Module):
    """z = mu + eps * exp(logvar / 2), eps ~ N(0, 1), while training; z = mu in eval mode, so
    evaluation and reconstruction are deterministic."""

    def forward(self, mu: Tensor, logvar: Tensor) -> Tensor:
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


class Graph(NamedTuple):
    """A batch of graphs: edge_index [2, E] (row 0 source, row 1 target, long), batch [V] (the
    graph each node belongs to, long) and num_graphs. Node features travel separately."""

    edge_index: Tensor
    batch: Tensor
    num_graphs: int


def scatter_rows(values: Tensor, index: Tensor, size: int, reduce: str = "sum") -> Tensor:
    """Reduce the rows of ``values`` into ``size`` rows: row i gets those whose index is i.

    reduce is "sum", "mean" or "max"; a row that receives nothing stays 0.
    """
    out = values.new_zeros((size,) + tuple(values.shape[1:]))
    index = index.view(-1, *([1] * (values.dim() - 1))).expand_as(values)
    if reduce == "sum":
        return out.scatter_add(0, index, values)
    return out.scatter_reduce(
        0, index, values, "amax" if reduce == "max" else reduce, include_self=False
    )


class GCNConv(nn.Module):
    """Graph convolution of Kipf & Welling (2017): X' = D^-1/2 (A + I) D^-1/2 X W + b.

    Self-loops are added here, so the edge index should not contain them.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        loops = torch.arange(x.size(0), device=x.device)
        source = torch.cat([graph.edge_index[0], loops])
        target = torch.cat([graph.edge_index[1], loops])
        degree = x.new_zeros(x.size(0)).index_add(0, target, x.new_ones(target.numel()))
        norm = degree.rsqrt()[source] * degree.rsqrt()[target]
        h = self.linear(x)  # under autocast h may be bf16/fp16: the norm follows its dtype
        out = torch.zeros_like(h).index_add(0, target, h[source] * norm.unsqueeze(1).to(h.dtype))
        return out if self.bias is None else out + self.bias


class GraphConv(nn.Module):
    """Message passing without an MLP: x_i' = W_root x_i + W_neighbour aggr_(j -> i) x_j."""

    def __init__(
        self, in_channels: int, out_channels: int, aggr: str = "sum", bias: bool = True
    ) -> None:
        super().__init__()
        self.aggr = aggr
        self.neighbour = nn.Linear(in_channels, out_channels, bias=bias)
        self.root = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        source, target = graph.edge_index
        messages = scatter_rows(x[source], target, x.size(0), self.aggr)
        return self.root(x) + self.neighbour(messages)


class GINConv(nn.Module):
    """Graph isomorphism network layer (Xu et al. 2019): x_i' = MLP((1 + eps) x_i + sum_j x_j)."""

    def __init__(
        self, in_channels: int, out_channels: int, eps: float = 0.0, train_eps: bool = False
    ) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.tensor(eps)) if train_eps else eps
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, out_channels), nn.ReLU(), nn.Linear(out_channels, out_channels)
        )

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        source, target = graph.edge_index
        neighbours = scatter_rows(x[source], target, x.size(0), "sum")
        return self.mlp((1 + self.eps) * x + neighbours)


class SAGEConv(nn.Module):
    """GraphSAGE layer (Hamilton et al. 2017): x_i' = W_root x_i + W_neighbour mean_(j -> i) x_j,
    optionally scaled to unit length."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        aggr: str = "mean",
        normalize: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.aggr = aggr
        self.normalize = normalize
        self.neighbour = nn.Linear(in_channels, out_channels, bias=bias)
        self.root = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        source, target = graph.edge_index
        messages = scatter_rows(x[source], target, x.size(0), self.aggr)
        out = self.root(x) + self.neighbour(messages)
        return F.normalize(out, dim=-1) if self.normalize else out


def pool_per_graph(x: Tensor, graph: Graph, reduce: str = "mean") -> Tensor:
    """One row per graph: the mean, sum or max of its nodes' features, [num_graphs, F]."""
    return scatter_rows(x, graph.batch, graph.num_graphs, reduce)


def output_and_hidden(result: tuple, directions: int) -> tuple[Tensor, Tensor]:
    """An RNN/GRU/LSTM result as (every step's output, the last layer's final hidden state).

    torch stacks the final states of all layers and directions in h_n; a classifier wants the
    last layer's, with both directions side by side: [N, hidden_size * directions].
    """
    output, h_n = result
    if isinstance(h_n, tuple):  # an LSTM returns (h_n, c_n)
        h_n = h_n[0]
    return output, torch.cat(list(h_n[-directions:]), dim=-1)
