"""The user's own data: CSV, .npz/.npy, an image folder (PNG), a text file, a graph as two CSVs.

Copied into ``train.py``; needs torch (and numpy for .npz/.npy). A malformed file raises DataError
naming the file, the line and/or column (or the array and index), what is wrong and what was
expected there. Nothing here trusts a file: every path is checked to be a regular file (or a
folder) with ``os.stat`` before it is opened, so a FIFO or ``/dev/zero`` is refused instead of
hanging or filling memory; sizes are checked before reading (file sizes, array headers, PNG
headers); ``.npy``/``.npz`` are read with ``allow_pickle=False``.

Layouts:

* ``csv``: one row per sample, numeric feature columns plus one label column (the last unless
  ``label_column`` names another); an optional header row.
* ``npz``: arrays ``x`` and ``y`` (or the first two); ``npy``: features, plus ``labels`` (.npy).
* ``image-folder``: ``root/<class>/*.png``, at least two class folders.
* ``text``: a UTF-8 text file (printable ASCII characters and newlines).
* ``graph-csv``: ``path`` is the nodes CSV, ``node id, feature..., label`` per row; ``edges`` is
  the edges CSV, ``source, target`` node ids per row. Both may start with a header row
  (``id,f1,f2,label`` and ``source,target``); node ids are any strings (``alice``, ``n7``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
import struct
import zipfile
import zlib

import torch
from torch import Tensor

# layerloom: local imports (train.py defines these names above)
from training.data.builtin import CHARS, node_split, text_data, undirected
from training.data.common import Data, DataError, option_number, split_rows, standardize

# layerloom: end local imports

MiB = 1 << 20
#: Size limits, checked before a byte is read: user data sits in memory whole.
MAX_CSV_BYTES = 512 * MiB
MAX_TEXT_BYTES = 256 * MiB
MAX_ARRAY_BYTES = 4 * 1024 * MiB
MAX_PNG_BYTES = 64 * MiB
#: Per image, from the PNG header before decoding (the decoder is pure Python).
MAX_IMAGE_PIXELS = 4096 * 4096
#: All images of a folder after resizing, as float32 bytes.
MAX_FOLDER_BYTES = 4 * 1024 * MiB
#: More characters outside the vocabulary than this share and the text is refused.
MAX_OUTSIDE_VOCAB = 0.2


def _size_text(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n} bytes"


def _path(options: dict, key: str = "path", folder: bool = False) -> str:
    """The option's path, which must exist and be a regular file (or a folder if ``folder``):
    checked with ``os.stat``, which never blocks, so a FIFO or a device is refused unopened."""
    path = options.get(key)
    if not path or not isinstance(path, (str, os.PathLike)):
        raise DataError(f"no file given: set dataset_options['{key}']",
                        expected="the path of your data " + ("folder" if folder else "file"))
    path = os.path.expanduser(os.fspath(path))
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as err:
        missing = isinstance(err, FileNotFoundError)
        raise DataError("file not found" if missing else f"cannot read it: {err}", file=path,
                        expected="an existing " + ("folder" if folder else "file")) from None
    if folder and not stat.S_ISDIR(mode):
        raise DataError("this is a file, not a folder", file=path,
                        expected="a folder with one subfolder of PNG images per class")
    if not folder and not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe, device or socket)"
        raise DataError(f"this is {what}", file=path, expected="the path of a data file")
    return path


def _open_regular(path: str, limit: int):
    """A binary file object, refused unless it is a regular file of at most ``limit`` bytes.

    Opened non-blocking and checked again on the descriptor, so a path swapped for a FIFO after
    ``_path`` still cannot hang the run."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as err:
        raise DataError(f"cannot open it: {err.strerror or err}", file=path,
                        expected="a readable file") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise DataError("this is not a regular file", file=path, expected="the path of a data file")
    if info.st_size > limit:
        os.close(fd)
        raise DataError(f"the file is {_size_text(info.st_size)}, over the limit of "
                        f"{_size_text(limit)}", file=path,
                        expected="a smaller file (data is held in memory whole)")
    return os.fdopen(fd, "rb")


