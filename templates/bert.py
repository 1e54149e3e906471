"""BERT (Devlin et al. 2018): a bidirectional Transformer encoder that learns by filling in
masked tokens."""

from __future__ import annotations

from compiler import Graph, Project, add_block, add_network, ref

from .registry import register


def _encoder_block(p: Project, *, d_model: int, nhead: int, dim_feedforward: int,
                   dropout: float) -> dict[str, int | float]:
    """One post-norm layer: h = norm(x + attn(x)); y = norm(h + ffn(h)), GELU in the FFN.

    The sizes (and the dropout, where there is one) are block params whose defaults are these
    values, so the export reads ``BertLayer(embed_dim=128, num_heads=4, dim_feedforward=512)``
    and a BertLayer node without arguments builds this layer. Returns the params."""
    params: dict[str, int | float] = {"embed_dim": d_model, "num_heads": nhead,
                                      "dim_feedforward": dim_feedforward}
    if dropout:
        params["dropout"] = dropout
    b = add_block(p, "BertLayer", params, description="BERT layer, post-norm: h = norm(x + "
                  "attention(x)); y = norm(h + ffn(h)).")
    x = b.add("io.block_input", "x")
    attention: dict = {"num_heads": ref("num_heads")}
    if dropout:
        attention["dropout"] = ref("dropout")
    attn = b.chain(x, ("attention.multihead_attention", attention, "attention"))[-1]
    if dropout:
        attn = b.chain(attn, ("norm.dropout", {"p": ref("dropout")}, "attention_dropout"))[-1]
    add = b.add("merge.add", "attention_residual")
    b.connect(x, add)
    b.connect(attn, add)
    h = b.chain(add, ("norm.layer_norm", {"eps": 1e-12}, "attention_norm"))[-1]
    ffn = b.chain(h, ("linear.linear", {"out_features": ref("dim_feedforward")}, "intermediate"),
                  ("activation.gelu", {}, "intermediate_act"),
                  ("linear.linear", {"out_features": ref("embed_dim")}, "output"))[-1]
    if dropout:
        ffn = b.chain(ffn, ("norm.dropout", {"p": ref("dropout")}, "output_dropout"))[-1]
    add2 = b.add("merge.add", "output_residual")
    b.connect(h, add2)
    b.connect(ffn, add2)
    b.chain(add2, ("norm.layer_norm", {"eps": 1e-12}, "output_norm"),
            ("io.block_output", {}, "y"))
    return params


def _embeddings(g: Graph, ids: str, *, vocab: int, d_model: int, max_len: int,
                dropout: float, segments: str | None) -> str:
    """Token + position (+ segment) embeddings, then LayerNorm and dropout, as BERT sums them."""
    h = g.chain(ids, ("linear.embedding", {"num_embeddings": vocab, "embedding_dim": d_model},
                      "word_embeddings"),
                ("attention.learned_position", {"max_len": max_len}, "position_embeddings"))[-1]
    if segments is not None:
        seg = g.add("linear.embedding", "token_type_embeddings", num_embeddings=2,
                    embedding_dim=d_model)
        g.connect(segments, seg)
        total = g.add("merge.add", "embeddings")
        g.connect(h, total)
        g.connect(seg, total)
        h = total
    return g.chain(h, ("norm.layer_norm", {"eps": 1e-12}, "embed_norm"),
                   ("norm.dropout", {"p": dropout}, "embed_dropout"))[-1]


@register("bert-base", "BERT", "reference",
          "BERT-base: token, position (512) and segment (2) embeddings, 12 post-norm encoder "
          "layers (width 768, 12 heads, GELU, feed-forward 3072) and the pooler (Linear + Tanh on "
          "the first token). Every token attends both ways, which is what masked-token "
          "pre-training buys over left-to-right models. Inputs ids, segments [N, T]; outputs the "
          "sequence [N, T, 768] and the pooled vector [N, 768]. For fine-tuning on your own data.",
          None, None, layout="LR")
def bert_base() -> Project:
    p = Project()
    args = _encoder_block(p, d_model=768, nhead=12, dim_feedforward=3072, dropout=0.1)
    g = add_network(p, "net")
    ids = g.add("io.input", "ids", shape=["N", "T"], dtype="long")
    segments = g.add("io.input", "segments", shape=["N", "T"], dtype="long")
    h = _embeddings(g, ids, vocab=30522, d_model=768, max_len=512, dropout=0.1,
                    segments=segments)
    seq = g.chain(h, ("block.block", {"block": "BertLayer", "repeat": 12, "args": args},
                      "encoder"))[-1]
    g.connect(seq, g.add("io.output", "sequence"))
    g.chain(seq, ("shape.select", {"dim": 1, "index": 0}, "first_token"),
            ("linear.linear", {"out_features": 768}, "pooler"),
            ("activation.tanh", {}, "pooler_act"), ("io.output", {}, "pooled"))
    return p


@register("bert-small", "BERT", "small",
          "A small BERT (2 layers, width 128, 4 heads) trained the BERT way: the recipe hides "
          "some characters and the model, attending both left and right, fills them in. A "
          "Linear + GELU + LayerNorm transform and a vocabulary Linear form the masked-LM head. "
          "Input ids [N, T]; output logits [N, T, 96]. Trains on the built-in text.",
          "masked_lm", "text-chars", layout="LR")
def bert_small() -> Project:
    p = Project()
    args = _encoder_block(p, d_model=128, nhead=4, dim_feedforward=512, dropout=0.0)
    g = add_network(p, "net")
    ids = g.add("io.input", "ids", shape=["N", "T"], dtype="long")
    h = _embeddings(g, ids, vocab=96, d_model=128, max_len=128, dropout=0.0, segments=None)
    g.chain(h, ("block.block", {"block": "BertLayer", "repeat": 2, "args": args}, "encoder"),
            ("linear.linear", {"out_features": 128}, "mlm_transform"),
            ("activation.gelu", {}, "mlm_act"), ("norm.layer_norm", {}, "mlm_norm"),
            ("linear.linear", {"out_features": 96}, "mlm_decoder"), ("io.output", {}, "logits"))
    return p
