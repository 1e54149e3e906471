"""Load a published checkpoint whose names differ from this model's, through a key map.

A key map is data: a dict of rules saying, for each tensor of *our* state_dict, which tensor(s) of
the published one (*theirs*) it is made from and how. Nothing in it is code, so a map can be
printed, diffed and copied into an export. Its fields:

* ``strip_prefixes``: prefixes their keys may carry and ours never do (``transformer.`` of
  ``GPT2LMHeadModel``, ``bert.`` of ``BertForPreTraining``), dropped before matching.
* ``renames``: ``(old suffix, new suffix)`` pairs applied to their keys (old BERT checkpoints say
  ``LayerNorm.gamma``/``beta`` where torch says ``weight``/``bias``).
* ``rules``: ``(our pattern, their pattern or list of patterns, transform[, when])``, tried in
  order; the first whose ``our pattern`` matches an our-key (and whose ``when`` key, if given,
  exists in our state_dict) says where it comes from. In a pattern ``{i}``, ``{j}`` and ``{n}``
  stand for a number, ``{rest*}`` (a name ending in ``*``) for any dotted tail, and any other
  ``{name}`` for one dotted segment; their side may write ``{j+1}`` or ``{j-1}``.
* ``ignore``: patterns of their keys we leave unused on purpose (buffers we recompute, such as
  GPT-2's causal-mask ``attn.bias`` and BERT's ``position_ids``; heads this model does not have).
* ``tied``: ``(their key, their other key)``: the first is dropped when it equals the second (a
  tied LM head saved under both names); when they differ it is reported, never silently lost.
* ``optional``: patterns of our keys an older file may lack (BatchNorm's ``num_batches_tracked``);
  they keep the model's value and the report lists them.
* ``requires``: our keys that must exist for the map to fit a model at all.

Transforms (``TRANSFORMS``): ``copy``; ``transpose`` (Hugging Face's ``Conv1D`` keeps its weight as
``[in, out]``, ``nn.Linear`` as ``[out, in]``); ``cat`` (their separate q, k, v stacked along dim 0
into one packed ``in_proj`` as ``nn.MultiheadAttention`` holds it).

:func:`convert` gives our state_dict and a :class:`Conversion` report; :func:`load_pretrained`
converts and loads with ``strict=True``. Needs only PyTorch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor, nn

#: The per-key transforms a rule may name, and what each does to their tensor(s).
TRANSFORMS = {
    "copy": "the tensor as it is",
    "transpose": "a 2-D weight transposed: Conv1D [in, out] <-> nn.Linear [out, in]",
    "cat": "several tensors stacked along dim 0 (separate q, k, v -> one packed in_proj)",
}
_NUMBER_FIELDS = {"i", "j", "n"}


@dataclass
class Conversion:
    """What a conversion made and what it could not: the report of :func:`convert`."""

    source: str
    state: dict[str, Tensor] = field(default_factory=dict)
    #: our key -> (their keys, transform), for every tensor made
    made: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    #: our keys that no rule covers, or whose tensors the file lacks
    missing: list[str] = field(default_factory=list)
    #: (our key, our shape, made shape) where a made tensor has the wrong shape
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    #: their keys nobody used and no ignore rule names
    unused: list[str] = field(default_factory=list)
    #: their keys dropped on purpose (ignore rules, tied copies)
    ignored: list[str] = field(default_factory=list)
    #: our keys the file may lack (``optional``), left at the model's value
    kept: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every tensor of ours was made with its shape."""
        return not self.missing and not self.mismatched

    @property
    def strict(self) -> bool:
        """Complete, and every tensor of theirs was used or dropped on purpose."""
        return self.complete and not self.unused

    def text(self, limit: int = 8) -> str:
        head = (f"key map '{self.source}': {len(self.state)} tensors made, "
                f"{len(self.missing)} missing, {len(self.mismatched)} with the wrong shape, "
                f"{len(self.unused)} of the file unused, {len(self.ignored)} dropped on "
                f"purpose, {len(self.kept)} kept as they were")
        lines = [head]
        lines += [f"  missing: '{k}'" for k in self.missing[:limit]]
        lines += [f"  shape: '{k}' is {list(a)} here but {list(b)} made"
                  for k, a, b in self.mismatched[:limit]]
        lines += [f"  unused: '{k}'" for k in self.unused[:limit]]
        return "\n".join(lines)


class KeyMapError(ValueError):
    """A checkpoint that a key map cannot turn into this model's state_dict."""

    def __init__(self, conversion: Conversion) -> None:
        self.conversion = conversion
        super().__init__(conversion.text())


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    """A pattern as a regex: ``{n}`` a number, ``{rest*}`` any tail, ``{p}`` one segment; a name
    used twice must match the same text twice."""
    out, pos, seen = [], 0, set()
    for m in re.finditer(r"\{(\w+)(\*?)\}", pattern):
        out.append(re.escape(pattern[pos:m.start()]))
        name, rest = m.group(1), m.group(2)
        body = r".+" if rest else r"\d+" if name in _NUMBER_FIELDS else r"[^.]+"
        out.append(f"(?P={name})" if name in seen else f"(?P<{name}>{body})")
        seen.add(name)
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out))


