"""Run names a person can tell apart: a counter, what changed since the run before (or the
template, for the first), and the time it started. Qt-free; written once into ``run.json``.

A run folder's own name stays the time stamp (unique, sortable); this is the name people read in
the runs list and the plot legends.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from compiler import Project

META = "run.json"
MAX_LABEL = 28


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "×".join(str(x) for x in v)
    return str(v)


def what_changed(before: Project | None, after: Project) -> str:
    """A few words for what differs from the previous run's snapshot: the changed settings
    ("lr 0.01"), the changed node params ("fc1 out_features 64"), else "graph edited"; the
    project's name (its template) for the first run."""
    if before is None:
        return after.name or "first run"
    tb, ta = before.training, after.training
    parts: list[str] = []
    if tb.recipe != ta.recipe:
        parts.append(str(ta.recipe))
    if tb.dataset != ta.dataset:
        parts.append(str(ta.dataset))
    hb, ha = _flat(dict(tb.hyper)), _flat(dict(ta.hyper))
    parts += [f"{k} {_short(ha[k])}" for k in sorted(ha) if hb.get(k) != ha[k]]
    parts += [f"no {k}" for k in sorted(hb) if k not in ha]
    if not parts:
        parts = _param_changes(before, after)
    if not parts and before.model_dump(include={"networks", "blocks"}) != \
            after.model_dump(include={"networks", "blocks"}):
        parts = ["graph edited"]
    label = ", ".join(parts) or "same settings"
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _param_changes(before: Project, after: Project) -> list[str]:
    old = {(net.name, n.id): n for net in list(before.networks) + list(before.blocks)
           for n in net.nodes}
    out = []
    for net in list(after.networks) + list(after.blocks):
        for n in net.nodes:
            prev = old.get((net.name, n.id))
            if prev is None:
                out.append(f"+{n.name}")
                continue
            out += [f"{n.name} {k} {_short(v)}" for k, v in sorted(n.params.items())
                    if prev.params.get(k) != v]
    return out[:2] + (["…"] if len(out) > 2 else [])


def write_meta(run_dir: Path, number: int, label: str) -> dict:
    meta = {"number": number, "label": label, "time": time.time()}
    (run_dir / META).write_text(json.dumps(meta), encoding="utf-8")
    return meta


def read_meta(run_dir: Path) -> dict:
    try:
        meta = json.loads((run_dir / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def next_number(run_dirs: list[Path]) -> int:
    """One more than the highest number so far (runs without a number count by position)."""
    best = 0
    for i, d in enumerate(run_dirs, 1):
        n = read_meta(d).get("number")
        best = max(best, n if isinstance(n, int) else i)
    return best + 1


def display_name(run_id: str, meta: dict, t: float | None = None) -> str:
    """'#3 lr 0.01 · 14:02' — or '14:02:11' for a run from before runs had names."""
    when = meta.get("time") or t
    clock = time.strftime("%H:%M", time.localtime(float(when))) if when else ""
    if isinstance(meta.get("number"), int):
        label = str(meta.get("label") or "")
        return f"#{meta['number']} {label}".strip() + (f" · {clock}" if clock else "")
    stamp = run_id.split("-")
    if len(stamp) >= 2 and len(stamp[1]) == 6 and stamp[1].isdigit():
        return ":".join((stamp[1][:2], stamp[1][2:4], stamp[1][4:])) + \
            (f"#{stamp[2]}" if len(stamp) > 2 else "")
    return run_id


def previous_snapshot(run_dirs: list[Path]) -> Project | None:
    """The last run's snapshot, to say what the next run changed."""
    if not run_dirs:
        return None
    from compiler import load

    try:
        return load(run_dirs[-1] / "project.loom")
    except Exception:  # an old or damaged snapshot: the run is named without the comparison
        return None
