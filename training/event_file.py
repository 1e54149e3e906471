"""TensorBoard's event-file format, written by hand: a TFRecord file of ``Event`` protobufs.

Why not tensorboardX's ``SummaryWriter`` on the hot path: its ``add_scalar`` builds protobuf
objects in Python and checks every record with a pure-Python CRC, ~140 us a scalar on the 2-core
VM; a train record carries a loss per step, so at a step per 2 ms that was ~10% of the run, and
more through the GIL (measured with ``benchmarks/bench_runner.py``). The few message shapes a run
needs (a scalar, a text, the restart marker a resumed segment writes) are encoded here in a few
microseconds; anything else (the HParams summaries at the end of a run) is a ``Summary`` the
caller serialised (:func:`event`'s ``summary_bytes``).

Format (TensorBoard's reader checks it): each record is ``uint64 length``, ``uint32
masked_crc32c(length)``, the bytes, ``uint32 masked_crc32c(bytes)``, all little-endian.
"""

from __future__ import annotations

import math
import socket
import struct
import time
from itertools import pairwise
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

_F32_MAX = 3.4028234663852886e38


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def _crc_run(data: bytes, crc: int = 0xFFFFFFFF) -> int:
    """The CRC-32C register after ``data`` (not finalised), from ``crc``: a record whose bytes
    start with a constant prefix starts from the register after that prefix, computed once."""
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def _crc32c_py(data: bytes) -> int:
    """CRC-32C (Castagnoli), table-driven."""
    return _crc_run(data) ^ 0xFFFFFFFF


def _native_crc() -> Callable[[bytes], int] | None:
    """A compiled CRC-32C when one is installed (optional: neither is a dependency)."""
    try:
        from google_crc32c import value  # type: ignore[import-not-found]

        return value
    except ImportError:
        pass
    try:
        from crc32c import crc32c  # type: ignore[import-not-found]

        return crc32c
    except ImportError:
        return None


crc32c: Callable[[bytes], int] = _native_crc() or _crc32c_py


def _mask(c: int) -> int:
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    return _mask(crc32c(data))


_HEADERS: dict[int, bytes] = {}


def _header(n: int) -> bytes:
    """The length field and its checksum, by length (records of a tag have one or two)."""
    head = _HEADERS.get(n)
    if head is None:
        length = struct.pack("<Q", n)
        head = _HEADERS[n] = length + struct.pack("<I", masked_crc(length))
    return head


def record(data: bytes) -> bytes:
    """One TFRecord: the framing and both checksums around ``data``."""
    return _header(len(data)) + data + struct.pack("<I", masked_crc(data))


# -- protobuf, the few fields used -------------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or a nested message)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _f32(value: float) -> bytes:
    if math.isnan(value):
        return struct.pack("<f", value)
    return struct.pack("<f", max(-_F32_MAX, min(_F32_MAX, value)))


def scalar_value(tag: str, value: float) -> bytes:
    """A ``Summary.Value`` with ``simple_value`` (TensorBoard's scalars)."""
    return _field(1, tag.encode()) + b"\x15" + _f32(value)


def text_value(tag: str, text: str) -> bytes:
    """A ``Summary.Value`` the text plugin shows: a string tensor of shape [1], as tensorboardX's
    ``add_text`` writes it (tag ``<tag>/text_summary``)."""
    metadata = _field(1, _field(1, b"text"))  # SummaryMetadata.plugin_data.plugin_name
    tensor = b"\x08\x07" + _field(2, _field(2, b"\x08\x01")) + _field(8, text.encode())
    return _field(1, f"{tag}/text_summary".encode()) + _field(9, metadata) + _field(8, tensor)