def _fill(pattern: str, fields: Mapping[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        value = fields[m.group(1)]
        return str(int(value) + int(m.group(2))) if m.group(2) else value

    return re.sub(r"\{(\w+)\*?([+-]\d+)?\}", one, pattern)


def _match(pattern: str, key: str) -> dict[str, str] | None:
    m = _regex(pattern).fullmatch(key)
    return m.groupdict() if m else None


def _normalise(keymap: Mapping[str, Any], theirs: Mapping[str, Tensor]) -> dict[str, str]:
    """Their keys as the rules spell them -> the keys as the file spells them."""
    out: dict[str, str] = {}
    for key in theirs:
        name = key
        changed = True
        while changed:
            changed = False
            for prefix in keymap.get("strip_prefixes", ()):
                if name.startswith(prefix):
                    name, changed = name[len(prefix):], True
        for old, new in keymap.get("renames", ()):
            if name.endswith(old):
                name = name[: -len(old)] + new
        out.setdefault(name, key)
    return out


def _make(transform: str, tensors: list[Tensor]) -> Tensor:
    if transform == "copy" and len(tensors) == 1:
        return tensors[0]
    if transform == "transpose" and len(tensors) == 1 and tensors[0].dim() == 2:
        return tensors[0].t()
    if transform == "cat":
        return torch.cat(tensors, dim=0)
    raise ValueError(f"transform '{transform}' does not apply to {len(tensors)} tensor(s) of "
                     f"shapes {[list(t.shape) for t in tensors]}")


def _same(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))


def covers(keymap: Mapping[str, Any], ours: Mapping[str, Any] | list[str]) -> bool:
    """Whether every key of ours has a rule and the map's ``requires`` keys exist: the map was
    written for a model of this structure (the file need not be at hand)."""
    keys = set(ours)
    if not all(k in keys for k in keymap.get("requires", ())):
        return False
    return all(_rule(keymap, key, keys) is not None for key in ours)


def _rule(keymap: Mapping[str, Any], key: str, keys: set[str]) -> tuple[list[str], str] | None:
    for rule in keymap["rules"]:
        fields = _match(rule[0], key)
        if fields is None:
            continue
        if len(rule) > 3 and _fill(rule[3], fields) not in keys:
            continue
        theirs = [rule[1]] if isinstance(rule[1], str) else list(rule[1])
        return [_fill(p, fields) for p in theirs], rule[2]
    return None


def convert(keymap: Mapping[str, Any], ours: Mapping[str, Tensor],
            theirs: Mapping[str, Tensor]) -> Conversion:
    """Make our state_dict (``ours`` gives the keys and shapes) from ``theirs`` by ``keymap``."""
    report = Conversion(str(keymap.get("name", "")))
    names = _normalise(keymap, theirs)
    keys = set(ours)
    used: set[str] = set()
    for key, target in ours.items():
        found = _rule(keymap, key, keys)
        if found is None or not all(p in names for p in found[0]):
            if found is not None and any(_match(p, key) is not None
                                         for p in keymap.get("optional", ())):
                report.state[key] = target  # absent from older files: keep the model's value
                report.kept.append(key)
            else:
                report.missing.append(key)
            continue
        their_keys, transform = found
        parts = [theirs[names[p]] for p in their_keys]
        used.update(their_keys)
        try:
            tensor = _make(transform, parts)
        except (ValueError, RuntimeError):  # a file of another layout under the same names
            report.mismatched.append((key, tuple(target.shape), tuple(parts[0].shape)))
            continue
        if tuple(tensor.shape) != tuple(target.shape):
            report.mismatched.append((key, tuple(target.shape), tuple(tensor.shape)))
            continue
        report.state[key] = tensor
        report.made[key] = (tuple(names[p] for p in their_keys), transform)
    for name, key in names.items():
        if name in used:
            continue
        if any(_match(p, name) is not None for p in keymap.get("ignore", ())):
            report.ignored.append(key)
            continue
        tie = next((other for first, other in keymap.get("tied", ()) if first == name), None)
        if tie is not None and tie in names and _same(theirs[key], theirs[names[tie]]):
            report.ignored.append(key)
            continue
        report.unused.append(key)
    spelled = set(names.values())  # two keys of theirs that name one tensor: the second unused
    report.unused += [key for key in theirs if key not in spelled]
    return report


def load_with_map(model: nn.Module, state_dict: Mapping[str, Tensor],
                  keymap: Mapping[str, Any], *, strict: bool = True) -> Conversion:
    """Convert ``state_dict`` by ``keymap`` and load it into ``model`` with ``strict=True``.

    Raises :class:`KeyMapError` (the model untouched) when a tensor of ours cannot be made, or,
    with ``strict`` (the default), when the file holds tensors the map neither uses nor drops on
    purpose; the report lists them. ``strict=False`` loads a checkpoint with extra heads.
    """
    ours = model.state_dict()
    report = convert(keymap, ours, state_dict)
    if not report.complete or (strict and report.unused):
        raise KeyMapError(report)
    state = {k: v.to(ours[k].dtype) if v.is_floating_point() else v
             for k, v in report.state.items()}
    model.load_state_dict(state, strict=True)
    return report


#: Key maps by name (``source``) that :func:`load_pretrained` knows.
KEYMAPS: dict[str, dict[str, Any]] = {}


def load_pretrained(model: nn.Module, state_dict: Mapping[str, Tensor], source: str, *,
                    strict: bool = True) -> Conversion:
    """Load a published checkpoint (``state_dict``, as ``torch.load`` or safetensors give it)
    laid out as ``source`` names (a key of ``KEYMAPS``) into ``model``; the report."""
    if source not in KEYMAPS:
        raise KeyError(f"unknown source '{source}'; known: {', '.join(sorted(KEYMAPS))}")
    return load_with_map(model, state_dict, KEYMAPS[source], strict=strict)