def _read_bytes(path: str, limit: int) -> bytes:
    with _open_regular(path, limit) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # grew while being read
        raise DataError(f"the file is over the limit of {_size_text(limit)}", file=path,
                        expected="a smaller file")
    return data


def _read_text(path: str, limit: int) -> str:
    """UTF-8 (a byte-order mark is dropped), line endings made '\\n'; an undecodable byte is a
    DataError naming its line."""
    data = _read_bytes(path, limit)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text (byte {err.start} is 0x{data[err.start]:02x})",
                        file=path, line=line,
                        expected="a UTF-8 text file (save it as UTF-8 in your editor)") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


# -- CSV ----------------------------------------------------------------------------------------


def _default_data_row(fields: list[str]) -> bool:
    return all(_is_number(c) for c in fields[:-1])


def read_csv(path: str, is_data_row=None) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """(header or None, [(line number, fields)]); blank lines skipped; ragged rows refused.

    The first row is a header when none of its fields is a number, it is not a data row and the
    second one is; by default a data row is one whose fields are numbers but for the last (the
    label). A malformed first data row is therefore reported, not taken for a header."""
    text = _read_text(path, MAX_CSV_BYTES)
    if "\x00" in text:
        raise DataError("the file contains NUL bytes: it is binary, not CSV", file=path,
                        line=text[:text.index("\x00")].count("\n") + 1,
                        expected="a comma-separated text file")
    reader = csv.reader(io.StringIO(text))
    rows = []
    try:
        for r in reader:
            if any(c.strip() for c in r):
                rows.append((reader.line_num, r))
    except csv.Error as err:
        raise DataError(f"cannot parse as CSV: {err}", file=path, line=reader.line_num + 1,
                        expected="comma-separated fields, quotes closed on the same row") from None
    if not rows:
        raise DataError("the file is empty", file=path, expected="a header line and data rows")
    is_data_row = is_data_row or _default_data_row
    header = None
    first = rows[0][1]
    if not any(_is_number(c) for c in first) and not is_data_row(first) and \
            (len(rows) == 1 or is_data_row(rows[1][1])):
        header = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
        if not rows:
            raise DataError("the file has a header but no data rows", file=path,
                            expected="data rows below the header")
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
    if (isinstance(column, int) and not isinstance(column, bool)) or \
            (isinstance(column, str) and column.lstrip("-").isdigit()):
        i = int(column)
        if -width <= i < width:
            return i % width
    elif header and column in header:
        return header.index(column)
    raise DataError(f"there is no label column '{column}'", file=path,
                    expected=f"one of {header}" if header else f"a column number below {width}")


def _column_name(header: list[str] | None, c: int) -> str | int:
    return f"{c + 1} ('{header[c]}')" if header else c + 1


def _cell(path: str, header: list[str] | None, line: int, r: list[str], c: int) -> float:
    """One numeric cell; text, NaN and infinity are DataErrors naming line and column."""
    text = r[c].strip()
    try:
        value = float(text)
    except ValueError:
        what = "an empty cell" if not text else f"'{text[:40]}' is not a number"
        raise DataError(what, file=path, line=line, column=_column_name(header, c),
                        expected="a number (features must be numeric; fill in missing "
                                 "values)") from None
    if not math.isfinite(value):
        raise DataError(f"'{text}' is not a finite number", file=path, line=line,
                        column=_column_name(header, c),
                        expected="a finite number: replace missing (NaN) or infinite values")
    return value


def _floats(path: str, header: list[str] | None, rows: list, cols: list[int]) -> Tensor:
    out = [[_cell(path, header, line, r, c) for c in cols] for line, r in rows]
    return torch.tensor(out, dtype=torch.float32).reshape(len(rows), len(cols))


