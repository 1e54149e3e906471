"""Broken user data files: every one is a DataError naming the file, where and what is wrong.

Issue 10 ("Nothing crashes, nothing is lost", user data): truncated PNGs, corrupt .npz, FIFOs,
/dev/zero, PNG headers claiming 60000x60000, NaN/inf cells, text outside the vocabulary, the
documented graph-CSV layout, ragged and non-numeric CSV, empty files, BOM and CRLF.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.data import DataError, load
from training.data import files as data_files

# -- helpers ------------------------------------------------------------------------------------


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def png_file(w: int, h: int, color: int, idat: bytes) -> bytes:
    """PNG signature, an 8-bit IHDR, one IDAT and IEND, with correct CRCs."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def png_bytes(w: int, h: int, channels: int = 3, seed: int = 0,
              claim: tuple | None = None) -> bytes:
    """A valid 8-bit PNG (filter 0 rows); ``claim`` writes another (w, h) in the header."""
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    g = torch.Generator().manual_seed(seed)
    pix = torch.randint(0, 256, (h, w * channels), generator=g, dtype=torch.uint8)
    raw = b"".join(b"\x00" + bytes(row.tolist()) for row in pix)
    cw, ch = claim or (w, h)
    return png_file(cw, ch, color, zlib.compress(raw))


def image_root(tmp_path: Path, classes=("a", "b"), n: int = 3, sizes=((6, 5),)) -> Path:
    root = tmp_path / "images"
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            w, h = sizes[i % len(sizes)]
            (root / c / f"{i}.png").write_bytes(png_bytes(w, h, seed=i))
    return root


def refused(name: str, options: dict, *words: str) -> str:
    """The DataError's text, checked to contain every word (case-insensitive)."""
    with pytest.raises(DataError) as err:
        load(name, options)
    text = str(err.value)
    for w in words:
        assert w.lower() in text.lower(), (w, text)
    return text


def good_csv(n: int = 20) -> str:
    return "a,b,label\n" + "".join(f"{i},{i * 0.5},{'xy'[i % 2]}\n" for i in range(n))


def text_sample(n: int = 400) -> str:
    return ("the quick brown fox jumps over the lazy dog.\n" * (n // 45 + 1))[:n]


# -- CSV ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,word", [("nan", "not a finite number"), ("inf", "finite"),
                                       ("-Infinity", "finite"), ("abc", "not a number"),
                                       ("", "empty cell")])
def test_csv_bad_cells_name_line_and_column(tmp_path, cell, word):
    f = tmp_path / "d.csv"
    rows = good_csv().splitlines()
    rows[5] = f"4,{cell},x"
    f.write_text("\n".join(rows) + "\n")
    refused("csv", {"path": str(f)}, str(f), "line 6", "column 2 ('b')", word, "expected")