def event(wall_time: float, step: int = 0, *, summary: Iterable[bytes] = (),
          summary_bytes: bytes | None = None, file_version: str | None = None,
          session_start: bool = False) -> bytes:
    """An ``Event``: ``summary`` holds encoded ``Summary.Value`` messages (or ``summary_bytes``
    a whole serialised ``Summary``); ``session_start`` adds ``SessionLog(status=START)``, which
    makes TensorBoard drop what earlier files logged at this step and after (a resumed run)."""
    out = b"\x09" + struct.pack("<d", wall_time)
    if step > 0:
        out += b"\x10" + _varint(step)
    if file_version is not None:
        out += _field(3, file_version.encode())
    values = b"".join(_field(1, v) for v in summary)
    if summary_bytes is not None:
        values += summary_bytes
    if values or summary_bytes is not None:
        out += _field(5, values)
    if session_start:
        out += _field(7, b"\x08\x01")  # Event.session_log
    return out


class ScalarRecords:
    """Framed scalar events, fast: the hot path of a run (a loss for every step).

    The event's fields are laid out summary first (protobuf allows any order), so the bytes
    before the value, the tag's, are the same for every record of a tag; the checksum register
    after them is computed once per tag and each record checksums only its ~16 bytes of value,
    time and step."""

    def __init__(self) -> None:
        self._tags: dict[str, tuple[bytes, int]] = {}

    def _prefix(self, tag: str) -> tuple[bytes, int]:
        value_len = len(_field(1, tag.encode())) + 5
        summary = _field(1, _field(1, tag.encode()) + b"\x15" + b"\0" * 4)
        prefix = (_varint(5 << 3 | 2) + _varint(len(summary)) + _varint(1 << 3 | 2)
                  + _varint(value_len) + _field(1, tag.encode()) + b"\x15")
        got = self._tags[tag] = (prefix, _crc_run(prefix))
        return got

    def encode(self, tag: str, value: float, step: int, wall_time: float) -> bytes:
        return self.encode_steps(tag, (value,), step, wall_time)

    def encode_steps(self, tag: str, values: Iterable[float], first_step: int,
                     wall_time: float) -> bytes:
        """Records of ``values`` at ``first_step``, ``first_step + 1``, ... (a train record's
        per-step losses), all at ``wall_time``; one call, so the per-record parts (the tag's
        prefix, the time's bytes) are looked up and packed once."""
        prefix, state = self._tags.get(tag) or self._prefix(tag)
        wall = b"\x09" + struct.pack("<d", wall_time)
        native = None if crc32c is _crc32c_py else crc32c
        out = []
        for step, value in enumerate(values, first_step):
            tail = _f32(value) + wall + (b"\x10" + _varint(step) if step > 0 else b"")
            crc = (_crc_run(tail, state) ^ 0xFFFFFFFF) if native is None \
                else native(prefix + tail)
            out.append(_header(len(prefix) + len(tail)) + prefix + tail
                       + struct.pack("<I", _mask(crc)))
        return b"".join(out)

    def encode_series(self, tag: str, values: Sequence[float], steps: Sequence[int],
                      wall_times: Sequence[float]) -> bytes:
        """Records of ``values[i]`` at ``steps[i]`` and ``wall_times[i]``, in that order: the
        losses of every train record since the last flush, in one call.

        Why arrays: a record per step is the hot path of TensorBoard logging (a fast run's
        thousand steps a second), and a record built in Python costs ~2 us (its checksum is a
        Python loop over its bytes), ~0.2% of a 1 ms step. Here every record of the series is a
        row of one byte matrix and the table-driven checksum runs a column at a time over all
        rows; the bytes are those :meth:`encode_steps` writes (tests check it)."""
        n = len(values)
        if n < _SERIES_MIN:  # a handful: the arrays' set-up costs more than it saves
            lists = (np.asarray(x).tolist() for x in (values, steps, wall_times))
            return b"".join(self.encode_steps(tag, (v,), s, w)
                            for v, s, w in zip(*lists, strict=True))
        prefix, state = self._tags.get(tag) or self._prefix(tag)
        step = np.asarray(steps, dtype=np.int64)
        size = _varint_sizes(step)  # 0: step 0, no step field (as :func:`event` writes it)
        cuts = [0, *(np.flatnonzero(np.diff(size)) + 1).tolist(), n]
        value = np.clip(np.asarray(values, dtype=np.float64), -_F32_MAX, _F32_MAX)
        wall = np.asarray(wall_times, dtype="<f8")
        out = []
        for a, b in pairwise(cuts):  # runs of one step size: one record length each
            k = int(size[a])
            tail = np.empty((b - a, 13 + (k + 1 if k else 0)), dtype=np.uint8)
            tail[:, 0:4] = value[a:b].astype("<f4").view(np.uint8).reshape(-1, 4)
            tail[:, 4] = 0x09
            tail[:, 5:13] = wall[a:b].view(np.uint8).reshape(-1, 8)
            if k:
                tail[:, 13] = 0x10
                for i in range(k):  # the varint: 7 bits a byte, the high bit on all but last
                    tail[:, 14 + i] = ((step[a:b] >> (7 * i)) & 0x7F) | (0x80 * (i < k - 1))
            crc = _crc_rows(tail, state) ^ np.uint32(0xFFFFFFFF)
            masked = ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xA282EAD8)
            head = _header(len(prefix) + tail.shape[1]) + prefix
            rows = np.empty((b - a, len(head) + tail.shape[1] + 4), dtype=np.uint8)
            rows[:, :len(head)] = np.frombuffer(head, dtype=np.uint8)
            rows[:, len(head):-4] = tail
            rows[:, -4:] = masked.astype("<u4").view(np.uint8).reshape(-1, 4)
            out.append(rows.tobytes())
        return b"".join(out)