def _labels(values: list[str], task: str) -> tuple[Tensor, list[str] | None]:
    if task == "regression":
        return torch.tensor([float(v) for v in values]).unsqueeze(1), None
    names = sorted(set(values), key=lambda v: (not _is_number(v), float(v) if _is_number(v) else 0,
                                               v))
    table = {v: i for i, v in enumerate(names)}
    return torch.tensor([table[v] for v in values], dtype=torch.long), names


def _need_rows(path: str, n: int, what: str = "data rows") -> None:
    if n < 2:
        raise DataError(f"the file has {n} of {what}", file=path,
                        expected=f"at least 2 {what} (one to train on, one to validate)")


def csv_data(options: dict, seed: int) -> Data:
    """Feature columns plus one label column (the last unless ``label_column`` names another)."""
    path = _path(options)
    label_option = options.get("label_column")
    header, rows = read_csv(path, None if label_option is None else (
        lambda r: sum(not _is_number(c) for c in r) <= 1))
    _need_rows(path, len(rows))
    width = len(rows[0][1])
    if width < 2:
        raise DataError("each row has one field", file=path, line=rows[0][0],
                        expected="feature columns and a label column, separated by commas")
    label = _column_index(header, width, label_option, path)
    x = _floats(path, header, rows, [c for c in range(width) if c != label])
    values = [r[label].strip() for _, r in rows]
    task = options.get("task") or ("classification" if all(
        not _is_number(v) or float(v).is_integer() for v in values) else "regression")
    if task not in ("classification", "regression"):
        raise DataError(f"dataset option 'task' is {task!r}",
                        expected="'classification' or 'regression'")
    if task == "regression":
        for line, r in rows:
            _cell(path, header, line, r, label)
    for (line, _), v in zip(rows, values, strict=True):
        if not v:
            raise DataError("the label is empty", file=path, line=line,
                            column=_column_name(header, label), expected="a label on every row")
    y, names = _labels(values, task)
    if names is not None and len(names) < 2:
        raise DataError(f"every row has the same label '{names[0]}'", file=path,
                        column=_column_name(header, label),
                        expected="at least two classes, or task 'regression', or another "
                                 "label_column")
    tr, va = split_rows((x, y), option_number(options, "val_fraction", 0.2, 0.0, 0.95), seed)
    tr, va, _ = standardize(tr, va, 0)
    info = {"kind": "tabular", "features": x.shape[1], "source": path}
    if names is not None:
        info.update(num_classes=len(names), labels=names)
    return Data(tr, va, info)


# -- arrays -------------------------------------------------------------------------------------


def _npy_header(f, path: str, entry: str, available: int):
    """(shape, dtype) of a .npy stream, checked before its data is read: not pickled objects,
    numeric, and no bigger than the bytes that are really there."""
    from numpy.lib import format as npformat

    where = f"{path} (array '{entry}')" if entry else path
    try:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as err:  # noqa: BLE001 - numpy parses the header with tokenize and
        # ast.literal_eval (safe, no code runs) and lets their many error types through
        raise DataError(f"not a valid .npy array header ({type(err).__name__}: {err})"[:300],
                        file=where,
                        expected="arrays written by numpy.save / numpy.savez") from None
    if dtype.hasobject:
        raise DataError(f"the array holds Python objects (dtype {dtype}); they are refused "
                        "because loading them could run code", file=where,
                        expected="a numeric array (convert with arr.astype('float32'))")
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise DataError(f"the array has dtype {dtype}", file=where,
                        expected="numbers (bool, int or float), not text, complex or records")
    count = 1
    for d in shape:
        count *= int(d)
    if count * dtype.itemsize > available:
        need = _size_text(count * dtype.itemsize)
        raise DataError(f"the header says shape {tuple(shape)} ({need})"
                        f" but only {_size_text(available)} are there: the file is truncated or "
                        "corrupt", file=where, expected="a complete .npy/.npz file")
    return shape, dtype


def _read_npy(f, path: str, entry: str, available: int):
    from numpy.lib import format as npformat

    _npy_header(f, path, entry, available)
    f.seek(0)
    where = f"{path} (array '{entry}')" if entry else path
    try:
        return npformat.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"cannot read the array: {err}", file=where,
                        expected="a complete .npy/.npz file") from None