def test_csv_nan_in_regression_target(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("a,t\n" + "".join(f"{i},{i + 0.5}\n" for i in range(9)) + "9,nan\n")
    refused("csv", {"path": str(f), "task": "regression"}, "line 11", "column 2 ('t')", "finite")


def test_csv_ragged_empty_header_only_one_row_one_class(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("a,b,label\n1,2,x\n3,4,y,5\n")
    refused("csv", {"path": str(f)}, str(f), "line 3", "4 fields", "expected 3")
    f.write_text("")
    refused("csv", {"path": str(f)}, str(f), "empty")
    f.write_text("\n\n  \n")
    refused("csv", {"path": str(f)}, "empty")
    f.write_text("a,b,label\n")
    refused("csv", {"path": str(f)}, "header but no data rows")
    f.write_text("a,b,label\n1,2,x\n")
    refused("csv", {"path": str(f)}, "1 of data rows", "at least 2")
    f.write_text("a,b,label\n1,2,x\n3,4,x\n5,6,x\n")
    refused("csv", {"path": str(f)}, "same label 'x'", "two classes")
    f.write_text("1\n2\n3\n")
    refused("csv", {"path": str(f)}, "one field")


def test_csv_malformed_first_row_is_reported_not_taken_for_a_header(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("1,oops,x\n" + "".join(f"{i},{i},{'xy'[i % 2]}\n" for i in range(10)))
    refused("csv", {"path": str(f)}, "line 1", "column 2", "'oops' is not a number")


def test_csv_bom_and_crlf_load(tmp_path):
    f = tmp_path / "d.csv"
    f.write_bytes(b"\xef\xbb\xbf" + good_csv().replace("\n", "\r\n").encode())
    data = load("csv", {"path": str(f)})
    assert data.info["features"] == 2 and data.info["labels"] == ["x", "y"]
    f.write_bytes(b"\xef\xbb\xbf" + good_csv().replace("\n", "\r").encode())
    assert load("csv", {"path": str(f), "label_column": "label"}).info["num_classes"] == 2


def test_csv_not_utf8_or_binary_names_line(tmp_path):
    f = tmp_path / "d.csv"
    f.write_bytes(good_csv().encode()[:30] + b"\xff\xfe" + b"\n1,2,x\n")
    refused("csv", {"path": str(f)}, "not UTF-8", "line 4")
    f.write_bytes(b"a,b,label\n1,2,x\n\x00\x00\x01,2,y\n")
    refused("csv", {"path": str(f)}, "NUL", "line 3", "binary")


def test_csv_bad_options_are_data_errors(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text(good_csv())
    refused("csv", {"path": str(f), "val_fraction": "lots"}, "val_fraction", "number")
    refused("csv", {"path": str(f), "val_fraction": float("nan")}, "val_fraction")
    refused("csv", {"path": str(f), "label_column": "nope"}, "no label column 'nope'")
    refused("csv", {"path": str(f), "task": "clustering"}, "task")


# -- paths: FIFOs, devices, folders -------------------------------------------------------------


def _answers_quickly(fn) -> BaseException | None:
    """Runs fn in a thread: a hang (reading a FIFO) fails the test instead of blocking it."""
    out: list = []

    def target():
        try:
            fn()
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            out.append(err)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "the loader hung"
    return out[0] if out else None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["csv", "npz", "npy", "text", "graph-csv"])
def test_fifo_is_refused_not_read(tmp_path, name):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    opts = {"path": str(fifo), "edges": str(fifo)}
    err = _answers_quickly(lambda: load(name, opts))
    assert isinstance(err, DataError) and str(fifo) in str(err) and "regular file" in str(err)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("name", ["csv", "npy", "text"])
def test_dev_zero_is_refused_without_reading(name):
    err = _answers_quickly(lambda: load(name, {"path": "/dev/zero"}))
    assert isinstance(err, DataError) and "/dev/zero" in str(err) and "not a regular" in str(err)


def test_folder_for_file_and_file_for_folder(tmp_path):
    refused("csv", {"path": str(tmp_path)}, str(tmp_path), "a folder", "data file")
    f = tmp_path / "x.png"
    f.write_bytes(png_bytes(4, 4))
    refused("image-folder", {"path": str(f)}, str(f), "not a folder")
    refused("csv", {"path": str(tmp_path / "missing.csv")}, "file not found")
    refused("csv", {}, "no file given")


def test_size_limit_checked_before_reading(tmp_path, monkeypatch):
    f = tmp_path / "big.txt"
    f.write_text(text_sample(5000))
    monkeypatch.setattr(data_files, "MAX_TEXT_BYTES", 1000)
    refused("text", {"path": str(f)}, str(f), "over the limit")


# -- .npz / .npy --------------------------------------------------------------------------------


def _npz(tmp_path: Path, **arrays) -> Path:
    f = tmp_path / "d.npz"
    np.savez(f, **arrays)
    return f


def test_npz_good_loads(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    f = _npz(tmp_path, x=x, y=np.arange(20) % 3)
    data = load("npz", {"path": str(f)})
    assert data.info["num_classes"] == 3 and data.size("train") + data.size("val") == 20


@pytest.mark.parametrize("cut", [0, 10, 100, -30, -1])
def test_truncated_npz(tmp_path, cut):
    x = np.ones((20, 3), np.float32)
    f = _npz(tmp_path, x=x, y=np.arange(20) % 2)
    data = f.read_bytes()
    f.write_bytes(data[:cut] if cut else b"")
    refused("npz", {"path": str(f)}, str(f))


def test_npz_garbage_and_empty_zip(tmp_path):
    f = tmp_path / "d.npz"
    f.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    refused("npz", {"path": str(f)}, str(f), "not a valid .npz")
    import zipfile

    with zipfile.ZipFile(f, "w") as z:
        z.writestr("readme.txt", "hi")
    refused("npz", {"path": str(f)}, "holds no arrays")


def test_npz_object_array_is_refused(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, x=np.array([{"a": 1}, None] * 5, dtype=object), y=np.arange(10))
    refused("npz", {"path": str(f)}, str(f), "array 'x'", "python objects", "refused")
    g = tmp_path / "d.npy"
    np.save(g, np.array([1, "a"], dtype=object), allow_pickle=True)
    refused("npy", {"path": str(g)}, str(g), "python objects")


def test_npz_text_and_complex_dtypes_refused(tmp_path):
    f = _npz(tmp_path, x=np.array([["a", "b"]] * 4), y=np.arange(4))
    refused("npz", {"path": str(f)}, "array 'x'", "dtype <U1")
    f = _npz(tmp_path, x=np.ones((4, 2), np.complex64), y=np.arange(4))
    refused("npz", {"path": str(f)}, "complex")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npz_non_finite_names_array_and_index(tmp_path, bad):
    x = np.ones((10, 3), np.float32)
    x[7, 2] = bad
    f = _npz(tmp_path, x=x, y=np.arange(10) % 2)
    refused("npz", {"path": str(f)}, str(f), "array 'x'", "index [7, 2]", "nan or infinite")
    y = np.ones(10)
    y[4] = bad
    f = _npz(tmp_path, x=np.ones((10, 3)), y=y)
    refused("npz", {"path": str(f)}, "array 'y'", "index [4]")


def test_npz_shapes_keys_and_labels(tmp_path):
    f = _npz(tmp_path, x=np.ones((10, 3)), y=np.arange(9))
    refused("npz", {"path": str(f)}, "10 rows but y has 9")
    f = _npz(tmp_path, x=np.ones((10, 3)), y=np.arange(10))
    refused("npz", {"path": str(f), "x_key": "feat"}, "no array 'feat'", "'x'")
    f = _npz(tmp_path, x=np.float32(3.0))
    refused("npz", {"path": str(f)}, "single number")
    f = _npz(tmp_path, x=np.ones((10, 3)), y=np.arange(10) - 3)
    refused("npz", {"path": str(f)}, "negative", "array 'y'")


def test_npy_header_claiming_more_than_the_file_holds(tmp_path):
    f = tmp_path / "d.npy"
    np.save(f, np.ones((10, 3), np.float32))
    data = f.read_bytes().replace(b"(10, 3)", b"(10**12, 3)".replace(b"10**12", b"999999999999"))
    # keep the header length: numpy pads it with spaces to a multiple of 64
    head_end = data.index(b"\n") + 1
    f.write_bytes(data[:head_end].ljust(128, b" ")[:head_end] + data[head_end:])
    refused("npy", {"path": str(f)}, str(f))


# -- images -------------------------------------------------------------------------------------


def test_image_folder_mixed_sizes_and_channels_load(tmp_path):
    root = image_root(tmp_path, sizes=((6, 5), (9, 3), (4, 4)))
    (root / "a" / "grey.png").write_bytes(png_bytes(5, 5, channels=1))
    (root / "b" / "rgba.png").write_bytes(png_bytes(5, 7, channels=4))
    data = load("image-folder", {"path": str(root), "size": 8})
    assert data.info["image_shape"] == [3, 8, 8] and data.info["num_classes"] == 2
    assert data.size("train") + data.size("val") == 8


@pytest.mark.parametrize("cut", [20, 40, -20, -12])
def test_truncated_png_names_file(tmp_path, cut):
    root = image_root(tmp_path)
    bad = root / "b" / "1.png"
    bad.write_bytes(bad.read_bytes()[:cut])
    refused("image-folder", {"path": str(root)}, str(bad), "truncated")


def test_png_with_short_image_data_says_truncated(tmp_path):
    """The 'Error -5 while decompressing data' case: a valid chunk stream around cut IDAT data."""
    root = image_root(tmp_path)
    bad = root / "a" / "0.png"
    raw = b"".join(b"\x00" + bytes(18) for _ in range(5))
    idat = zlib.compress(raw)[:-8]
    bad.write_bytes(png_file(6, 5, 2, idat))
    text = refused("image-folder", {"path": str(root)}, str(bad), "truncated")
    assert "Error -5" not in text.split("(")[0]


def test_png_corrupt_crc_and_not_png(tmp_path):
    root = image_root(tmp_path)
    bad = root / "a" / "2.png"
    data = bytearray(bad.read_bytes())
    data[40] ^= 0xFF
    bad.write_bytes(bytes(data))
    refused("image-folder", {"path": str(root)}, str(bad), "corrupt", "checksum")
    bad.write_bytes(b"GIF89a" + bytes(40))
    refused("image-folder", {"path": str(root)}, str(bad), "not a PNG")


def test_png_header_claiming_60000_squared_is_refused_before_decoding(tmp_path):
    root = image_root(tmp_path)
    bad = root / "a" / "1.png"
    bad.write_bytes(png_bytes(4, 4, claim=(60000, 60000)))
    refused("image-folder", {"path": str(root)}, str(bad), "60000x60000", "resize")


def test_png_zip_bomb_decompresses_only_what_the_header_says(tmp_path):
    root = image_root(tmp_path)
    bomb = root / "a" / "1.png"
    idat = zlib.compress(bytes(64 * 1024 * 1024), 9)  # 64 MB of zeros in ~64 KB
    bomb.write_bytes(png_file(4, 4, 0, idat))
    data = load("image-folder", {"path": str(root), "size": 4})  # a 4x4 black image, quickly
    assert data.size("train") + data.size("val") == 6


def test_image_folder_structure_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    refused("image-folder", {"path": str(empty)}, str(empty), "no class subfolders")
    one = image_root(tmp_path / "one", classes=("cat",))
    refused("image-folder", {"path": str(one)}, "one class folder ('cat')", "at least two")
    root = image_root(tmp_path / "two")
    (root / "c").mkdir()
    (root / "c" / "x.jpg").write_bytes(b"\xff\xd8")
    refused("image-folder", {"path": str(root)}, "class folder 'c' has no PNG", "1 other",
            "convert")
    refused("image-folder", {"path": str(root), "size": "big"}, "'size'")
    refused("image-folder", {"path": str(root), "size": 10 ** 9}, "'size'", "out of range")


# -- text ---------------------------------------------------------------------------------------


def test_text_good_with_bom_crlf_and_a_few_accents(tmp_path):
    f = tmp_path / "t.txt"
    f.write_bytes(b"\xef\xbb\xbf" + (text_sample(2000) + "caf\u00e9 ").replace("\n", "\r\n")
                  .encode())
    data = load("text", {"path": str(f), "seq_len": 16})
    assert data.info["vocab"] == 96 and data.train[0].max() < 96
    first = "".join(data.info["itos"][i] for i in data.train[0][0].tolist())
    assert first == text_sample(2000)[:17]  # no BOM, '\r\n' read as '\n'


def test_text_outside_vocabulary_is_refused_with_count(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("\u4f60\u597d\u4e16\u754c" * 500, encoding="utf-8")
    text = refused("text", {"path": str(f)}, str(f), "2,000 of 2,000 characters", "outside",
                   "vocabulary", "printable ASCII")
    assert "96" in text


def test_text_empty_binary_short(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("")
    refused("text", {"path": str(f)}, str(f), "empty")
    f.write_text("\n \n\t\n")
    refused("text", {"path": str(f)}, "whitespace")
    f.write_bytes(b"\x00" * 100 + b"abc")
    refused("text", {"path": str(f)}, "NUL", "binary")
    f.write_bytes(bytes(range(256)) * 4)
    refused("text", {"path": str(f)}, "not UTF-8", "line")
    f.write_text("hello world\n")
    refused("text", {"path": str(f)}, str(f), "too short")
    f.write_text(text_sample(500))
    refused("text", {"path": str(f), "seq_len": "x"}, "seq_len")


# -- graph CSVs ---------------------------------------------------------------------------------


def _graph(tmp_path: Path, nodes: str, edges: str) -> dict:
    n, e = tmp_path / "nodes.csv", tmp_path / "edges.csv"
    n.write_text(nodes)
    e.write_text(edges)
    return {"path": str(n), "edges": str(e)}


NODES = "id,f1,f2,label\nalice,1,0,red\nbob,0,1,blue\ncarol,1,1,red\ndave,0,0,blue\n"
EDGES = "source,target\nalice,bob\nbob,carol\ncarol,dave\n"


def test_documented_graph_csv_layout_loads(tmp_path):
    data = load("graph-csv", _graph(tmp_path, NODES, EDGES))
    x, edge_index, y, _ = data.train
    assert x.shape == (4, 2) and data.info["labels"] == ["blue", "red"]
    assert edge_index.shape == (2, 6)  # undirected: both directions
    assert {(0, 1), (1, 2), (2, 3)} <= set(map(tuple, edge_index.T.tolist()))
    assert y.tolist() == [1, 0, 1, 0]


def test_graph_csv_without_headers_and_numeric_ids(tmp_path):
    nodes = "0,1,0,a\n1,0,1,b\n2,1,1,a\n"
    data = load("graph-csv", _graph(tmp_path, nodes, "0,1\n1,2\n"))
    assert data.train[0].shape == (3, 2) and data.train[1].shape == (2, 4)


def test_graph_csv_bad_rows_name_line_and_column(tmp_path):
    opts = _graph(tmp_path, NODES, EDGES + "dave,erin\n")
    refused("graph-csv", opts, "edges.csv", "line 5", "column 2", "unknown node 'erin'")
    opts = _graph(tmp_path, NODES.replace("bob,0,1", "bob,0,x"), EDGES)
    refused("graph-csv", opts, "nodes.csv", "line 3", "column 3 ('f2')", "not a number")
    opts = _graph(tmp_path, NODES.replace("bob,0,1", "bob,0,nan"), EDGES)
    refused("graph-csv", opts, "line 3", "finite")
    opts = _graph(tmp_path, NODES + "alice,1,1,red\n", EDGES)
    refused("graph-csv", opts, "line 6", "column 1", "'alice' appears twice")
    opts = _graph(tmp_path, NODES, EDGES + "carol\n")
    refused("graph-csv", opts, "edges.csv", "line 5", "1 fields")
    opts = _graph(tmp_path, "id,label\na,x\nb,y\n", EDGES)
    refused("graph-csv", opts, "nodes.csv", "at least one feature")
    opts = _graph(tmp_path, NODES, "")
    refused("graph-csv", opts, "edges.csv", "empty")


# -- nothing else escapes: mutated files --------------------------------------------------------

COUNTS = {"files": 0, "tracebacks": 0}


def _valid_files(tmp: Path) -> dict[str, tuple[str, bytes, dict]]:
    x = np.random.default_rng(1).normal(size=(12, 3)).astype(np.float32)
    npz = tmp / "seed.npz"
    np.savez(npz, x=x, y=np.arange(12) % 2)
    npy = tmp / "seed.npy"
    np.save(npy, x)
    return {"csv": ("d.csv", good_csv(12).encode(), {}),
            "npz": ("d.npz", npz.read_bytes(), {}),
            "npy": ("d.npy", npy.read_bytes(), {}),
            "text": ("t.txt", text_sample(600).encode(), {"seq_len": 8}),
            "graph-csv": ("nodes.csv", NODES.encode(), {}),
            "png": ("0.png", png_bytes(5, 4), {})}


_mutation = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                        min_size=1, max_size=8)),
    st.tuples(st.just("insert"), st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=16))),
)


def _mutate(data: bytes, mutation) -> bytes:
    kind, arg = mutation
    if kind == "truncate":
        return data[:int(len(data) * arg)]
    if kind == "flip":
        out = bytearray(data)
        for pos, value in arg:
            if out:
                out[min(len(out) - 1, int(len(out) * pos))] = value
        return bytes(out)
    pos, blob = arg
    cut = int(len(data) * pos)
    return data[:cut] + blob + data[cut:]


#: CI runs a couple of hundred; LAYERLOOM_DATA_FUZZ=5000 for a nightly-size run.
FUZZ_EXAMPLES = int(os.environ.get("LAYERLOOM_DATA_FUZZ", "200"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["csv", "npz", "npy", "text", "graph-csv", "png"]), mutation=_mutation)
def test_mutated_files_only_ever_raise_data_error(tmp_path_factory, kind, mutation):
    tmp = tmp_path_factory.mktemp("mut")
    name, data, extra = _valid_files(tmp)[kind]
    target = tmp / name
    target.write_bytes(_mutate(data, mutation))
    if kind == "png":
        root = image_root(tmp / "img", n=2)
        target.replace(root / "a" / "9.png")
        opts, dataset = {"path": str(root), "size": 4}, "image-folder"
    elif kind == "graph-csv":
        (tmp / "edges.csv").write_text(EDGES)
        opts, dataset = {"path": str(target), "edges": str(tmp / "edges.csv")}, kind
    else:
        opts, dataset = {"path": str(target), **extra}, kind
    COUNTS["files"] += 1
    try:
        load(dataset, opts)
    except DataError as err:
        assert str(target) in str(err) or str(tmp) in str(err), str(err)
    except Exception:
        COUNTS["tracebacks"] += 1
        raise


def test_report_mutation_counts():
    """Prints the figures for the issue's closing note (run with -s)."""
    sys.stdout.write(f"\nmutated data files tried: {COUNTS['files']}, tracebacks: "
                     f"{COUNTS['tracebacks']}\n")
    assert COUNTS["tracebacks"] == 0
