"""Recurrent networks: a state carried along the sequence, one step at a time.

Two tasks per cell type: a sequence classifier (the 8×8 digit read row by row) and a
character-level language model. Same graphs, one node different, so the three cells compare fairly.
"""

from __future__ import annotations

from compiler import Project, add_network

from .registry import register

CELLS = {"rnn": ("recurrent.rnn", "Vanilla RNN", "a tanh state updated at every step; simple, but "
                 "gradients fade over long spans"),
         "lstm": ("recurrent.lstm", "LSTM", "gates decide what the cell state keeps and forgets, "
                  "so information survives long spans"),
         "gru": ("recurrent.gru", "GRU", "two gates instead of the LSTM's three: nearly as good "
                 "at long spans with fewer weights")}

TEXT_VOCAB = 96


def _classifier(cell: str) -> Project:
    p = Project()
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 1, 8, 8])
    rows = g.add("shape.reshape", "rows", shape=[8, 8])
    g.connect(x, rows)
    rnn = g.add(CELLS[cell][0], cell, hidden_size=64)
    g.connect(rows, rnn)
    head = g.add("linear.linear", "head", out_features=10)
    g.connect(rnn, head, "hidden", "x")
    g.connect(head, g.add("io.output", "logits"))
    return p


def _char_lm(cell: str) -> Project:
    p = Project()
    g = add_network(p, "net")
    ids = g.add("io.input", "ids", shape=["N", "T"], dtype="long")
    emb = g.add("linear.embedding", "embed", num_embeddings=TEXT_VOCAB, embedding_dim=32)
    g.connect(ids, emb)
    rnn = g.add(CELLS[cell][0], cell, hidden_size=128)
    g.connect(emb, rnn)
    head = g.add("linear.linear", "head", out_features=TEXT_VOCAB)
    g.connect(rnn, head, "output", "x")
    g.connect(head, g.add("io.output", "logits"))
    return p


def _register(cell: str) -> None:
    _type, title, why = CELLS[cell]
    register(f"{cell}-digits", title, "small",
             f"{title} sequence classifier: reads the 8×8 digit as 8 rows of 8 pixels; {why}. The "
             "final hidden state feeds a Linear that scores the 10 digits.",
             "classification", "digits", layout="LR")(lambda: _classifier(cell))
    register(f"{cell}-charlm", title, "small",
             f"{title} character language model: embeds each character, {why}; a Linear at "
             "every step predicts the next character. Trains on the built-in text.",
             "language_model", "text-chars", layout="LR")(lambda: _char_lm(cell))


for _cell in CELLS:
    _register(_cell)
