"""Attention: multi-head attention, Transformer encoder/decoder layers, position encodings.

Everything is batch-first ([N, T, E]), as nanoGPT and most readers expect. A causal mask is built
inside forward from the actual sequence length (helper ``causal_mask``), so one model serves any
length. Padding masks are bool [N, S] with True marking a padded key (torch's convention); long
masks (1 = padding) are accepted and turned into bool in the call.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import Field

from . import helpers
from .base import (
    Call,
    Dim,
    Emission,
    Example,
    NodeType,
    Params,
    Port,
    ShapeError,
    TensorSpec,
    concrete_dim,
    register_helper,
    tensor_in,
)
from .registry import register

register_helper("causal_mask", helpers.causal_mask, deps=("CAUSAL_MASKS",))
# after the function (a statement straight below the imports would break their layout)
register_helper("CAUSAL_MASKS", "CAUSAL_MASKS: dict[tuple[int, int, torch.device], Tensor] = {}"
                "  # causal_mask's, by (T, S, device)")

register_helper("SinusoidalPosition", helpers.SinusoidalPosition)

register_helper("LearnedPosition", helpers.LearnedPosition)


def _seq(ins: Mapping[str, Any], port: str, what: str) -> TensorSpec:
    """A float [N, T, E] tensor; ids or other ranks get a message that says what to insert."""
    x = tensor_in(ins, port)
    if x.dtype != "float":
        raise ShapeError(f"{what} needs float vectors, got {x.dtype} {x.label()} on '{port}'",
                         "put an Embedding before it to turn token ids into vectors", port)
    if x.rank != 3:
        raise ShapeError(f"{what} needs [N, T, features] (batch first) on '{port}'; got "
                         f"{x.label()} (rank {x.rank})",
                         "Reshape or Unsqueeze it to [N, T, features]", port)
    return x


def _agree(a: Dim, b: Dim) -> bool:
    """Equal, or one fixed and one symbolic (the symbol may take that size at run time)."""
    return a == b or isinstance(a, int) != isinstance(b, int)


def _check_heads(embed_dim: int, heads: int, field: str) -> None:
    if embed_dim % heads:
        options = [h for h in range(1, min(embed_dim, 64) + 1) if embed_dim % h == 0]
        near = sorted(options, key=lambda h: (abs(h - heads), h))[:3]
        raise ShapeError(f"embed size {embed_dim} does not divide into {field}={heads} heads",
                         f"set {field} to a divisor of {embed_dim} (e.g. "
                         + ", ".join(str(h) for h in sorted(near))
                         + f"), or project to a multiple of {heads} with a Linear first", None)


def _mask(ins: Mapping[str, Any], port: str, key: TensorSpec, key_port: str) -> str | None:
    """Check a key padding mask [N, S] against its keys; returns its call text, None if unwired."""
    if port not in ins:
        return None
    m = tensor_in(ins, port)
    if m.dtype == "float":
        raise ShapeError(f"'{port}' must be bool or long (True/1 = padding), got float "
                         f"{m.label()}", "make the mask from token ids (ids == pad_id)", port)
    if m.rank != 2 or not (_agree(m.dims[0], key.dims[0]) and _agree(m.dims[1], key.dims[1])):
        raise ShapeError(f"'{port}' must be [N, S] = [{key.dims[0]}, {key.dims[1]}] to match "
                         f"'{key_port}' {key.label()}; got {m.label()}",
                         "wire a mask with one entry per key position", port)
    return "{%s}" % port + (".bool()" if m.dtype == "long" else "")


class MultiheadAttentionParams(Params):
    num_heads: int = Field(8, ge=1, le=1024, description="Parallel attention heads; must divide "
                           "the query's feature size")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the attention weights")
    bias: bool = Field(True, description="Learn biases in the input/output projections")
    causal: bool = Field(False, description="Step t sees only keys 0..t (language models, "
                         "decoders)")


@register
class MultiheadAttention(NodeType):
    id = "attention.multihead_attention"
    name = "Multi-head Attention"
    category = "Attention"
    description = ("Scaled dot-product attention over several heads. Wire only 'query' for "
                   "self-attention; 'key'/'value' (default: query/key) for cross-attention.")
    Params = MultiheadAttentionParams
    inputs = (Port("query", doc="[N, T, E]; E sets embed_dim"),
              Port("key", optional=True, doc="[N, S, kdim]; defaults to query"),
              Port("value", optional=True, doc="[N, S, vdim]; defaults to key"),
              Port("key_padding_mask", optional=True, doc="bool [N, S], True = ignore that key"))
    outputs = (Port("y", doc="[N, T, E]"),)
    key_params = ("num_heads", "causal")

    @classmethod
    def _specs(cls, ins: Mapping[str, Any]) -> tuple[TensorSpec, TensorSpec, TensorSpec]:
        what = cls.name
        q = _seq(ins, "query", what)
        k = _seq(ins, "key", what) if "key" in ins else q
        v = _seq(ins, "value", what) if "value" in ins else k
        return q, k, v

    @classmethod
    def infer(cls, p: MultiheadAttentionParams, ins: Mapping[str, Any]) -> dict:
        q, k, v = cls._specs(ins)
        embed = concrete_dim(q, -1, "embed_dim", "query")
        concrete_dim(k, -1, "kdim", "key")
        concrete_dim(v, -1, "vdim", "value")
        _check_heads(embed, p.num_heads, "num_heads")
        if not _agree(q.dims[0], k.dims[0]):
            raise ShapeError(f"query {q.label()} and key {k.label()} have different batch sizes",
                             "wire tensors of the same batch", "key")
        if not (_agree(k.dims[0], v.dims[0]) and _agree(k.dims[1], v.dims[1])):
            raise ShapeError(f"key {k.label()} and value {v.label()} need the same [N, S]",
                             "wire a value with one vector per key", "value")
        _mask(ins, "key_padding_mask", k, "key")
        return {"y": TensorSpec(q.dims)}

    @classmethod
    def emit(cls, p: MultiheadAttentionParams, ins: Mapping[str, Any]) -> Emission:
        q, k, v = cls._specs(ins)
        key = "{key}" if "key" in ins else "{query}"
        value = "{value}" if "value" in ins else key
        kw: dict[str, Any] = {}
        if p.dropout:
            kw["dropout"] = p.dropout
        if not p.bias:
            kw["bias"] = False
        if k.dims[-1] != q.dims[-1]:
            kw["kdim"] = k.dims[-1]
        if v.dims[-1] != q.dims[-1]:
            kw["vdim"] = v.dims[-1]
        init = Call.named("nn.MultiheadAttention", [("embed_dim", q.dims[-1]),
                                                     ("num_heads", p.num_heads)], **kw,
                          batch_first=True)
        args = ["{query}", key, value]
        mask = _mask(ins, "key_padding_mask", k, "key")
        if mask:
            args.append(f"key_padding_mask={mask}")
        if p.causal:
            args.append("attn_mask=causal_mask({query}" + (", {key})" if "key" in ins else ")"))
        args.append("need_weights=False")
        helpers = ("causal_mask",) if p.causal else ()
        # [0]: the output; the weights are not computed (need_weights=False returns None there).
        return Emission("{self}(" + ", ".join(args) + ")[0]", init, helpers=helpers)

    @classmethod
    def examples(cls) -> list[Example]:
        seq = TensorSpec(("N", "T", 8))
        return [
            Example({"num_heads": 2}, {"query": seq}, "self-attention"),
            Example({"num_heads": 4, "causal": True, "dropout": 0.1}, {"query": seq}),
            Example({"num_heads": 2, "bias": False},
                    {"query": seq, "key": TensorSpec(("N", "S", 6))}, "cross, kdim=vdim=6"),
            Example({"num_heads": 1},
                    {"query": TensorSpec((2, 3, 4)), "key": TensorSpec((2, 5, 6)),
                     "value": TensorSpec((2, 5, 3)),
                     "key_padding_mask": TensorSpec((2, 5), "long")}),
            Example({"num_heads": 2, "causal": True},
                    {"query": seq, "key_padding_mask": TensorSpec(("N", "T"), "long")}),
        ]


class _LayerParams(Params):
    nhead: int = Field(8, ge=1, le=1024, description="Attention heads; must divide d_model (the "
                       "input's feature size)")
    dim_feedforward: int = Field(2048, ge=1, le=1_000_000, description="Width of the "
                                 "feed-forward sublayer (typically 4 × d_model)")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout in the attention and "
                           "feed-forward sublayers")
    activation: Literal["relu", "gelu"] = Field("relu", description="Feed-forward activation")
    norm_first: bool = Field(False, description="Pre-norm (LayerNorm before each sublayer, as "
                             "GPT-2): trains more stably when deep")
    bias: bool = Field(True, description="Learn biases in linear and norm layers")


class EncoderLayerParams(_LayerParams):
    causal: bool = Field(False, description="Step t attends to steps 0..t only (a GPT-style "
                         "decoder-only stack)")


class DecoderLayerParams(_LayerParams):
    causal: bool = Field(True, description="Target step t attends to target steps 0..t only "
                         "(needed for autoregressive decoding)")


def _layer_init(p: _LayerParams, d_model: int, torch_name: str) -> Call:
    defaults = type(p)()
    kw = {k: getattr(p, k) for k in ("dim_feedforward", "dropout", "activation")}
    kw = {k: v for k, v in kw.items() if v != getattr(defaults, k) or k == "dim_feedforward"}
    kw["batch_first"] = True
    if p.norm_first:
        kw["norm_first"] = True
    if not p.bias:
        kw["bias"] = False
    return Call.named(f"nn.{torch_name}", [("d_model", d_model), ("nhead", p.nhead)], **kw)


@register
class TransformerEncoderLayer(NodeType):
    id = "attention.transformer_encoder_layer"
    name = "Transformer Encoder Layer"
    category = "Attention"
    description = ("Self-attention then a feed-forward network, each with a residual connection "
                   "and LayerNorm (BERT, ViT). d_model is the input's feature size.")
    Params = EncoderLayerParams
    inputs = (Port("x", doc="[N, T, d_model]"),
              Port("padding_mask", optional=True, doc="bool [N, T], True = padding"))
    outputs = (Port("y", doc="[N, T, d_model]"),)
    key_params = ("nhead", "dim_feedforward")

    @classmethod
    def infer(cls, p: EncoderLayerParams, ins: Mapping[str, Any]) -> dict:
        x = _seq(ins, "x", cls.name)
        _check_heads(concrete_dim(x, -1, "d_model"), p.nhead, "nhead")
        _mask(ins, "padding_mask", x, "x")
        return {"y": TensorSpec(x.dims)}

    @classmethod
    def emit(cls, p: EncoderLayerParams, ins: Mapping[str, Any]) -> Emission:
        x = ins["x"]
        args = ["{x}"]
        if p.causal:
            args.append("src_mask=causal_mask({x})")
        mask = _mask(ins, "padding_mask", x, "x")
        if mask:
            args.append(f"src_key_padding_mask={mask}")
        return Emission("{self}(" + ", ".join(args) + ")",
                        _layer_init(p, x.dims[-1], "TransformerEncoderLayer"),
                        helpers=("causal_mask",) if p.causal else ())

    @classmethod
    def examples(cls) -> list[Example]:
        return [
            Example({"nhead": 2, "dim_feedforward": 16}, {"x": TensorSpec(("N", "T", 8))}),
            Example({"nhead": 4, "dim_feedforward": 12, "activation": "gelu", "norm_first": True,
                     "causal": True, "dropout": 0.0}, {"x": TensorSpec(("N", "T", 8))}),
            Example({"nhead": 1, "dim_feedforward": 8, "bias": False},
                    {"x": TensorSpec((2, 4, 6)), "padding_mask": TensorSpec((2, 4), "long")}),
        ]


@register
class TransformerDecoderLayer(NodeType):
    id = "attention.transformer_decoder_layer"
    name = "Transformer Decoder Layer"
    category = "Attention"
    description = ("Causal self-attention on the target, cross-attention to the encoder's memory, "
                   "then a feed-forward network (the original Transformer's decoder).")
    Params = DecoderLayerParams
    inputs = (Port("x", doc="Target sequence [N, T, d_model]"),
              Port("memory", doc="Encoder output [N, S, d_model]"),
              Port("padding_mask", optional=True, doc="bool [N, T], True = padded target step"),
              Port("memory_padding_mask", optional=True,
                   doc="bool [N, S], True = padded source step"))
    outputs = (Port("y", doc="[N, T, d_model]"),)
    key_params = ("nhead", "dim_feedforward", "causal")

    @classmethod
    def infer(cls, p: DecoderLayerParams, ins: Mapping[str, Any]) -> dict:
        x = _seq(ins, "x", cls.name)
        memory = _seq(ins, "memory", cls.name)
        d_model = concrete_dim(x, -1, "d_model")
        _check_heads(d_model, p.nhead, "nhead")
        if memory.dims[-1] != d_model or not _agree(memory.dims[0], x.dims[0]):
            raise ShapeError(f"memory {memory.label()} must be [N, S, {d_model}] to match the "
                             f"target {x.label()}",
                             f"put a Linear with out_features={d_model} on the memory path",
                             "memory")
        _mask(ins, "padding_mask", x, "x")
        _mask(ins, "memory_padding_mask", memory, "memory")
        return {"y": TensorSpec(x.dims)}

    @classmethod
    def emit(cls, p: DecoderLayerParams, ins: Mapping[str, Any]) -> Emission:
        x = ins["x"]
        args = ["{x}", "{memory}"]
        if p.causal:
            args.append("tgt_mask=causal_mask({x})")
        mask = _mask(ins, "padding_mask", x, "x")
        if mask:
            args.append(f"tgt_key_padding_mask={mask}")
        mask = _mask(ins, "memory_padding_mask", ins["memory"], "memory")
        if mask:
            args.append(f"memory_key_padding_mask={mask}")
        return Emission("{self}(" + ", ".join(args) + ")",
                        _layer_init(p, x.dims[-1], "TransformerDecoderLayer"),
                        helpers=("causal_mask",) if p.causal else ())

    @classmethod
    def examples(cls) -> list[Example]:
        return [
            Example({"nhead": 2, "dim_feedforward": 16},
                    {"x": TensorSpec(("N", "T", 8)), "memory": TensorSpec(("N", "S", 8))}),
            Example({"nhead": 4, "dim_feedforward": 8, "causal": False, "norm_first": True,
                     "activation": "gelu"},
                    {"x": TensorSpec((2, 3, 4)), "memory": TensorSpec((2, 6, 4)),
                     "memory_padding_mask": TensorSpec((2, 6), "long")}),
        ]


class PositionParams(Params):
    max_len: int = Field(512, ge=1, le=1_000_000, description="Longest sequence it can encode")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout after adding the positions")


class _Position(NodeType):
    category = "Attention"
    Params = PositionParams
    inputs = (Port("x", doc="[N, T, E]"),)
    outputs = (Port("y", doc="[N, T, E], positions added"),)
    key_params = ("max_len",)
    helper = ""

    @classmethod
    def infer(cls, p: PositionParams, ins: Mapping[str, Any]) -> dict:
        x = _seq(ins, "x", cls.name)
        concrete_dim(x, -1, "embed_dim")
        t = x.dims[1]
        if isinstance(t, int) and t > p.max_len:
            raise ShapeError(f"sequences of length {t} are longer than max_len={p.max_len}",
                             f"raise max_len to at least {t}", None)
        return {"y": TensorSpec(x.dims)}

    @classmethod
    def emit(cls, p: PositionParams, ins: Mapping[str, Any]) -> Emission:
        kw: dict[str, Any] = {"embed_dim": ins["x"].dims[-1], "max_len": p.max_len}
        if p.dropout:
            kw["dropout"] = p.dropout
        return Emission("{self}({x})", Call.of(cls.helper, **kw), helpers=(cls.helper,))

    @classmethod
    def examples(cls) -> list[Example]:
        # max_len above the large sizes nodes.meta gives symbolic dims, so that fallback runs too.
        return [Example({"max_len": 16384}, {"x": TensorSpec(("N", "T", 6))}),
                Example({"max_len": 4, "dropout": 0.1}, {"x": TensorSpec((2, 4, 5))})]


@register
class SinusoidalPosition(_Position):
    id = "attention.sinusoidal_position"
    name = "Sinusoidal Position"
    helper = "SinusoidalPosition"
    description = ("Adds fixed sin/cos waves of position to each step (the original Transformer): "
                   "no weights; tells attention where each token is.")


@register
class LearnedPosition(_Position):
    id = "attention.learned_position"
    name = "Learned Position"
    helper = "LearnedPosition"
    description = ("Adds a learned vector per position (GPT-2, BERT). Sequences may not be longer "
                   "than max_len.")
