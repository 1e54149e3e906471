"""Weights in and out: read a state_dict file and match it to a network, by name, then by order.

A weights file is data, like a project file: ``.safetensors`` is read with safetensors (tensors
only, by construction), anything else with ``torch.load(weights_only=True)``, which unpickles
tensors and plain containers and refuses any other object, so a crafted file cannot run code.
We never fall back to an unrestricted load, whatever torch's message suggests.

A file in a published layout whose names cannot equal ours (Hugging Face GPT-2, BERT,
torchvision EfficientNet) is first renamed by its key map (:func:`translate`; the report's
``keymap`` names the map). Matching (``match``) then pairs each tensor of the network's
state_dict with one of the file's:

1. by name: the same key (after dropping the ``module.`` of DistributedDataParallel and the
   ``_orig_mod.`` of ``torch.compile``), which is every key once the export's names equal the
   source's (torchvision's ResNet/VGG/AlexNet);
2. by order and shape: the keys left on both sides, in their order (state_dicts list tensors in
   the order their modules were made, so a model written with other attribute names lines up).

A pair whose shapes disagree is never loaded: :func:`load_into` refuses (``WeightsRefused``,
carrying the report) unless the caller passes ``allow_partial=True`` after the user said yes;
then every matched tensor is loaded and the rest keep their initial values.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .keymaps import find as find_keymap
from .project_weights import (
    NETWORKS_MARK,
    ORDER_MARK,
    ProjectWeightsError,
    legacy_weights_file,
    load_project_weights,
    migrate_legacy,
    read_project_weights,
    read_safetensors,
    save_project_weights,
    stored_weights,
    weights_dir,
    write_safetensors,
)

#: Prefixes a saved state_dict may carry that name no layer (DDP, torch.compile).
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
#: Keys under which checkpoints commonly keep the state_dict itself.
#: (Not "net": a dict {"net": state_dict} is the run export of a network called net.)
CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "module", "weights")
#: A weights file larger than this is refused before reading (a 13B model in fp32 is 52 GB).
MAX_FILE_BYTES = 16 * 2**30
SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


class WeightsError(Exception):
    """A file that is not a readable state_dict, said with what to do instead."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message, self.hint = message, hint
        super().__init__(message + (f"; {hint}" if hint else ""))


class WeightsRefused(WeightsError):
    """Shapes disagree or tensors are left without weights: loading would be partial."""

    def __init__(self, network: str, report: "WeightsReport") -> None:
        self.network, self.report = network, report
        first = report.mismatched[0] if report.mismatched else None
        what = (f"'{first.target}' is {_shape(first.target_shape)} in the network but "
                f"{_shape(first.source_shape)} in the file (as '{first.source}')" if first else
                f"{len(report.missing)} tensor(s) of the network have no match in the file, "
                f"first '{report.missing[0]}'")
        super().__init__(f"network '{network}': not loaded: {what}",
                         "load the matching tensors only (the rest keep their initial values) "
                         "if that is what you want, or pick a file for this architecture")


@dataclass(frozen=True)
class Pair:
    """One network tensor and the file tensor chosen for it."""

    target: str
    source: str
    target_shape: tuple[int, ...]
    source_shape: tuple[int, ...]
    how: str  # "name" | "order"

    @property
    def fits(self) -> bool:
        return self.target_shape == self.source_shape


@dataclass
class WeightsReport:
    """What matched how, what did not, and what the file holds that the network does not."""

    network: str
    pairs: list[Pair] = field(default_factory=list)
    #: Network tensors left without a file tensor.
    missing: list[str] = field(default_factory=list)
    #: File tensors nobody took.
    unused: list[str] = field(default_factory=list)
    #: The key map (``compiler.keymaps``: "hf-gpt2", ...) that renamed the file's tensors to
    #: ours before matching, or None when its names were used as they are.
    keymap: str | None = None

    @property
    def by_name(self) -> list[Pair]:
        return [p for p in self.pairs if p.how == "name" and p.fits]

    @property
    def by_order(self) -> list[Pair]:
        return [p for p in self.pairs if p.how == "order" and p.fits]

    @property
    def mismatched(self) -> list[Pair]:
        return [p for p in self.pairs if not p.fits]

    @property
    def complete(self) -> bool:
        """Every network tensor gets a file tensor of its shape: a load with nothing left out."""
        return not self.missing and not self.mismatched

    @property
    def strict_by_name(self) -> bool:
        return self.complete and not self.by_order and not self.unused

    def lines(self, limit: int = 8) -> list[str]:
        """The report as text: counts first, then the first few of each kind of problem."""
        total = len(self.pairs) + len(self.missing)
        out = [f"network '{self.network}': {len(self.by_name)} of {total} tensors matched by "
               f"name, {len(self.by_order)} by order and shape, {len(self.mismatched)} with "
               f"disagreeing shapes, {len(self.missing)} without a match; "
               f"{len(self.unused)} tensors of the file unused"]
        if self.keymap:
            out[0] += f"; the file's names translated with the {self.keymap} key map"
        for p in self.mismatched[:limit]:
            out.append(f"  shape: '{p.target}' {_shape(p.target_shape)} <- '{p.source}' "
                       f"{_shape(p.source_shape)}")
        for p in self.by_order[:limit]:
            out.append(f"  by order: '{p.target}' <- '{p.source}' {_shape(p.source_shape)}")
        for name in self.missing[:limit]:
            out.append(f"  no match: '{name}'")
        for name in self.unused[:limit]:
            out.append(f"  unused: '{name}'")
        return out

    def text(self) -> str:
        return "\n".join(self.lines())


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