#: the fewest records :meth:`ScalarRecords.encode_series` builds as arrays (measured: the
#: arrays' set-up is ~55 us, the loop's ~2 us a record)
_SERIES_MIN = 32
_TABLE_NP = np.array(_TABLE, dtype=np.uint32)


def _crc_rows(rows: np.ndarray, crc: int) -> np.ndarray:
    """The CRC-32C register after each row of ``rows`` (bytes, one row a record), each from
    ``crc``: :func:`_crc_run`'s loop, a column at a time over all rows."""
    reg = np.full(rows.shape[0], crc, dtype=np.uint32)
    for column in rows.T:
        reg = _TABLE_NP[(reg ^ column) & np.uint32(0xFF)] ^ (reg >> np.uint32(8))
    return reg


def _varint_sizes(steps: np.ndarray) -> np.ndarray:
    """The bytes of each step's varint, 0 for a step that writes no step field (0 or less)."""
    size = (steps > 0).astype(np.int64)
    bound = 1 << 7
    while (more := steps >= bound).any():
        size += more
        bound <<= 7
    return size


class EventFile:
    """One event file in ``log_dir``, named as tensorboardX names its files (so TensorBoard
    orders a resumed run's files by time); ``purge_step``: the first step of a resumed segment."""

    def __init__(self, log_dir: str | Path, purge_step: int | None = None) -> None:
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        # the second the file was made, then nanoseconds: a resumed segment started in the same
        # second as the one before must neither take its name nor sort before it
        name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{time.time_ns()}"
        self.path = log_dir / name
        self._fh = open(self.path, "wb")
        self._fh.write(record(event(now, file_version="brain.Event:2")))
        if purge_step is not None:
            self._fh.write(record(event(now, purge_step, file_version="brain.Event:2")))
            self._fh.write(record(event(now, purge_step, session_start=True)))
        self._fh.flush()

    def write(self, events: Iterable[bytes]) -> None:
        """Encoded events (:func:`event`), framed; buffered until :meth:`flush`."""
        self._fh.write(b"".join(record(e) for e in events))

    def write_records(self, framed: bytes) -> None:
        """Records framed already (:class:`ScalarRecords`)."""
        self._fh.write(framed)

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


__all__ = ["EventFile", "ScalarRecords", "crc32c", "event", "record", "scalar_value", "text_value"]
