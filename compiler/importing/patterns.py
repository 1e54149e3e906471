"""A user's self-attention module written out by hand -> one Multi-head Attention node.

People write self-attention in many ways: one ``Linear(E, 3E)`` split in three or three
``Linear(E, E)``, ``view`` or ``reshape`` into heads, ``F.scaled_dot_product_attention`` (no
mask, ``is_causal=True``, a registered ``triu`` ``attn_mask``) or the softmax of ``q @ k.T``
with a ``masked_fill`` of a tril buffer (nanoGPT's slow path). Tracing each spelling op by op
would need nodes for every one of them; what such a module *computes* is simpler to state and to
check: ``nn.MultiheadAttention`` with the module's own projection weights, H heads, causal or
not. So a module qualifies by its parts (the input projection(s), one output ``Linear(E, E)``,
Dropouts, no other weights) and the hypothesis is run: the module and the candidate on random
inputs of the shapes the example run recorded (two sequence lengths), with fresh random
projection weights in a copy of the module (its own might be zero), accepted only where they
agree. Nothing is guessed that the comparison does not confirm, except where the Dropouts sit
(eval mode turns them off): one named ``attn*`` drops attention weights (the node's
``dropout``), any other one follows the output projection (a Dropout node).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nodes.helpers import causal_mask

from .trace import forward_params

#: module attributes that name the head count, most specific first
_HEAD_ATTRS = ("n_head", "num_heads", "nhead", "n_heads", "heads", "num_attention_heads")
_ROLE = {"q": re.compile(r"(^|_)(q|query|wq|to_q)(_|$)"),
         "k": re.compile(r"(^|_)(k|key|wk|to_k)(_|$)"),
         "v": re.compile(r"(^|_)(v|value|wv|to_v)(_|$)")}
_TOLERANCE = 1e-5


@dataclass
class AttentionMatch:
    """What the module is: the node's params, the MultiheadAttention holding its weights (the
    original's, copied), and the Dropout after the output projection, if any."""

    params: dict[str, Any]
    module: nn.MultiheadAttention
    projection: str  #: attribute name of the input projection (the node is named after it)
    dropout_after: tuple[str, nn.Dropout] | None


def attention_of(m: nn.Module, calls: list[tuple[list[Any], Any]],
                 settings: dict[str, Any] | None = None) -> AttentionMatch | None:
    """The Multi-head Attention ``m`` computes, confirmed on the recorded shapes, or None;
    ``settings``: the constant keywords of the call (``causal=True``), passed on as given."""
    settings = dict(settings or {})
    if not all(v is None or type(v) in (bool, int, float, str) for v in settings.values()):
        return None
    shapes = _shapes(m, calls)
    parts = _parts(m)
    probe = _probe(m) if shapes is not None and parts is not None else None
    if probe is None:
        return None
    (q, k, v), out, drops = parts
    (pq, pk, pv), pout, _ = _parts(probe) or parts
    embed = out.out_features
    biases = [x.bias is not None for x in (q, out)] + ([] if k is q else
                                                        [x.bias is not None for x in (k, v)])
    if len(set(biases)) != 1 or any(s[-1] != embed for s in shapes):
        return None
    attn_drop = [d for name, d in drops if name.startswith(("attn", "att_"))]
    after = [(name, d) for name, d in drops if not name.startswith(("attn", "att_"))]
    if len(attn_drop) > 1 or len(after) > 1:
        return None
    p_attn = attn_drop[0].p if attn_drop else _float_attr(m, "dropout", "attn_pdrop")
    for heads in _head_counts(m, embed):
        mha = _candidate(pq, pk, pv, pout, heads, p_attn, biases[0])
        for causal in (False, True):
            if _agrees(probe, mha, causal, shapes, settings):
                params = {"num_heads": heads, "dropout": p_attn, "bias": biases[0],
                          "causal": causal}
                name = next(n for n, c in m.named_children() if c is q)
                return AttentionMatch(params, _candidate(q, k, v, out, heads, p_attn,
                                                         biases[0]),
                                      name if k is q else "attention",
                                      after[0] if after else None)
    return None


def _probe(m: nn.Module) -> nn.Module | None:
    """A copy of ``m`` with fresh random projections: its own weights may hide what it computes
    (a zero-initialised output projection makes every head count and mask agree)."""
    try:
        probe = copy.deepcopy(m)
    except Exception:  # a module that cannot be copied is not taken apart
        return None
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for lin in probe.children():
            if isinstance(lin, nn.Linear):
                lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen)
                                 / lin.in_features ** 0.5)
                if lin.bias is not None:
                    lin.bias.copy_(torch.randn(lin.bias.shape, generator=gen) * 0.1)
    return probe.eval()