def _npz_arrays(path: str) -> dict:
    """name -> array of every member, each checked (sizes from the zip directory and the
    array header) before it is decompressed."""
    with _open_regular(path, MAX_ARRAY_BYTES) as raw:
        try:
            zf = zipfile.ZipFile(raw)
        except Exception as err:  # noqa: BLE001 - zipfile's parser leaks many error types
            # (NotImplementedError, struct.error, ...) for a damaged directory; it runs no code
            raise DataError(f"not a valid .npz (zip) file: {err}", file=path,
                            expected="a file written by numpy.savez / savez_compressed") from None
        with zf:
            members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
            if not members:
                raise DataError("the .npz holds no arrays", file=path,
                                expected="arrays saved with numpy.savez(path, x=..., y=...)")
            total = sum(i.file_size for i in members)
            if total > MAX_ARRAY_BYTES:
                raise DataError(f"the arrays unpack to {_size_text(total)}, over the limit of "
                                f"{_size_text(MAX_ARRAY_BYTES)}", file=path,
                                expected="smaller arrays")
            out = {}
            for info in members:
                name = info.filename[:-4]
                try:
                    with zf.open(info) as member:
                        data = member.read(info.file_size + 1)
                except Exception as err:  # noqa: BLE001 - as above: bad CRC, zlib, encryption
                    raise DataError(f"cannot unpack the array: {err}",
                                    file=f"{path} (array '{name}')",
                                    expected="an intact, unencrypted .npz file") from None
                if len(data) != info.file_size:
                    raise DataError("the array's size does not match the zip directory: the "
                                    "file is corrupt", file=f"{path} (array '{name}')",
                                    expected="an intact .npz file")
                out[name] = _read_npy(io.BytesIO(data), path, name, len(data))
            return out


def _check_finite(arr, path: str, name: str) -> None:
    import numpy as np

    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        bad = int((~np.isfinite(arr)).sum())
        raise DataError(f"{bad} value(s) are NaN or infinite, the first {arr[index]} at index "
                        f"{list(index)}", file=f"{path} (array '{name}')",
                        expected="finite numbers: replace missing or infinite values")


def array_data(options: dict, seed: int) -> Data:
    """``.npz`` with arrays x and y (or the first two), or ``.npy`` features plus ``labels``."""
    import numpy as np

    path = _path(options)
    if path.endswith(".npz"):
        arrays = _npz_arrays(path)
        keys = list(arrays)
        kx = options.get("x_key", "x" if "x" in keys else keys[0])
        second = [k for k in keys if k != kx][:1]
        ky = options.get("y_key", "y" if "y" in keys else (second[0] if second else None))
        for key, what in ((kx, "x_key"), (ky, "y_key")):
            if key is not None and key not in arrays:
                raise DataError(f"there is no array '{key}' (dataset option {what})", file=path,
                                expected="one of " + ", ".join(repr(k) for k in keys))
        x, y, ypath = arrays[kx], (arrays[ky] if ky else None), path
    else:
        kx, ky = "x", "labels"
        with _open_regular(path, MAX_ARRAY_BYTES) as f:
            x = _read_npy(f, path, "", os.fstat(f.fileno()).st_size)
        y, ypath = None, path
        if options.get("labels"):
            ypath = _path(options, "labels")
            with _open_regular(ypath, MAX_ARRAY_BYTES) as f:
                y = _read_npy(f, ypath, "", os.fstat(f.fileno()).st_size)
    xname = kx if path.endswith(".npz") else os.path.basename(path)
    if x.ndim == 0:
        raise DataError("x is a single number", file=f"{path} (array '{xname}')",
                        expected="an array with one row per sample")
    _need_rows(f"{path} (array '{xname}')", len(x), "rows")
    _check_finite(x, path, xname)
    if y is not None:
        if y.ndim == 0:
            raise DataError("the labels are a single number", file=f"{ypath} (array '{ky}')",
                            expected="one label per row")
        if len(y) != len(x):
            raise DataError(f"x has {len(x)} rows but y has {len(y)}", file=path,
                            expected="one label per row")
        _check_finite(y, ypath, ky)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    tensors: tuple = (xt,)
    info: dict = {"kind": "image" if xt.dim() == 4 else "tabular", "source": path}
    if xt.dim() == 4:
        info["image_shape"] = list(xt.shape[1:])
    if y is not None:
        if np.issubdtype(y.dtype, np.integer):
            if y.min() < 0:
                index = [int(i) for i in np.argwhere(y < 0)[0]]
                raise DataError(f"label {y.min()} at index {index} is negative",
                                file=f"{ypath} (array '{ky}')",
                                expected="class numbers 0, 1, 2, ...")
            yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
            info["num_classes"] = int(yt.max()) + 1
        else:
            yt = torch.as_tensor(np.asarray(y, dtype=np.float32))
            yt = yt.unsqueeze(1) if yt.dim() == 1 else yt
        tensors = (xt, yt)
    tr, va = split_rows(tensors, option_number(options, "val_fraction", 0.2, 0.0, 0.95), seed)
    return Data(tr, va, info)


