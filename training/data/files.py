"""The user's own data: CSV, .npz/.npy, an image folder (PNG), a text file, a graph as two CSVs.

Copied into ``train.py``; needs torch (and numpy for .npz/.npy). A malformed file raises DataError
naming the file, the line and/or column, and what was expected there.
"""

from __future__ import annotations

import csv
import os
import struct
import zlib

import torch
from torch import Tensor

# layerloom: local imports (train.py defines these names above)
from training.data.builtin import node_split, text_data, undirected
from training.data.common import Data, DataError, split_rows, standardize

# layerloom: end local imports


def _path(options: dict, key: str = "path") -> str:
    path = options.get(key)
    if not path:
        raise DataError(f"no file given: set dataset_options['{key}']",
                        expected="the path of your data file")
    path = os.path.expanduser(str(path))
    if not os.path.exists(path):
        raise DataError("file not found", file=path, expected="an existing file or folder")
    return path


def read_csv(path: str) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """(header or None, [(line number, fields)]); blank lines skipped; ragged rows refused."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [(i + 1, r) for i, r in enumerate(csv.reader(f)) if any(c.strip() for c in r)]
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text (byte {err.start})", file=path) from None
    except csv.Error as err:
        raise DataError(f"cannot parse as CSV: {err}", file=path) from None
    if not rows:
        raise DataError("the file is empty", file=path, expected="a header line and data rows")
    header = None
    if any(not _is_number(c) for c in rows[0][1]) and len(rows) > 1 and \
            all(_is_number(c) for c in rows[1][1][:-1]):
        header = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    width = len(header) if header else len(rows[0][1])
    for line, r in rows:
        if len(r) != width:
            raise DataError(f"this row has {len(r)} fields", file=path, line=line,
                            expected=f"{width} comma-separated fields like the first row")
    return header, rows


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _column_index(header: list[str] | None, width: int, column, path: str) -> int:
    if column is None:
        return width - 1
    if isinstance(column, int) or (isinstance(column, str) and column.lstrip("-").isdigit()):
        i = int(column)
        if -width <= i < width:
            return i % width
    elif header and column in header:
        return header.index(column)
    raise DataError(f"there is no label column '{column}'", file=path,
                    expected=f"one of {header}" if header else f"a column number below {width}")


def _floats(path: str, header: list[str] | None, rows: list, cols: list[int]) -> Tensor:
    out = []
    for line, r in rows:
        vals = []
        for c in cols:
            try:
                vals.append(float(r[c]))
            except ValueError:
                name = f"{c + 1} ('{header[c]}')" if header else c + 1
                raise DataError(f"'{r[c]}' is not a number", file=path, line=line, column=name,
                                expected="a number (features must be numeric)") from None
        out.append(vals)
    return torch.tensor(out, dtype=torch.float32)


def _labels(values: list[str], task: str) -> tuple[Tensor, list[str] | None]:
    if task == "regression":
        return torch.tensor([float(v) for v in values]).unsqueeze(1), None
    names = sorted(set(values), key=lambda v: (not _is_number(v), float(v) if _is_number(v) else 0,
                                               v))
    table = {v: i for i, v in enumerate(names)}
    return torch.tensor([table[v] for v in values], dtype=torch.long), names


def csv_data(options: dict, seed: int) -> Data:
    """Feature columns plus one label column (the last unless ``label_column`` names another)."""
    path = _path(options)
    header, rows = read_csv(path)
    width = len(rows[0][1])
    label = _column_index(header, width, options.get("label_column"), path)
    x = _floats(path, header, rows, [c for c in range(width) if c != label])
    values = [r[label].strip() for _, r in rows]
    task = options.get("task") or ("classification" if all(
        not _is_number(v) or float(v).is_integer() for v in values) else "regression")
    if task == "regression":
        for (line, _), v in zip(rows, values, strict=True):
            if not _is_number(v):
                raise DataError(f"'{v}' is not a number", file=path, line=line, column=label + 1,
                                expected="a numeric target for regression")
    y, names = _labels(values, task)
    tr, va = split_rows((x, y), float(options.get("val_fraction", 0.2)), seed)
    tr, va, _ = standardize(tr, va, 0)
    info = {"kind": "tabular", "features": x.shape[1], "source": path}
    if names is not None:
        info.update(num_classes=len(names), labels=names)
    return Data(tr, va, info)


def array_data(options: dict, seed: int) -> Data:
    """``.npz`` with arrays x and y (or the first two), or ``.npy`` features plus ``labels``."""
    import numpy as np

    path = _path(options)
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                kx = options.get("x_key", "x" if "x" in keys else keys[0])
                second = keys[1] if len(keys) > 1 else None
                ky = options.get("y_key", "y" if "y" in keys else second)
                x = z[kx]
                y = z[ky] if ky else None
        else:
            x = np.load(path, allow_pickle=False)
            y = np.load(_path(options, "labels"), allow_pickle=False) \
                if options.get("labels") else None
    except (ValueError, OSError, KeyError) as err:
        raise DataError(f"cannot read the arrays: {err}", file=path,
                        expected="a .npy/.npz file written by numpy.save/savez") from None
    if y is not None and len(y) != len(x):
        raise DataError(f"x has {len(x)} rows but y has {len(y)}", file=path,
                        expected="one label per row")
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    tensors: tuple = (xt,)
    info: dict = {"kind": "image" if xt.dim() == 4 else "tabular", "source": path}
    if xt.dim() == 4:
        info["image_shape"] = list(xt.shape[1:])
    if y is not None:
        if np.issubdtype(np.asarray(y).dtype, np.integer):
            yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
            info["num_classes"] = int(yt.max()) + 1
        else:
            yt = torch.as_tensor(np.asarray(y, dtype=np.float32))
            yt = yt.unsqueeze(1) if yt.dim() == 1 else yt
        tensors = (xt, yt)
    tr, va = split_rows(tensors, float(options.get("val_fraction", 0.2)), seed)
    return Data(tr, va, info)


def read_png(path: str) -> Tensor:
    """An 8-bit non-interlaced PNG (grey, grey+alpha, RGB, RGBA) -> [C, H, W] float in 0..1."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataError("not a PNG image", file=path, expected="PNG files in the class folders")
    pos, idat, hdr = 8, b"", None
    while pos + 8 <= len(data):
        length, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if tag == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    if hdr is None:
        raise DataError("the PNG has no header", file=path, expected="a valid PNG")
    w, h, depth, color, _, _, interlace = hdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise DataError(f"PNG with bit depth {depth}, colour type {color}, interlace {interlace}",
                        file=path, expected="an 8-bit, non-interlaced grey/RGB/RGBA PNG")
    raw = zlib.decompress(idat)
    stride = w * channels
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    img = torch.frombuffer(bytes(out), dtype=torch.uint8).reshape(h, w, channels).permute(2, 0, 1)
    img = img[:3] if channels == 4 else (img[:1] if channels == 2 else img)
    return img.float() / 255.0


