"""Leaf modules -> node types, with params read from the module's attributes (never asked).

A leaf is a torch module the catalogue has a node for (``nn.Conv2d`` -> ``conv.conv2d``) or one of
Layerloom's own helper classes found in an exported ``model.py`` (``LearnedPosition``), recognised
by its source being the helper's source. Sizes that follow from the input (``in_channels``) are
not params, as in the catalogue. A module that fits no node type returns None: the caller keeps
it as an opaque node.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn.functional as F
from torch import nn

from nodes.base import HELPERS


@dataclass
class Leaf:
    """What a leaf module becomes: a node type and params, plus how its weights are named in the
    module the generated code makes for that node (``rename``: generated key -> original key)."""

    type: str
    params: dict[str, Any]
    rename: dict[str, str] = field(default_factory=dict)
    #: built with ``batch_first=False``: the node (always batch first) gets Transposes around it
    seq_first: bool = False


def _pair(v: Any) -> Any:
    """(3, 3) -> 3, (3, 5) -> [3, 5]: the catalogue's int-or-[h, w] fields."""
    if isinstance(v, tuple):
        return v[0] if len(set(v)) == 1 else list(v)
    return v


def _one(v: Any) -> Any:
    return v[0] if isinstance(v, tuple) and len(v) == 1 else v


def _conv(m: nn.Module) -> dict[str, Any]:
    p = {"out_channels": m.out_channels, "kernel_size": _pair(m.kernel_size),
         "stride": _pair(m.stride), "padding": _pair(m.padding) if not isinstance(m.padding, str)
         else m.padding, "dilation": _pair(m.dilation), "groups": m.groups,
         "bias": m.bias is not None}
    if isinstance(m, nn.ConvTranspose2d):
        p["output_padding"] = _pair(m.output_padding)
    else:
        p["padding_mode"] = m.padding_mode
    if isinstance(m, nn.Conv1d):
        p = {k: _one(v) for k, v in p.items()}
    return p


def _bn(m: nn.Module) -> dict[str, Any]:
    return {"eps": m.eps, "momentum": m.momentum, "affine": m.affine,
            "track_running_stats": m.track_running_stats}


def _pool(m: nn.Module, extra: str) -> dict[str, Any]:
    one = isinstance(m, (nn.MaxPool1d, nn.AvgPool1d))
    conv = _one if one else _pair
    p = {"kernel_size": conv(m.kernel_size), "stride": conv(m.stride),
         "padding": conv(m.padding), "ceil_mode": m.ceil_mode}
    p[extra] = conv(getattr(m, extra)) if extra == "dilation" else getattr(m, extra)
    return p


def _layer_norm(m: nn.LayerNorm) -> dict[str, Any]:
    return {"dims": len(m.normalized_shape), "eps": m.eps,
            "elementwise_affine": m.elementwise_affine,
            "bias": getattr(m, "bias", None) is not None or not m.elementwise_affine}


def _rnn(m: nn.RNNBase) -> dict[str, Any] | None:
    if m.proj_size:
        return None
    p = {"hidden_size": m.hidden_size, "num_layers": m.num_layers,
         "bidirectional": m.bidirectional, "dropout": m.dropout, "bias": m.bias}
    if isinstance(m, nn.RNN):
        p["nonlinearity"] = m.nonlinearity
    return p


def _mha(m: nn.MultiheadAttention) -> dict[str, Any] | None:
    if not m._qkv_same_embed_dim:
        return None
    return {"num_heads": m.num_heads, "dropout": m.dropout, "bias": m.in_proj_bias is not None}


def _layer(m: nn.Module) -> dict[str, Any] | None:
    act = m.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        name = "relu"
    elif act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        name = "gelu"
    else:
        return None
    if not m.self_attn.batch_first:
        return None
    return {"nhead": m.self_attn.num_heads, "dim_feedforward": m.linear1.out_features,
            "dropout": m.dropout.p, "activation": name, "norm_first": m.norm_first,
            "bias": m.linear1.bias is not None}