# -- images -------------------------------------------------------------------------------------


def _png_chunks(data: bytes, path: str) -> tuple[tuple, bytes]:
    """(IHDR fields, IDAT bytes), every chunk's length and CRC checked."""
    pos, idat, hdr, ended = 8, [], None, False
    while pos < len(data):
        if pos + 8 > len(data):
            raise DataError(f"the PNG is truncated (cut inside a chunk header at byte {pos})",
                            file=path, expected="a complete PNG file (save it again)")
        length, tag = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise DataError(f"the PNG is truncated (chunk {tag!r} at byte {pos} needs "
                            f"{length} bytes)", file=path, expected="a complete PNG file")
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(tag + body) != crc:
            raise DataError(f"the PNG is corrupt (checksum of chunk {tag!r} at byte {pos} is "
                            "wrong)", file=path, expected="an intact PNG file")
        if tag == b"IHDR":
            if length != 13:
                raise DataError("the PNG header is corrupt", file=path, expected="a valid PNG")
            hdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            ended = True
            break
        pos = end
    if hdr is None:
        raise DataError("the PNG has no header", file=path, expected="a valid PNG")
    if not ended:
        raise DataError("the PNG is truncated (no end chunk)", file=path,
                        expected="a complete PNG file (save it again)")
    return hdr, b"".join(idat)


