"""In-memory datasets: tensors split into train/val, batched by index, graphs collated.

Torch-only; ``training.export`` copies this file into ``train.py``. Every built-in and user dataset
is small enough to sit in memory, which keeps batching a pure function of the indices
(exact resume).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor


class DataError(Exception):
    """Bad data, said where (the file, the line and/or column) and what was expected."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 column: str | int | None = None, expected: str = "") -> None:
        self.message, self.file, self.line, self.column = message, file, line, column
        self.expected = expected
        where = [str(file)] if file else []
        where += [f"{k} {v}" for k, v in (("line", line), ("column", column)) if v is not None]
        super().__init__((", ".join(where) + ": " if where else "") + message
                         + (f" (expected {expected})" if expected else ""))


def option_number(options: dict, key: str, default: float, lo: float, hi: float,
                  integer: bool = False) -> float:
    """A numeric dataset option, checked: a typo is a DataError naming the option.

    Not a ValueError from deep inside a loader; also refuses NaN, booleans and, for whole
    numbers, fractions.
    """
    value = options.get(key, default)
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if lo <= number <= hi and not (integer and number % 1):
        return int(number) if integer else number
    where = ", out of range" if number < lo or number > hi else ""  # NaN compares false
    raise DataError(f"dataset option '{key}' is {value!r}{where}",
                    expected=f"{'a whole number' if integer else 'a number'} from {lo:g} to {hi:g}")


class Data:
    """Train and validation tensors (rows aligned on dim 0) and ``info`` that recipes read.

    Graph data are the subclasses :class:`OneGraph` and :class:`GraphList`.
    """

    kind = "tensors"

    def __init__(self, train: Any, val: Any, info: dict) -> None:
        self.train, self.val, self.info = train, val, info

    def size(self, split: str) -> int:
        return int(getattr(self, split)[0].shape[0])

    def batch(self, split: str, idx: Tensor, device: torch.device) -> tuple:
        return self.batcher(split, device)(idx)

    def batcher(self, split: str, device: torch.device) -> Callable[[Tensor], tuple]:
        """Batching for one split and device, decided once: the gather the loop calls.

        Decided here, not per step: the per-step dispatch of ``batch`` cost ~2% on a 1 ms step.
        On the CPU ``index_select`` copies whole rows: the same values as ``t[idx]`` (advanced
        indexing, element by element) at 2-3x its speed, 3.3 against 6.7 us for a digits batch
        with its labels and 34 against 108 us for a CIFAR-sized one (benchmarks/bench_batching.py).
        Preloaded on a GPU, the data are indexed there, with the sampler's indices (on the GPU too).
        """
        part = getattr(self, split)
        if device.type == "cpu":  # where the data are (setup moves them to a GPU only)
            return lambda idx: tuple(t.index_select(0, idx) for t in part)
        if part[0].device != device:
            return lambda idx: tuple(t[idx].to(device, non_blocking=True) for t in part)
        return lambda idx: tuple(t[idx] for t in part)  # preloaded on the GPU

    def rescale(self, lo: float, hi: float, pos: int = 0) -> None:
        """Map tensor ``pos`` linearly so the training data spans [lo, hi] (for Sigmoid or Tanh
        outputs); validation uses the same map."""
        x = self.train[pos]
        a, b = float(x.min()), float(x.max())
        if a == lo and b == hi:
            return
        scale = (hi - lo) / max(b - a, 1e-12)
        for name in ("train", "val"):
            part = list(getattr(self, name))
            part[pos] = ((part[pos] - a) * scale + lo).clamp(lo, hi)
            setattr(self, name, tuple(part))

    def fit_input(self, pos: int, dims: tuple, who: str) -> None:
        """Make tensor ``pos`` match a network input's per-sample dims (after 'N').

        Equal sizes reshape silently (digits [1, 8, 8] feeds an input of [64]); anything else is a
        DataError that names both shapes.
        """
        want = list(dims[1:])
        for name in ("train", "val") if dims and dims[0] == "N" else ():
            part = list(getattr(self, name))
            have = list(part[pos].shape[1:])
            if len(have) == len(want) and have == [h if isinstance(w, str) else w
                                                   for h, w in zip(have, want, strict=True)]:
                continue  # symbols ('T') take any size
            if not all(isinstance(d, int) for d in want) or math.prod(want) != math.prod(have):
                raise DataError(f"the dataset gives samples of shape {have} but {who} takes "
                                f"[{', '.join(map(str, want))}] per sample",
                                expected="a dataset whose samples match the Input node's "
                                         "shape, or an Input shape that matches the data")
            part[pos] = part[pos].reshape(part[pos].shape[0], *want)
            setattr(self, name, tuple(part))


class OneGraph(Data):
    """One graph (x, edge_index, y, node mask) per split: every step trains on all of it."""

    kind = "graph"

    def size(self, split: str) -> int:
        return 1

    def fit_input(self, pos: int, dims: tuple, who: str) -> None:
        """Graphs are fed as they are: their networks take node features and edges."""

    def rescale(self, lo: float, hi: float, pos: int = 0) -> None:
        """Graph features are left as they are."""

    def batcher(self, split: str, device: torch.device) -> Callable[[Tensor], tuple]:
        part = getattr(self, split)
        return lambda idx: tuple(t.to(device) if isinstance(t, Tensor) else t for t in part)


class GraphList(Data):
    """A list of small graphs per split, collated into one disconnected graph per batch."""

    kind = "graphs"

    def size(self, split: str) -> int:
        return len(getattr(self, split))

    def fit_input(self, pos: int, dims: tuple, who: str) -> None:
        """Graphs are fed as they are: their networks take node features and edges."""

    def rescale(self, lo: float, hi: float, pos: int = 0) -> None:
        """Graph features are left as they are."""

    def batcher(self, split: str, device: torch.device) -> Callable[[Tensor], tuple]:
        part = getattr(self, split)
        return lambda idx: collate_graphs([part[i] for i in idx.tolist()], device)


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
    n_val = min(n - 1, max(1, round(n * val_fraction))) if n > 1 else 0
    return tuple(t[perm[n_val:]] for t in tensors), tuple(t[perm[:n_val]] for t in tensors)


def standardize(train: tuple, val: tuple, pos: int = 0) -> tuple[tuple, tuple, dict]:
    """Zero mean, unit variance per feature using training statistics only."""
    x = train[pos].float()
    mean, std = x.mean(0, keepdim=True), x.std(0, keepdim=True).clamp_min(1e-6)
    tr, va = list(train), list(val)
    tr[pos] = (train[pos].float() - mean) / std
    va[pos] = (val[pos].float() - mean) / std
    return tuple(tr), tuple(va), {"mean": mean, "std": std}