_SIMPLE: dict[type, tuple[str, Callable[[Any], dict[str, Any] | None]]] = {
    nn.Linear: ("linear.linear", lambda m: {"out_features": m.out_features,
                                            "bias": m.bias is not None}),
    nn.Embedding: ("linear.embedding", lambda m: {"num_embeddings": m.num_embeddings,
                                                  "embedding_dim": m.embedding_dim,
                                                  "padding_idx": m.padding_idx}),
    nn.Identity: ("linear.identity", lambda m: {}),
    nn.Flatten: ("shape.flatten", lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim}),
    nn.Conv1d: ("conv.conv1d", _conv),
    nn.Conv2d: ("conv.conv2d", _conv),
    nn.ConvTranspose2d: ("conv.conv_transpose2d", _conv),
    nn.BatchNorm1d: ("norm.batch_norm1d", _bn),
    nn.BatchNorm2d: ("norm.batch_norm2d", _bn),
    nn.InstanceNorm2d: ("norm.instance_norm2d", _bn),
    nn.LayerNorm: ("norm.layer_norm", _layer_norm),
    nn.GroupNorm: ("norm.group_norm", lambda m: {"num_groups": m.num_groups, "eps": m.eps,
                                                 "affine": m.affine}),
    nn.Dropout: ("norm.dropout", lambda m: {"p": m.p}),
    nn.Dropout2d: ("norm.dropout2d", lambda m: {"p": m.p}),
    nn.MaxPool1d: ("pool.max_pool1d", lambda m: _pool(m, "dilation")),
    nn.MaxPool2d: ("pool.max_pool2d", lambda m: _pool(m, "dilation")),
    nn.AvgPool1d: ("pool.avg_pool1d", lambda m: _pool(m, "count_include_pad")),
    nn.AvgPool2d: ("pool.avg_pool2d", lambda m: _pool(m, "count_include_pad")),
    nn.AdaptiveAvgPool1d: ("pool.adaptive_avg_pool1d",
                           lambda m: {"output_size": _one(m.output_size)}),
    nn.AdaptiveAvgPool2d: ("pool.adaptive_avg_pool2d",
                           lambda m: {"output_size": _pair(m.output_size)}),
    nn.AdaptiveMaxPool2d: ("pool.adaptive_max_pool2d",
                           lambda m: {"output_size": _pair(m.output_size)}
                           if not m.return_indices else None),
    nn.ReLU: ("activation.relu", lambda m: {}),
    nn.LeakyReLU: ("activation.leaky_relu", lambda m: {"negative_slope": m.negative_slope}),
    nn.ELU: ("activation.elu", lambda m: {"alpha": m.alpha}),
    nn.GELU: ("activation.gelu", lambda m: {"approximate": m.approximate}),
    nn.SiLU: ("activation.silu", lambda m: {}),
    nn.Tanh: ("activation.tanh", lambda m: {}),
    nn.Sigmoid: ("activation.sigmoid", lambda m: {}),
    nn.Softmax: ("activation.softmax", lambda m: {"dim": m.dim} if m.dim is not None else None),
    nn.LogSoftmax: ("activation.log_softmax",
                    lambda m: {"dim": m.dim} if m.dim is not None else None),
    nn.RNN: ("recurrent.rnn", _rnn),
    nn.LSTM: ("recurrent.lstm", _rnn),
    nn.GRU: ("recurrent.gru", _rnn),
    nn.MultiheadAttention: ("attention.multihead_attention", _mha),
    nn.TransformerEncoderLayer: ("attention.transformer_encoder_layer", _layer),
    nn.TransformerDecoderLayer: ("attention.transformer_decoder_layer", _layer),
}

#: Layerloom helper class -> (node type, params from the instance)
_HELPER_LEAVES: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "LearnedPosition": ("attention.learned_position",
                        lambda m: {"max_len": m.embedding.num_embeddings,
                                   "dropout": m.dropout.p}),
    "SinusoidalPosition": ("attention.sinusoidal_position",
                           lambda m: {"max_len": m.pe.size(0), "dropout": m.dropout.p}),
    "Reparameterize": ("generative.reparameterize", lambda m: {}),
    "GCNConv": ("graph.gcn_conv", lambda m: {"out_channels": m.linear.out_features,
                                             "bias": m.bias is not None}),
    "GraphConv": ("graph.message_passing", lambda m: {"out_channels": m.root.out_features,
                                                      "bias": m.neighbour.bias is not None,
                                                      "aggr": m.aggr}),
    "GINConv": ("graph.gin_conv", lambda m: {"out_channels": m.mlp[0].out_features,
                                             "eps": float(m.eps),
                                             "train_eps": isinstance(m.eps, nn.Parameter)}),
    "SAGEConv": ("graph.sage_conv", lambda m: {"out_channels": m.root.out_features,
                                               "bias": m.neighbour.bias is not None,
                                               "aggr": m.aggr, "normalize": m.normalize}),
}


def is_helper_class(cls: type) -> bool:
    """A class that is one of Layerloom's helpers, copied verbatim into an exported model."""
    name = cls.__name__
    if name not in _HELPER_LEAVES or name not in HELPERS:
        return False
    try:
        return inspect.getsource(cls).strip("\n") == HELPERS[name]
    except (OSError, TypeError):
        return False


def is_helper_function(fn: Any) -> bool:
    """A function that is one of Layerloom's helpers (``causal_mask``, ``output_and_hidden``)."""
    name = getattr(fn, "__name__", "")
    if not inspect.isfunction(fn) or name not in HELPERS:
        return False
    try:
        return inspect.getsource(fn).strip("\n") == HELPERS[name]
    except (OSError, TypeError):
        return False


def is_catalogue_leaf(m: nn.Module) -> bool:
    return type(m) in _SIMPLE or is_helper_class(type(m))


def leaf_of(m: nn.Module) -> Leaf | None:
    """The node a module becomes, or None when its class (or its settings) has no node type."""
    entry = _SIMPLE.get(type(m))
    if entry is None and is_helper_class(type(m)):
        entry = _HELPER_LEAVES[type(m).__name__]
    if entry is None:
        return None
    params = entry[1](m)
    if params is None:
        return None
    seq_first = isinstance(m, (nn.RNNBase, nn.MultiheadAttention)) and not m.batch_first
    return Leaf(entry[0], params, seq_first=seq_first)
