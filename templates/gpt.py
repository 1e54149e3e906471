"""GPT: a decoder-only Transformer that predicts the next token (Radford et al. 2018, 2019).

The LM head reuses the token embedding matrix (weight tying): the Embedding (shared weight) node
hands its matrix to a Tied Linear at the end, so the 38.6M-entry matrix is stored and trained once.
"""

from __future__ import annotations

from compiler import Project, add_block, add_network, ref

from .registry import register


def gpt_block(p: Project, *, d_model: int, nhead: int, dropout: float) -> dict[str, int | float]:
    """One pre-norm layer as nanoGPT writes it: h = x + attn(ln_1(x)); y = h + mlp(ln_2(h)).

    Its sizes are block params, so the exported class reads ``GPTBlock(embed_dim=128,
    num_heads=4, mlp_dim=512)`` as a hand-written one would; ``dropout`` is one only where the
    model drops out (a model without dropout gets no no-op layers and no unused argument).
    Returns the params, which are also what the network's GPTBlock node passes."""
    params: dict[str, int | float] = {"embed_dim": d_model, "num_heads": nhead,
                                      "mlp_dim": 4 * d_model}
    if dropout:
        params["dropout"] = dropout
    b = add_block(p, "GPTBlock", params, description="GPT-2 layer, pre-norm: h = x + "
                  "attn(ln_1(x)); y = h + mlp(ln_2(h)).")
    x = b.add("io.block_input", "x")
    attention: dict = {"num_heads": ref("num_heads"), "causal": True}
    if dropout:
        attention["dropout"] = ref("dropout")
    attn = b.chain(x, ("norm.layer_norm", {}, "ln_1"),
                   ("attention.multihead_attention", attention, "attn"))[-1]
    if dropout:
        attn = b.chain(attn, ("norm.dropout", {"p": ref("dropout")}, "attn_dropout"))[-1]
    h = b.add("merge.add", "attn_residual")
    b.connect(x, h)
    b.connect(attn, h)
    mlp = b.chain(h, ("norm.layer_norm", {}, "ln_2"),
                  ("linear.linear", {"out_features": ref("mlp_dim")}, "mlp_fc"),
                  ("activation.gelu", {"approximate": "tanh"}, "mlp_act"),
                  ("linear.linear", {"out_features": ref("embed_dim")}, "mlp_proj"))[-1]
    if dropout:
        mlp = b.chain(mlp, ("norm.dropout", {"p": ref("dropout")}, "mlp_dropout"))[-1]
    y = b.add("merge.add", "mlp_residual")
    b.connect(h, y)
    b.connect(mlp, y)
    b.connect(y, b.add("io.block_output", "y"))
    return params


def gpt(p: Project, *, vocab: int, d_model: int, nhead: int, layers: int, max_len: int,
        dropout: float) -> None:
    args = gpt_block(p, d_model=d_model, nhead=nhead, dropout=dropout)
    g = add_network(p, "net")
    ids = g.add("io.input", "ids", shape=["N", "T"], dtype="long")
    emb = {"num_embeddings": vocab, "embedding_dim": d_model}
    wte = g.add("linear.tied_embedding", "wte", **emb)
    g.connect(ids, wte)
    h = g.chain(wte, ("attention.learned_position", {"max_len": max_len, "dropout": dropout},
                      "wpe"),
                ("block.block", {"block": "GPTBlock", "repeat": layers,
                                 "args": dict(args)}, "blocks"),
                ("norm.layer_norm", {}, "ln_f"))[-1]
    head = g.add("linear.tied_linear", "lm_head")  # shares wte's matrix, as GPT-2 does
    g.connect(h, head, "y", "x")
    g.connect(wte, head, "weight", "weight")
    g.connect(head, g.add("io.output", "logits"))


@register("gpt2", "GPT", "reference",
          "GPT-2 small: 12 pre-norm decoder layers (width 768, 12 heads, GELU), learned positions "
          "up to 1024 tokens, a 50,257-token vocabulary, and an LM head that shares the token "
          "embedding matrix. Causal self-attention lets one pass train on every next-token "
          "prediction of a text at once. Input ids [N, T]; output logits [N, T, 50257]. Bring "
          "your own tokenised text.",
          "language_model", None, layout="LR")
def gpt2() -> Project:
    p = Project()
    gpt(p, vocab=50257, d_model=768, nhead=12, layers=12, max_len=1024, dropout=0.1)
    return p


@register("gpt-small", "GPT", "small",
          "A character-level GPT (4 layers, width 128, 4 heads) with GPT-2's design: pre-norm "
          "causal layers, learned positions, tied LM head. Learns to continue the built-in text "
          "one character at a time; vocab 96 (printable ASCII), contexts up to 128.",
          "language_model", "text-chars", layout="LR")
def gpt_small() -> Project:
    p = Project()
    gpt(p, vocab=96, d_model=128, nhead=4, layers=4, max_len=128, dropout=0.0)
    return p