def _shapes(m: nn.Module, calls: list[tuple[list[Any], Any]]) -> list[tuple[int, ...]] | None:
    """The [N, T, E] input shape of the first call in each example run, if every call took one
    float tensor and gave back one of the same shape."""
    required = [p for p in forward_params(m) if p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(required) != 1 or len(calls) < 2 or len(calls) % 2:
        return None
    for ins, out in calls:
        if len(ins) != 1 or out is None or ins[0][1] != "float" or len(ins[0][0]) != 3 \
                or tuple(out[0]) != tuple(ins[0][0]):
            return None
    return [tuple(calls[0][0][0][0]), tuple(calls[len(calls) // 2][0][0][0])]


def _parts(m: nn.Module) -> tuple[tuple[nn.Linear, ...], nn.Linear, list[tuple[str, nn.Dropout]]
                                  ] | None:
    """(q, k, v projections; q is k is v for one fused Linear), output Linear, Dropouts."""
    linears: dict[str, nn.Linear] = {}
    drops: list[tuple[str, nn.Dropout]] = []
    for name, child in m.named_children():
        if type(child) is nn.Linear:
            linears[name] = child
        elif type(child) is nn.Dropout:
            drops.append((name, child))
        elif type(child) is not nn.Identity:
            return None
    if any(True for _ in m.parameters(recurse=False)):
        return None
    square = {n: lin for n, lin in linears.items() if lin.in_features == lin.out_features}
    fused = [lin for lin in linears.values() if lin.out_features == 3 * lin.in_features]
    if len(linears) == 2 and len(fused) == 1 and len(square) == 1:
        out = next(iter(square.values()))
        if out.in_features == fused[0].in_features:
            return (fused[0],) * 3, out, drops
        return None
    if len(linears) == 4 and len(square) == 4:
        roles = {r: [n for n in linears if pat.search(n.lower())] for r, pat in _ROLE.items()}
        if all(len(names) == 1 for names in roles.values()):
            qkv = [linears[roles[r][0]] for r in "qkv"]
            rest = [lin for lin in linears.values() if all(lin is not x for x in qkv)]
            if len(rest) == 1 and len({x.in_features for x in linears.values()}) == 1:
                return tuple(qkv), rest[0], drops
    return None


def _float_attr(m: nn.Module, *names: str) -> float:
    for name in names:
        value = getattr(m, name, None)
        if type(value) is float and 0.0 <= value < 1.0:
            return value
    return 0.0


def _head_counts(m: nn.Module, embed: int) -> list[int]:
    """The head counts to try: the module's own attribute first, then every divisor of E."""
    named = [getattr(m, a) for a in _HEAD_ATTRS if type(getattr(m, a, None)) is int]
    head_dim = getattr(m, "head_dim", getattr(m, "head_size", None))
    if type(head_dim) is int and head_dim > 0 and embed % head_dim == 0:
        named.append(embed // head_dim)
    divisors = [h for h in range(1, embed + 1) if embed % h == 0]
    out = [h for h in named if h > 0 and embed % h == 0]
    return list(dict.fromkeys(out + divisors))


def _candidate(q: nn.Linear, k: nn.Linear, v: nn.Linear, out: nn.Linear, heads: int,
               dropout: float, bias: bool) -> nn.MultiheadAttention:
    embed = out.out_features
    mha = nn.MultiheadAttention(embed, heads, dropout=dropout, bias=bias, batch_first=True)
    with torch.no_grad():
        weight = q.weight if q is k else torch.cat([q.weight, k.weight, v.weight])
        mha.in_proj_weight.copy_(weight)
        mha.out_proj.weight.copy_(out.weight)
        if bias:
            mha.in_proj_bias.copy_(q.bias if q is k else torch.cat([q.bias, k.bias, v.bias]))
            mha.out_proj.bias.copy_(out.bias)
    return mha.eval()


def _agrees(m: nn.Module, mha: nn.MultiheadAttention, causal: bool,
            shapes: list[tuple[int, ...]], settings: dict[str, Any]) -> bool:
    gen = torch.Generator().manual_seed(0)
    for shape in shapes:
        x = torch.randn(shape, generator=gen)
        try:
            with torch.no_grad():
                want = m(x, **settings)
                got = mha(x, x, x, attn_mask=causal_mask(x) if causal else None,
                          need_weights=False)[0]
        except Exception:  # the user's module refuses a plain call: not this pattern
            return False
        if not isinstance(want, torch.Tensor) or want.shape != got.shape:
            return False
        limit = _TOLERANCE * max(1.0, float(want.abs().max()))
        if not float((want - got).abs().max()) <= limit:
            return False
    return True