def image_folder(options: dict, seed: int) -> Data:
    """One subfolder per class of PNG images, resized to ``size`` (default 32), in [-1, 1]."""
    root = _path(options)
    size = int(options.get("size", 32))
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise DataError("no class subfolders", file=root, expected="one subfolder per class")
    xs, ys = [], []
    channels = 3 if options.get("channels", 3) == 3 else 1
    for label, name in enumerate(classes):
        for fname in sorted(os.listdir(os.path.join(root, name))):
            if not fname.lower().endswith(".png"):
                continue
            img = read_png(os.path.join(root, name, fname))
            img = img.expand(3, -1, -1) if channels == 3 and img.shape[0] == 1 else img
            img = img.mean(0, keepdim=True) if channels == 1 and img.shape[0] == 3 else img
            img = torch.nn.functional.interpolate(img[None], size=(size, size), mode="bilinear",
                                                  align_corners=False)[0]
            xs.append(img * 2 - 1)
            ys.append(label)
    if not xs:
        raise DataError("no PNG images found", file=root, expected="PNG files in the class folders")
    tr, va = split_rows((torch.stack(xs), torch.tensor(ys)),
                        float(options.get("val_fraction", 0.2)), seed)
    return Data(tr, va, {"kind": "image", "num_classes": len(classes), "labels": classes,
                         "image_shape": [channels, size, size], "source": root})


def text_file(options: dict, seed: int) -> Data:
    path = _path(options)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text (byte {err.start})", file=path,
                        expected="a UTF-8 text file") from None
    return text_data(text, options)


def graph_csv(options: dict, seed: int) -> Data:
    """``edges``: CSV of 'source,target' node ids; ``path``: CSV of node id, features..., label."""
    epath = _path(options, "edges")
    npath = _path(options)
    header, rows = read_csv(npath)
    ids = {}
    for line, r in rows:
        key = r[0].strip()
        if key in ids:
            raise DataError(f"node '{key}' appears twice", file=npath, line=line, column=1,
                            expected="one row per node")
        ids[key] = len(ids)
    width = len(rows[0][1])
    x = _floats(npath, header, rows, list(range(1, width - 1)))
    y, names = _labels([r[-1].strip() for _, r in rows], "classification")
    _, erows = read_csv(epath)
    edges = []
    for line, r in erows:
        if len(r) < 2:
            raise DataError("an edge needs two node ids", file=epath, line=line,
                            expected="source,target")
        for col, key in enumerate(r[:2]):
            if key.strip() not in ids:
                raise DataError(f"unknown node '{key.strip()}'", file=epath, line=line,
                                column=col + 1, expected=f"a node id listed in {npath}")
        edges.append((ids[r[0].strip()], ids[r[1].strip()]))
    return node_split(y, x, undirected(edges), options, seed,
                      {"kind": "graph", "num_classes": len(names or []), "features": x.shape[1],
                       "labels": names, "source": npath})


FILES = {"csv": csv_data, "npz": array_data, "npy": array_data, "image-folder": image_folder,
         "text": text_file, "graph-csv": graph_csv}