def _png_header(data: bytes, path: str) -> tuple[int, int, int, bytes]:
    """(width, height, channels, IDAT bytes); size and format checked before decoding."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise DataError("not a PNG image", file=path, expected="PNG files in the class folders")
    (w, h, depth, color, _, _, interlace), idat = _png_chunks(data, path)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise DataError(f"PNG with bit depth {depth}, colour type {color}, interlace {interlace}",
                        file=path, expected="an 8-bit, non-interlaced grey/RGB/RGBA PNG")
    if w == 0 or h == 0 or w * h > MAX_IMAGE_PIXELS:
        raise DataError(f"the PNG header says {w}x{h} pixels", file=path,
                        expected=f"an image of 1 to {MAX_IMAGE_PIXELS:,} pixels (resize it)")
    return w, h, channels, idat


def _inflate(idat: bytes, size: int, path: str) -> bytes:
    """Exactly ``size`` bytes of image data: more is never decompressed (a zip bomb costs
    nothing), fewer means the file is truncated."""
    d = zlib.decompressobj()
    try:
        raw = d.decompress(idat, size)
    except zlib.error as err:
        raise DataError(f"the PNG's image data is corrupt or truncated ({err})", file=path,
                        expected="an intact PNG file (save it again)") from None
    if len(raw) < size:
        raise DataError(f"the PNG is truncated: {len(raw)} of {size} bytes of image data",
                        file=path, expected="a complete PNG file (save it again)")
    return raw


def read_png(path: str) -> Tensor:
    """An 8-bit non-interlaced PNG (grey, grey+alpha, RGB, RGBA) -> [C, H, W] float in 0..1."""
    data = _read_bytes(path, MAX_PNG_BYTES)
    w, h, channels, idat = _png_header(data, path)
    stride = w * channels
    raw = _inflate(idat, h * (stride + 1), path)
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        if ftype > 4:
            raise DataError(f"the PNG is corrupt (filter type {ftype} on row {y})", file=path,
                            expected="an intact PNG file")
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
    img = torch.frombuffer(out, dtype=torch.uint8).reshape(h, w, channels).permute(2, 0, 1)
    img = img[:3] if channels == 4 else (img[:1] if channels == 2 else img)
    return img.float() / 255.0


def _class_images(root: str, classes: list[str]) -> list[tuple[int, str]]:
    """(label, path) of every PNG; a class folder without one is a DataError."""
    files = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        found = [os.path.join(folder, f) for f in sorted(os.listdir(folder))
                 if f.lower().endswith(".png") and os.path.isfile(os.path.join(folder, f))]
        if not found:
            others = len(os.listdir(folder))
            raise DataError(f"class folder '{name}' has no PNG images"
                            + (f" ({others} other files)" if others else ""), file=folder,
                            expected="PNG files (convert JPEG and others to PNG), or remove "
                                     "the folder")
        files += [(label, f) for f in found]
    return files


def image_folder(options: dict, seed: int) -> Data:
    """One subfolder per class of PNG images, resized to ``size`` (default 32), in [-1, 1].

    Images of any size are resized; grey, RGB and RGBA mix freely (``channels`` 3 or 1)."""
    root = _path(options, folder=True)
    size = int(option_number(options, "size", 32, 1, 1024, integer=True))
    try:
        classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                         and not d.startswith("."))
    except OSError as err:
        raise DataError(f"cannot list the folder: {err.strerror or err}", file=root,
                        expected="a readable folder") from None
    if len(classes) < 2:
        pngs = [f for f in os.listdir(root) if f.lower().endswith(".png")]
        found = f"one class folder ('{classes[0]}')" if classes else "no class subfolders"
        raise DataError(found + (f" and {len(pngs)} PNG files at the top" if pngs else ""),
                        file=root, expected="one subfolder per class, at least two, each with "
                                            "its PNG images (root/cat/*.png, root/dog/*.png)")
    channels = 3 if options.get("channels", 3) in (3, "3") else 1
    files = _class_images(root, classes)
    need = len(files) * channels * size * size * 4
    if need > MAX_FOLDER_BYTES:
        raise DataError(f"{len(files)} images at {size}x{size} need {_size_text(need)} of memory",
                        file=root, expected=f"at most {_size_text(MAX_FOLDER_BYTES)}: fewer "
                                            "images or a smaller 'size'")
    xs, ys = [], []
    for label, fpath in files:
        img = read_png(fpath)
        img = img.expand(3, -1, -1) if channels == 3 and img.shape[0] == 1 else img
        img = img.mean(0, keepdim=True) if channels == 1 and img.shape[0] == 3 else img
        img = torch.nn.functional.interpolate(img[None], size=(size, size), mode="bilinear",
                                              align_corners=False)[0]
        xs.append(img * 2 - 1)
        ys.append(label)
    tr, va = split_rows((torch.stack(xs), torch.tensor(ys)),
                        option_number(options, "val_fraction", 0.2, 0.0, 0.95), seed)
    return Data(tr, va, {"kind": "image", "num_classes": len(classes), "labels": classes,
                         "image_shape": [channels, size, size], "source": root})


# -- text ---------------------------------------------------------------------------------------


def _check_text(text: str, path: str) -> None:
    """Empty, binary, or mostly outside the character vocabulary: refused, said how."""
    if not text.strip():
        raise DataError("the text file is empty" if not text else "the text file is only "
                        "whitespace", file=path, expected="some text to learn from")
    if "\x00" in text:
        raise DataError("the file contains NUL bytes: it is binary, not text", file=path,
                        line=text[:text.index("\x00")].count("\n") + 1,
                        expected="a UTF-8 text file")
    vocab = set(CHARS) | {"\t"}
    outside = [c for c in text if c not in vocab]
    if len(outside) > MAX_OUTSIDE_VOCAB * len(text):
        first = text.index(outside[0])
        examples = "".join(sorted(set(outside))[:10])
        raise DataError(f"{len(outside):,} of {len(text):,} characters are outside the "
                        f"vocabulary (for example {examples!r}; the first on line "
                        f"{text[:first].count(chr(10)) + 1})", file=path,
                        expected=f"text in the {len(CHARS)}-character vocabulary: printable "
                                 "ASCII (space to '~') and newline; other characters are read "
                                 "as spaces")


def text_file(options: dict, seed: int) -> Data:
    """A UTF-8 text file as character windows (the fixed printable-ASCII vocabulary, so the
    models the templates build fit any file)."""
    path = _path(options)
    text = _read_text(path, MAX_TEXT_BYTES)
    _check_text(text, path)
    try:
        return text_data(text, options)
    except DataError as err:
        if err.file:
            raise
        raise DataError(err.message, file=path, expected=err.expected) from None


# -- graphs -------------------------------------------------------------------------------------


def _node_row(fields: list[str]) -> bool:
    return len(fields) >= 3 and all(_is_number(c) for c in fields[1:-1])


def _graph_nodes(npath: str) -> tuple[dict, Tensor, Tensor, list[str]]:
    header, rows = read_csv(npath, _node_row)
    width = len(rows[0][1])
    if width < 3:
        raise DataError(f"rows have {width} fields", file=npath, line=rows[0][0],
                        expected="node id, at least one feature, label (id,f1,label)")
    _need_rows(npath, len(rows), "nodes")
    ids: dict[str, int] = {}
    for line, r in rows:
        key = r[0].strip()
        if not key:
            raise DataError("the node id is empty", file=npath, line=line, column=1,
                            expected="an id on every row")
        if key in ids:
            raise DataError(f"node '{key}' appears twice", file=npath, line=line, column=1,
                            expected="one row per node")
        ids[key] = len(ids)
    x = _floats(npath, header, rows, list(range(1, width - 1)))
    labels = [r[-1].strip() for _, r in rows]
    for (line, _), v in zip(rows, labels, strict=True):
        if not v:
            raise DataError("the label is empty", file=npath, line=line, column=width,
                            expected="a label on every node")
    y, names = _labels(labels, "classification")
    return ids, x, y, names or []


def graph_csv(options: dict, seed: int) -> Data:
    """``edges``: CSV of 'source,target' node ids; ``path``: CSV of node id, features..., label.

    Either may have a header row; ids are strings, mapped to 0..V-1 in the nodes file's order."""
    npath = _path(options)
    epath = _path(options, "edges")
    ids, x, y, names = _graph_nodes(npath)
    _, erows = read_csv(epath, lambda r: len(r) >= 2 and all(k.strip() in ids for k in r[:2]))
    edges = []
    for line, r in erows:
        if len(r) < 2:
            raise DataError("an edge needs two node ids", file=epath, line=line,
                            expected="source,target")
        for col, key in enumerate(r[:2]):
            if key.strip() not in ids:
                raise DataError(f"unknown node '{key.strip()[:60]}'", file=epath, line=line,
                                column=col + 1, expected=f"a node id listed in {npath}")
        edges.append((ids[r[0].strip()], ids[r[1].strip()]))
    return node_split(y, x, undirected(edges), options, seed,
                      {"kind": "graph", "num_classes": len(names), "features": x.shape[1],
                       "labels": names, "source": npath})


FILES = {"csv": csv_data, "npz": array_data, "npy": array_data, "image-folder": image_folder,
         "text": text_file, "graph-csv": graph_csv}