# -- reading ----------------------------------------------------------------------------------


def read_weights(path: str | Path) -> dict[str, dict[str, Tensor]]:
    """The state_dicts a file holds, by network name (``""`` for a single unnamed one).

    Understands a plain state_dict (torchvision, Hugging Face ``pytorch_model.bin`` or
    ``model.safetensors``, our exported network), a dict of them by network name (a run's
    exported weights), a Layerloom checkpoint (``{"nets": {...}}``), and the usual wrappers
    (``{"state_dict": ...}``, ``{"model": ...}``).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise WeightsError(f"cannot read {path}: {err.strerror or err}",
                           "check the path") from None
    if not path.is_file():
        raise WeightsError(f"{path} is not a file", "pick a .safetensors, .pt or .pth file")
    if size > MAX_FILE_BYTES:
        raise WeightsError(f"{path} is {size / 2**30:.1f} GiB, over the limit of "
                           f"{MAX_FILE_BYTES // 2**30} GiB", "load a smaller model's weights")
    if path.suffix == ".safetensors" or _is_safetensors(path):
        return _read_safetensors(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as err:
        what = re.search(r"GLOBAL (\S+) (?:was not an allowed global|whose module)"
                         r"|(\S+) must be \S+ to load", str(err))
        if what is None:  # not a pickle of ours at all: say what torch's unpickler found
            found = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
            detail = found.group(1).strip() if found else "not a pickle torch reads"
            raise WeightsError(f"{path} is not a readable weights file ({detail})",
                               "pick a .safetensors, .pt or .pth state_dict file") from None
        raise WeightsError(
            f"{path} was refused: it asks to load Python objects "
            f"({next(g for g in what.groups() if g)}), not only tensors, and loading them "
            "could run code", "save the weights with torch.save(model.state_dict(), path) or "
            "as .safetensors and load that file") from None
    except Exception as err:  # a torn zip, a text file, bytes that are no pickle
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise WeightsError(f"{path} is not a readable weights file ({first})",
                           "pick a .safetensors, .pt or .pth state_dict file") from None
    found = _state_dicts(obj)
    if not found:
        raise WeightsError(f"{path} holds no tensors keyed by name",
                           "it must be a state_dict (a dict of name -> tensor) or hold one")
    return found


def _is_safetensors(path: Path) -> bool:
    """A safetensors file starts with the 8-byte length of a JSON header beginning with '{'."""
    try:
        with path.open("rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 2**27


def _read_safetensors(path: Path) -> dict[str, dict[str, Tensor]]:
    try:
        return read_safetensors(path)
    except ProjectWeightsError as err:
        raise WeightsError(err.message, err.hint) from None


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and bool(obj) and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, Tensor) for v in obj.values()))


def _state_dicts(obj: Any) -> dict[str, dict[str, Tensor]]:
    if _is_state_dict(obj):
        return {"": dict(obj)}
    if not isinstance(obj, Mapping):
        return {}
    if isinstance(obj.get("nets"), Mapping):  # a Layerloom checkpoint: state_dicts by role
        nets = {k: dict(v) for k, v in obj["nets"].items() if _is_state_dict(v)}
        if nets:
            return nets
    for key in CONTAINER_KEYS:
        if _is_state_dict(obj.get(key)):
            return {"": dict(obj[key])}
    named = {k: dict(v) for k, v in obj.items() if isinstance(k, str) and _is_state_dict(v)}
    return named


# -- matching and loading -----------------------------------------------------------------------


def _strip(name: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix):], True
    return name


def match(network: str, target: Mapping[str, Tensor],
          source: Mapping[str, Tensor]) -> WeightsReport:
    """Pair the network's tensors (``target``, its state_dict) with the file's (``source``)."""
    report = WeightsReport(network)
    by_stripped = {}
    for key in source:
        by_stripped.setdefault(_strip(key), key)
    taken: set[str] = set()
    left: list[str] = []
    for key, tensor in target.items():
        src = source.get(key) if key in source else None
        src_key = key if src is not None else by_stripped.get(key)
        if src_key is not None and src_key not in taken:
            taken.add(src_key)
            report.pairs.append(Pair(key, src_key, tuple(tensor.shape),
                                     tuple(source[src_key].shape), "name"))
        else:
            left.append(key)
    rest = [k for k in source if k not in taken]
    for key, src_key in zip(left, rest, strict=False):
        report.pairs.append(Pair(key, src_key, tuple(target[key].shape),
                                 tuple(source[src_key].shape), "order"))
    report.missing = left[len(rest):]
    report.unused = rest[len(left):]
    order = {k: i for i, k in enumerate(target)}
    report.pairs.sort(key=lambda p: order[p.target])
    return report


def translate(target: Mapping[str, Tensor], source: Mapping[str, Tensor]
              ) -> tuple[Mapping[str, Tensor], str | None]:
    """``source`` renamed to ``target``'s keys by the published layout it is in (a key map of
    :mod:`compiler.keymaps`: Hugging Face GPT-2 or BERT, torchvision EfficientNet) and that
    map's name, or ``source`` as it is and None. A file that already names every tensor of
    ours is never converted. The tensors the map did not use stay under their own names, so
    the report lists them as unused."""
    if all(key in source for key in target):
        return source, None
    conversion = find_keymap(target, source)
    if conversion is None:
        return source, None
    return ({**conversion.state, **{k: source[k] for k in conversion.unused
                                    if k not in conversion.state}}, conversion.source)


def pick_state_dict(network: str, networks: list[str],
                    found: Mapping[str, Mapping[str, Tensor]]) -> Mapping[str, Tensor] | None:
    """The file's state_dict for ``network``: the one of that name, or the file's only one when
    it names none (or the project has a single network)."""
    if network in found:
        return found[network]
    if len(found) == 1 and ("" in found or len(networks) == 1):
        return next(iter(found.values()))
    return None


def load_into(model: nn.Module, network: str, source: str | Path | Mapping[str, Tensor], *,
              allow_partial: bool = False) -> WeightsReport:
    """Match ``source`` (a state_dict, or a file :func:`read_weights` reads) to ``model``, the
    network ``network``, and load it; the report.

    Refuses with :class:`WeightsRefused` (the model untouched) when the load would be partial,
    unless ``allow_partial``: then the pairs that fit are loaded and the rest stay as they are.
    """
    if isinstance(source, (str, Path)):
        found = read_weights(source)
        picked = pick_state_dict(network, [network], found)
        if picked is None:
            raise WeightsError(f"{source} holds no weights for network '{network}' (it has "
                               f"{', '.join(repr(k) for k in found)})",
                               "pick the file exported for this network")
        source = picked
    target = model.state_dict()
    source, keymap = translate(target, source)  # a published layout renamed to ours
    report = match(network, target, source)
    report.keymap = keymap
    if not report.complete and not allow_partial:
        raise WeightsRefused(network, report)
    state = {p.target: source[p.source] for p in report.pairs if p.fits}
    dtypes = {k: v.dtype for k, v in target.items()}
    state = {k: v.to(dtypes[k]) if v.dtype != dtypes[k] and v.is_floating_point() else v
             for k, v in state.items()}
    model.load_state_dict(state, strict=report.complete)
    return report


def save_weights(state: Mapping[str, Any], path: str | Path,
                 info: Mapping[str, str] | None = None) -> Path:
    """A state_dict, or several by network name, as one ``.safetensors`` file
    (:func:`compiler.project_weights.write_safetensors`: a single state_dict stays a plain one
    any torch code loads; several are ``<network>/<key>``; written atomically)."""
    return write_safetensors(state, path, info)


#: a project's own weights (its ``<project>.weights/`` folder) are compiler.project_weights's,
#: re-exported here beside the reading and matching of any weights file
__all__ = ["NETWORKS_MARK", "ORDER_MARK", "Pair", "ProjectWeightsError", "WeightsError",
           "WeightsRefused", "WeightsReport", "legacy_weights_file", "load_into",
           "load_project_weights", "match", "migrate_legacy", "pick_state_dict",
           "read_project_weights", "read_weights", "save_project_weights", "save_weights",
           "stored_weights", "translate", "weights_dir"]
