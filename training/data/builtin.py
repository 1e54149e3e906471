"""Built-in datasets, all offline: real ones Layerloom ships as data files, generated ones.

Copied into ``train.py`` by ``training.export``; needs torch, and numpy for the shipped sets
(digits, iris, wine, breast_cancer, diabetes: scikit-learn's copies of the UCI data, saved once as
plain arrays in ``assets/data``, which the export writes beside train.py). Each loader is
``fn(options, seed)``.
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Callable

import numpy as np
import torch
from torch import Tensor

# layerloom: local imports (train.py defines these names above)
from training.data.common import (
    Data,
    DataError,
    GraphList,
    OneGraph,
    option_number,
    split_rows,
    standardize,
)

# layerloom: end local imports

#: the folder of the shipped data files: Layerloom's ``assets/data`` (train.py: its own folder)
DATA_DIR = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "assets", "data")


def shipped(name: str) -> dict:
    """The arrays of a shipped data file, ``name.npz`` (plain arrays: nothing is unpickled)."""
    with np.load(os.path.join(DATA_DIR, f"{name}.npz"), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


# -- images -------------------------------------------------------------------------------------


def digits(options: dict, seed: int, flat: bool = False) -> Data:
    """1,797 real 8x8 handwritten digits (UCI's, as scikit-learn ships them), standardised."""
    d = shipped("digits")
    x = torch.tensor(d["images"], dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - 0.3) / 0.4
    y = torch.tensor(d["target"], dtype=torch.long)
    if flat:
        x = x.reshape(-1, 64)
    tr, va = split_rows((x, y), option_number(options, "val_fraction", 0.2, 0.0, 0.95), seed)
    return Data(tr, va, {"kind": "image", "num_classes": 10, "image_shape": [1, 8, 8],
                         "labels": [str(i) for i in range(10)]})


SHAPE_NAMES = ["circle", "square", "triangle", "cross"]


def shapes(options: dict, seed: int, size: int = 32) -> Data:
    """Generated coloured shapes (class = shape) on a random background with clutter, in [-1, 1]."""
    n = (int(option_number(options, "n", 2000, 2, 100_000, True)) if size <= 32
         else int(option_number(options, "n", 1000, 2, 100_000, True)))
    g = torch.Generator().manual_seed(1234 + size)
    y = torch.randint(0, 4, (n,), generator=g)
    coords = torch.arange(size, dtype=torch.float32)
    yy, xx = coords.view(1, size, 1), coords.view(1, 1, size)
    r = (0.18 + 0.14 * torch.rand(n, generator=g)) * size
    cx = r + (size - 2 * r) * torch.rand(n, generator=g)
    cy = r + (size - 2 * r) * torch.rand(n, generator=g)
    dx, dy = xx - cx.view(n, 1, 1), yy - cy.view(n, 1, 1)
    rr = r.view(n, 1, 1)
    masks = torch.stack([
        dx ** 2 + dy ** 2 <= rr ** 2,
        (dx.abs() <= 0.8 * rr) & (dy.abs() <= 0.8 * rr),
        (dy <= 0.8 * rr) & (dy >= -rr) & (dx.abs() <= (dy + rr) * 0.55),
        ((dx.abs() <= 0.3 * rr) & (dy.abs() <= rr)) | ((dy.abs() <= 0.3 * rr) & (dx.abs() <= rr)),
    ], 1)
    mask = masks[torch.arange(n), y].unsqueeze(1).float()
    bg = 0.35 * torch.rand(n, 3, 1, 1, generator=g)
    fg = 0.45 + 0.55 * torch.rand(n, 3, 1, 1, generator=g)
    img = bg + mask * (fg - bg)
    for _ in range(3):  # clutter: small blobs of another colour
        px = size * torch.rand(n, 1, 1, generator=g)
        py = size * torch.rand(n, 1, 1, generator=g)
        blob = (((xx - px) ** 2 + (yy - py) ** 2) <= (size / 16) ** 2).unsqueeze(1).float()
        img = img + blob * (torch.rand(n, 3, 1, 1, generator=g) - img) * 0.8
    img = img + 0.04 * torch.randn(img.shape, generator=g)
    x = img.clamp(0, 1) * 2 - 1
    tr, va = split_rows((x, y), option_number(options, "val_fraction", 0.2, 0.0, 0.95), seed)
    return Data(tr, va, {"kind": "image", "num_classes": 4, "image_shape": [3, size, size],
                         "labels": SHAPE_NAMES})


# -- text ---------------------------------------------------------------------------------------

TEXT_MODULES = ["argparse", "collections", "json", "textwrap", "unittest.case", "logging",
                "subprocess", "inspect", "pathlib", "functools", "pydoc", "tarfile", "zipfile",
                "shutil", "random", "statistics", "fractions", "decimal", "calendar", "dataclasses",
                "enum", "heapq", "bisect", "difflib", "string", "csv", "configparser", "pickle",
                "copy", "tempfile", "glob", "fnmatch", "threading", "queue", "uuid", "base64",
                "ipaddress", "optparse", "gettext", "locale", "codecs", "colorsys", "cmd", "shlex",
                "pprint", "contextlib", "typing", "ast", "timeit", "traceback", "warnings"]

#: 95 printable ASCII characters and the newline: vocab 96.
CHARS = "".join(chr(c) for c in range(32, 127)) + "\n"


def stdlib_text(max_chars: int = 200_000) -> str:
    """English prose that ships with Python: the docstrings of standard-library modules."""
    parts = []
    for name in TEXT_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        parts.append(inspect.cleandoc(mod.__doc__ or ""))
        for key, obj in sorted(vars(mod).items()):
            if key.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isclass(obj) or inspect.isfunction(obj):
                parts.append(inspect.getdoc(obj) or "")
    text = "\n\n".join(p for p in parts if p)
    if len(text) < 10_000:
        raise DataError("this Python has no docstrings (was it run with -OO?)",
                        expected="a normal Python, or the 'text' dataset with your own file")
    return text[:max_chars]


def encode_text(text: str) -> Tensor:
    table = {c: i for i, c in enumerate(CHARS)}
    space = table[" "]
    return torch.tensor([table.get(c, space) for c in text.replace("\t", "    ")], dtype=torch.long)


def text_data(text: str, options: dict) -> Data:
    """Character ids cut into windows of seq_len + 1; the last tenth of the text validates."""
    ids = encode_text(text)
    t = int(option_number(options, "seq_len", 64, 1, 65_536, True))
    cut = int(len(ids) * (1 - option_number(options, "val_fraction", 0.1, 0.0, 0.95)))

    def windows(part: Tensor) -> Tensor:
        m = (len(part) - 1) // t
        if m < 1:
            raise DataError(f"the text is too short for windows of {t} characters",
                            expected=f"at least {2 * (t + 1)} characters or a smaller seq_len")
        return part[: m * t + 1].unfold(0, t + 1, t).contiguous()

    return Data((windows(ids[:cut]),), (windows(ids[cut:]),),
                {"kind": "text", "vocab": len(CHARS), "itos": CHARS, "seq_len": t})


def text_chars(options: dict, seed: int) -> Data:
    max_chars = option_number(options, "max_chars", 200_000, 1_000, 10_000_000, True)
    return text_data(stdlib_text(int(max_chars)), options)


# -- sequence tasks -----------------------------------------------------------------------------

SEQ_VOCAB, BOS = 16, 0


def seq_task(options: dict, seed: int, task: str) -> Data:
    """copy / reverse / sort of symbols 2..15, or addition of two numbers (digits 2..11, '+' 12).

    Targets have a fixed length; decoders start from BOS (id 0).
    """
    n = int(option_number(options, "n", 4000, 2, 1_000_000, True))
    g = torch.Generator().manual_seed(4321 + len(task))
    if task == "add":
        nd = int(option_number(options, "digits", 3, 1, 9, True))
        a = torch.randint(0, 10 ** nd, (n,), generator=g)
        b = torch.randint(0, 10 ** nd, (n,), generator=g)

        def digits_of(v: Tensor, k: int) -> Tensor:
            return torch.stack([(v // 10 ** (k - 1 - i)) % 10 for i in range(k)], 1) + 2

        src = torch.cat([digits_of(a, nd), torch.full((n, 1), 12), digits_of(b, nd)], 1)
        tgt = digits_of(a + b, nd + 1)
    else:
        length = int(option_number(options, "seq_len", 8, 1, 4096, True))
        src = torch.randint(2, SEQ_VOCAB, (n, length), generator=g)
        tgt = {"copy": src, "reverse": src.flip(1), "sort": src.sort(1)[0]}[task].clone()
    tr, va = split_rows((src, tgt), option_number(options, "val_fraction", 0.2, 0.0, 0.95), seed)
    return Data(tr, va, {"kind": "seq", "vocab": SEQ_VOCAB, "bos": BOS, "task": task,
                         "src_len": src.shape[1], "tgt_len": tgt.shape[1]})


# -- graphs -------------------------------------------------------------------------------------

#: Zachary's karate club (as networkx.karate_club_graph()), kept here so train.py needs no networkx.
KARATE_EDGES = [
    (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (0, 8), (0, 10), (0, 11), (0, 12),
    (0, 13), (0, 17), (0, 19), (0, 21), (0, 31), (1, 2), (1, 3), (1, 7), (1, 13), (1, 17),
    (1, 19), (1, 21), (1, 30), (2, 3), (2, 7), (2, 8), (2, 9), (2, 13), (2, 27), (2, 28),
    (2, 32), (3, 7), (3, 12), (3, 13), (4, 6), (4, 10), (5, 6), (5, 10), (5, 16), (6, 16),
    (8, 30), (8, 32), (8, 33), (9, 33), (13, 33), (14, 32), (14, 33), (15, 32), (15, 33),
    (18, 32), (18, 33), (19, 33), (20, 32), (20, 33), (22, 32), (22, 33), (23, 25), (23, 27),
    (23, 29), (23, 32), (23, 33), (24, 25), (24, 27), (24, 31), (25, 31), (26, 29), (26, 33),
    (27, 33), (28, 31), (28, 33), (29, 32), (29, 33), (30, 32), (30, 33), (31, 32), (31, 33),
    (32, 33)]
#: 1 = the Officer's club, 0 = Mr. Hi's.
KARATE_CLUB = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1,
               1, 1, 1, 1, 1, 1, 1]


def undirected(edges: list[tuple[int, int]] | Tensor) -> Tensor:
    e = torch.as_tensor(edges, dtype=torch.long).reshape(-1, 2).T
    return torch.cat([e, e.flip(0)], 1)


def node_split(y: Tensor, x: Tensor, edge_index: Tensor, options: dict, seed: int,
               info: dict) -> Data:
    """Stratified train/val node masks on one graph."""
    g = torch.Generator().manual_seed(seed)
    train_mask = torch.zeros(len(y), dtype=torch.bool)
    frac = 1 - option_number(options, "val_fraction", 0.5, 0.0, 0.95)
    for c in y.unique():
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        train_mask[idx[: max(1, round(len(idx) * frac))]] = True
    return OneGraph((x, edge_index, y, train_mask), (x, edge_index, y, ~train_mask), info)


def karate(options: dict, seed: int) -> Data:
    y = torch.tensor(KARATE_CLUB)
    x = torch.eye(34)
    return node_split(y, x, undirected(KARATE_EDGES), options, seed,
                      {"kind": "graph", "num_classes": 2, "features": 34,
                       "labels": ["Mr. Hi", "Officer"]})


def graphs_synth(options: dict, seed: int) -> Data:
    """Rings with a few chords (class 0) vs random trees (class 1), 8-20 nodes; features are
    one-hot degrees (8)."""
    n = int(option_number(options, "n", 600, 2, 100_000, True))
    g = torch.Generator().manual_seed(777)
    graphs = []
    for i in range(n):
        k = int(torch.randint(8, 21, (1,), generator=g))
        label = i % 2
        if label == 0:
            edges = [(j, (j + 1) % k) for j in range(k)]
            for _ in range(int(torch.randint(0, 3, (1,), generator=g))):
                a, b = torch.randint(0, k, (2,), generator=g).tolist()
                if a != b:
                    edges.append((a, b))
        else:
            edges = [(j, int(torch.randint(0, j, (1,), generator=g))) for j in range(1, k)]
        e = undirected(edges)
        deg = torch.bincount(e[0], minlength=k).clamp(max=7)
        graphs.append((torch.nn.functional.one_hot(deg, 8).float(), e, torch.tensor(label)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, int(n * option_number(options, "val_fraction", 0.2, 0.0, 0.95)))
    return GraphList([graphs[i] for i in perm[n_val:]], [graphs[i] for i in perm[:n_val]],
                {"kind": "graphs", "num_classes": 2, "features": 8,
                 "labels": ["ring", "tree"]})


# -- tabular ------------------------------------------------------------------------------------


def tabular(options: dict, seed: int, name: str) -> Data:
    """A small real table (UCI's, as scikit-learn ships it), its features standardised."""
    d = shipped(name)
    x = torch.tensor(d["data"], dtype=torch.float32)
    if name == "diabetes":
        y = torch.tensor(d["target"], dtype=torch.float32).unsqueeze(1)
        tr, va = split_rows((x, y), option_number(options, "val_fraction", 0.2, 0.0, 0.95), seed)
        tr, va, _ = standardize(tr, va, 0)
        tr, va, stats = standardize(tr, va, 1)
        return Data(tr, va, {"kind": "tabular", "features": x.shape[1], "targets": 1,
                             "target_std": float(stats["std"].flatten()[0])})
    y = torch.tensor(d["target"], dtype=torch.long)
    tr, va = split_rows((x, y), option_number(options, "val_fraction", 0.2, 0.0, 0.95), seed)
    tr, va, _ = standardize(tr, va, 0)
    return Data(tr, va, {"kind": "tabular", "features": x.shape[1],
                         "num_classes": int(y.max()) + 1,
                         "labels": [str(s) for s in d["target_names"]]})


BUILTIN: dict[str, Callable[[dict, int], Data]] = {
    "digits": digits,
    "digits-flat": lambda o, s: digits(o, s, flat=True),
    "shapes32": lambda o, s: shapes(o, s, 32),
    "shapes64": lambda o, s: shapes(o, s, 64),
    "text-chars": text_chars,
    "seq-copy": lambda o, s: seq_task(o, s, "copy"),
    "seq-reverse": lambda o, s: seq_task(o, s, "reverse"),
    "seq-sort": lambda o, s: seq_task(o, s, "sort"),
    "seq-add": lambda o, s: seq_task(o, s, "add"),
    "karate": karate,
    "graphs-synth": graphs_synth,
    "iris": lambda o, s: tabular(o, s, "iris"),
    "wine": lambda o, s: tabular(o, s, "wine"),
    "breast_cancer": lambda o, s: tabular(o, s, "breast_cancer"),
    "diabetes": lambda o, s: tabular(o, s, "diabetes"),
}
