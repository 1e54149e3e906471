"""The Transformer (Vaswani et al. 2017): attention only, no recurrence; encoder and decoder."""

from __future__ import annotations

from typing import Any

from compiler import Graph, Project, add_block, add_network, ref

from .registry import register


def layer_block(p: Project, name: str, type_id: str, d_model: int, *, causal: bool = False,
                **params: Any) -> dict[str, Any]:
    """A block holding one Transformer layer, so a stack is one block node with ``repeat``.

    The layer's settings (``d_model`` and ``params``: nhead, dim_feedforward, dropout) are block
    params named as torch names them, so an exported layer class reads
    ``DecoderLayer(d_model=64, nhead=4, ...)``; returns them, for the block node's ``args``.
    Decoder layers get a second input, ``memory``, which every repeat receives unchanged.
    """
    declared = {"d_model": d_model, **params}
    b = add_block(p, name, declared, description=(
        "Decoder layer: causal self-attention, cross-attention to memory, feed-forward."
        if type_id.endswith("decoder_layer") else
        "Encoder layer: self-attention then feed-forward, each residual + post-norm."))
    x = b.add("io.block_input", "x")
    decoder = type_id == "attention.transformer_decoder_layer"
    settings: dict[str, Any] = {k: ref(k) for k in params}
    if causal:
        settings["causal"] = True
    layer = b.add(type_id, "decoder_layer" if decoder else "encoder_layer", **settings)
    b.connect(x, layer, "y", "x")
    if decoder:
        memory = b.add("io.block_input", "memory")
        b.connect(memory, layer, "y", "memory")
    b.connect(layer, b.add("io.block_output", "y"))
    return declared


def seq2seq(p: Project, *, src_vocab: int, tgt_vocab: int, d_model: int, nhead: int,
            layers: int, dim_feedforward: int, max_len: int, dropout: float) -> Graph:
    """Embeddings + sinusoidal positions -> encoder stack -> decoder stack -> vocabulary scores."""
    common = {"nhead": nhead, "dim_feedforward": dim_feedforward, "dropout": dropout}
    enc = layer_block(p, "EncoderLayer", "attention.transformer_encoder_layer", d_model, **common)
    dec_args = layer_block(p, "DecoderLayer", "attention.transformer_decoder_layer", d_model,
                           causal=True, **common)
    g = add_network(p, "net")
    src = g.add("io.input", "src", shape=["N", "S"], dtype="long")
    tgt = g.add("io.input", "tgt", shape=["N", "T"], dtype="long")
    pos = {"max_len": max_len, "dropout": dropout}
    memory = g.chain(src, ("linear.embedding", {"num_embeddings": src_vocab,
                                                "embedding_dim": d_model}, "src_embed"),
                     ("attention.sinusoidal_position", pos, "src_pos"),
                     ("block.block", {"block": "EncoderLayer", "repeat": layers, "args": enc},
                      "encoder"),
                     ("norm.layer_norm", {}, "encoder_norm"))[-1]
    t = g.chain(tgt, ("linear.embedding", {"num_embeddings": tgt_vocab,
                                           "embedding_dim": d_model}, "tgt_embed"),
                ("attention.sinusoidal_position", pos, "tgt_pos"))[-1]
    dec = g.add("block.block", "decoder", block="DecoderLayer", repeat=layers, args=dec_args)
    g.connect(t, dec, "y", "x")
    g.connect(memory, dec, "y", "memory")
    g.chain(dec, ("norm.layer_norm", {}, "decoder_norm"),
            ("linear.linear", {"out_features": tgt_vocab}, "generator"),
            ("io.output", {}, "logits"))
    return g


@register("transformer-base", "Transformer", "reference",
          "The original Transformer, base size: d_model 512, 8 heads, 6 encoder and 6 decoder "
          "layers, feed-forward 2048, sinusoidal positions, post-norm. Attention lets every "
          "position see every other in one step, so it trains in parallel where an RNN cannot. "
          "Vocabularies of 37,000 tokens as in the paper's shared BPE (kept as separate source "
          "and target embeddings here). Inputs src [N, S], tgt [N, T] ids; output logits "
          "[N, T, 37000]. Bring your own translation data.",
          "seq2seq", None, layout="LR")
def transformer_base() -> Project:
    p = Project()
    seq2seq(p, src_vocab=37000, tgt_vocab=37000, d_model=512, nhead=8, layers=6,
            dim_feedforward=2048, max_len=512, dropout=0.1)
    return p


@register("transformer-small", "Transformer", "small",
          "A small encoder-decoder Transformer (d_model 64, 4 heads, 2+2 layers) that learns to "
          "reverse a sequence of tokens: the decoder attends to the whole source through "
          "cross-attention while its own self-attention is causal. Inputs src [N, S] and the "
          "shifted target tgt [N, T]; output logits [N, T, 16].",
          "seq2seq", "seq-reverse", layout="LR")
def transformer_small() -> Project:
    p = Project()
    seq2seq(p, src_vocab=16, tgt_vocab=16, d_model=64, nhead=4, layers=2, dim_feedforward=128,
            max_len=64, dropout=0.0)
    return p
