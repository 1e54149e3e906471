"""In-memory datasets: tensors split into train/val, batched by index, graphs collated.

Torch-only; ``training.export`` copies this file into ``train.py``. Every built-in and user dataset
is small enough to sit in memory, which keeps batching a pure function of the indices
(exact resume).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor


class DataError(Exception):
    """Bad data, said where: the file, the line and/or column, and what was expected."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 column: str | int | None = None, expected: str = "") -> None:
        self.message, self.file, self.line, self.column = message, file, line, column
        self.expected = expected
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column}")
        text = (", ".join(where) + ": " if where else "") + self.message
        return text + (f" (expected {self.expected})" if self.expected else "")


def option_number(options: dict, key: str, default: float, lo: float, hi: float,
                  integer: bool = False) -> float:
    """A numeric dataset option, checked: a typo in the Train panel is a DataError naming the
    option, not a ValueError from deep inside a loader."""
    value = options.get(key, default)
    kind = "a whole number" if integer else "a number"
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"dataset option '{key}' is {value!r}",
                        expected=f"{kind} from {lo:g} to {hi:g}") from None
    if not lo <= number <= hi:  # also refuses NaN
        raise DataError(f"dataset option '{key}' is {value!r}, out of range",
                        expected=f"{kind} from {lo:g} to {hi:g}")
    return number


class Data:
    """Train and validation tensors (rows of x, y, ... aligned on dim 0) plus ``info`` that
    recipes read. Graph data are the subclasses :class:`OneGraph` and :class:`GraphList`."""

    kind = "tensors"

    def __init__(self, train: Any, val: Any, info: dict) -> None:
        self.train, self.val, self.info = train, val, info

    def split(self, name: str) -> Any:
        return self.train if name == "train" else self.val

    def size(self, split: str) -> int:
        return int(self.split(split)[0].shape[0])

    def batch(self, split: str, idx: Tensor, device: torch.device) -> tuple:
        return self.batcher(split, device)(idx)

    def batcher(self, split: str, device: torch.device) -> Callable[[Tensor], tuple]:
        """Batching for one split and device, decided once: the training loop calls the result
        every step, and for in-memory tensors it is plain indexing (what a hand-written loop
        does; measured: the per-step dispatch of ``batch`` cost ~2% on a 1 ms step)."""
        part = self.split(split)
        if part[0].device != device:
            return lambda idx: tuple(t[idx].to(device, non_blocking=True) for t in part)
        if len(part) == 2:  # preloaded (CUDA) or CPU training: no copy call at all
            a, b = part
            return lambda idx: (a[idx], b[idx])
        return lambda idx: tuple(t[idx] for t in part)

    def batch_len(self, batch: tuple) -> int:
        return int(batch[0].shape[0])

    def rescale(self, lo: float, hi: float, pos: int = 0) -> None:
        """Map tensor ``pos`` linearly so the training data spans [lo, hi] (for Sigmoid or Tanh
        outputs); validation uses the same map."""
        if self.kind != "tensors":
            return
        x = self.train[pos]
        a, b = float(x.min()), float(x.max())
        if a == lo and b == hi:
            return
        scale = (hi - lo) / max(b - a, 1e-12)
        for name in ("train", "val"):
            part = list(self.split(name))
            part[pos] = ((part[pos] - a) * scale + lo).clamp(lo, hi)
            setattr(self, name, tuple(part))

    def fit_input(self, pos: int, dims: tuple, who: str) -> None:
        """Make tensor ``pos`` match a network input's per-sample dims (after 'N').

        Equal sizes reshape silently (digits [1, 8, 8] feeds an input of [64]); anything else is a
        DataError that names both shapes.
        """
        if self.kind != "tensors" or not dims or dims[0] != "N":
            return
        want = list(dims[1:])
        for name in ("train", "val"):
            part = list(self.split(name))
            have = list(part[pos].shape[1:])
            if _fits(have, want):
                continue
            numel = 1
            for d in have:
                numel *= d
            fixed = [d for d in want if isinstance(d, int)]
            if all(isinstance(d, int) for d in want) and _prod(fixed) == numel:
                part[pos] = part[pos].reshape(part[pos].shape[0], *fixed)
                setattr(self, name, tuple(part))
                continue
            raise DataError(
                f"the dataset gives samples of shape {have} but {who} takes "
                f"[{', '.join(str(d) for d in want)}] per sample",
                expected="a dataset whose samples match the Input node's shape, or an Input "
                         "shape that matches the data")


def _prod(xs: list[int]) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def _fits(have: list[int], want: list) -> bool:
    return len(have) == len(want) and all(
        isinstance(w, str) or w == h for h, w in zip(have, want, strict=True))


class OneGraph(Data):
    """One graph (x, edge_index, y, node mask) per split: every step trains on all of it."""

    kind = "graph"

    def size(self, split: str) -> int:
        return 1

    def batcher(self, split: str, device: torch.device) -> Callable[[Tensor], tuple]:
        part = self.split(split)
        return lambda idx: tuple(t.to(device) if isinstance(t, Tensor) else t for t in part)


class GraphList(Data):
    """A list of small graphs per split, collated into one disconnected graph per batch."""

    kind = "graphs"

    def size(self, split: str) -> int:
        return len(self.split(split))

    def batcher(self, split: str, device: torch.device) -> Callable[[Tensor], tuple]:
        part = self.split(split)
        return lambda idx: collate_graphs([part[i] for i in idx.tolist()], device)

    def batch_len(self, batch: tuple) -> int:
        return int(batch[3])


def collate_graphs(graphs: list[tuple[Tensor, Tensor, Tensor]], device: torch.device) -> tuple:
    """(x [V_i, F], edge_index [2, E_i], y) per graph -> (x, edge_index, batch, num_graphs, y)."""
    xs, es, bs, ys, offset = [], [], [], [], 0
    for i, (x, e, y) in enumerate(graphs):
        xs.append(x)
        es.append(e + offset)
        bs.append(torch.full((x.shape[0],), i, dtype=torch.long))
        ys.append(y.reshape(1))
        offset += x.shape[0]
    return (torch.cat(xs).to(device), torch.cat(es, 1).to(device), torch.cat(bs).to(device),
            len(graphs), torch.cat(ys).to(device))


def split_rows(tensors: tuple[Tensor, ...], val_fraction: float, seed: int) -> tuple[tuple, tuple]:
    """A seeded shuffle then a cut; the validation part is at least one row."""
    n = tensors[0].shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = min(n - 1, max(1, int(round(n * val_fraction)))) if n > 1 else 0
    va, tr = perm[:n_val], perm[n_val:]
    return tuple(t[tr] for t in tensors), tuple(t[va] for t in tensors)


def standardize(train: tuple, val: tuple, pos: int = 0) -> tuple[tuple, tuple, dict]:
    """Zero mean, unit variance per feature using training statistics only."""
    x = train[pos].float()
    mean, std = x.mean(0, keepdim=True), x.std(0, keepdim=True).clamp_min(1e-6)
    tr, va = list(train), list(val)
    tr[pos] = (train[pos].float() - mean) / std
    va[pos] = (val[pos].float() - mean) / std
    return tuple(tr), tuple(va), {"mean": mean, "std": std}
