"""A project's weights, whichever way they came: ``<project>.weights/<network>.safetensors``.

One folder beside the project file, one plain safetensors state_dict per network (any torch code
loads it), is where an import's weights go (``ImportResult.save``) and where File ▸ Load
Weights… keeps what it matched; training starts from it (the Training panel's "start from the
project's weights", ``layerloom train --init-weights``). A load is strict; after an edit that
changed shapes (a widened stage) :class:`WeightsFit` says which tensors no longer fit, and only
with the user's yes (``allow_partial``, ``--partial-weights``) does a run start with the rest.
This module is the one that reads and writes that layout, and the safetensors files of
:mod:`compiler.weights` (which matches files of other layouts to a network, and re-exports these
names).

Imports before the folder wrote one file, ``<project>.weights.safetensors`` (keys
``<network>/<key>``). It is still read: per network, the newer of the folder's file and the old
one's wins, and :func:`migrate_legacy` copies what only the old file holds into the folder,
keeping the old file, so nothing is lost. safetensors holds tensors and a string table only, so
reading never runs code; nothing here imports the rest of the compiler (``compiler.build`` loads
a network's weights through this module without a cycle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor, nn

#: safetensors metadata key saying the file holds several networks as ``<network>/<key>``.
NETWORKS_MARK = "layerloom.networks"
#: safetensors metadata key holding the keys' order (the file format keeps none).
ORDER_MARK = "layerloom.order"
#: The format mark of an import's weights before the weights folder (``NAME.weights.safetensors``).
LEGACY_FORMAT = "layerloom-weights/"
#: The folder beside a project holding its weights, one ``<network>.safetensors`` each.
FOLDER_SUFFIX = ".weights"


class ProjectWeightsError(Exception):
    """Weights that cannot be read or do not fit the network; says which and what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message, self.hint = message, hint
        super().__init__(message + (f"; {hint}" if hint else ""))


# -- safetensors files --------------------------------------------------------------------------


def write_safetensors(state: Mapping[str, Any], path: str | Path,
                      info: Mapping[str, str] | None = None) -> Path:
    """A state_dict, or several by network name, as one ``.safetensors`` file.

    Several networks are stored as ``<network>/<key>`` with a metadata mark, and
    :func:`read_safetensors` gives them back by name; a single state_dict stays a plain one that
    any torch code loads. Shared tensors (a tied embedding) are written once per name:
    safetensors refuses aliases, so each gets its own copy. Written atomically; ``info`` goes
    into the metadata (``layerloom.<key>``), e.g. where the weights came from.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nested = bool(state) and all(isinstance(v, Mapping) for v in state.values())
    flat: dict[str, Tensor] = {}
    if nested:
        for net, sd in state.items():
            for k, v in sd.items():
                flat[f"{net}/{k}"] = v
    else:
        flat = dict(state)
    plain = {k: v.detach().cpu().contiguous().clone() for k, v in flat.items()}
    tmp = path.with_name(path.name + ".partial")
    meta = {ORDER_MARK: json.dumps(list(plain))}  # safetensors sorts keys; matching by order
    if nested:                                     # needs the state_dict's own order back
        meta[NETWORKS_MARK] = "1"
    meta.update({f"layerloom.{k}": str(v) for k, v in (info or {}).items()})
    save_file(plain, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_safetensors(path: str | Path) -> dict[str, dict[str, Tensor]]:
    """The state_dicts of a safetensors file by network name (``""`` for a plain one), keys in
    the order they were saved in."""
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file
    except ImportError:
        raise ProjectWeightsError(f"{path} is a safetensors file and the safetensors package "
                                  "is missing", "pip install safetensors") from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
        tensors = dict(load_file(str(path), device="cpu"))
        order = _order(meta.get(ORDER_MARK), tensors)
        tensors = {k: tensors[k] for k in order}
    except Exception as err:  # a damaged header, a truncated file, a missing file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ProjectWeightsError(f"{path} is not a readable safetensors file ({first})",
                                  "export or save the weights again") from None
    # an import's file from before the weights folder: "<network>/<key>", its own format mark
    nested = meta.get(NETWORKS_MARK) == "1" or str(meta.get("format", "")).startswith(
        LEGACY_FORMAT)
    if not nested:
        return {"": tensors}
    out: dict[str, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        net, _, name = key.partition("/")
        out.setdefault(net, {})[name] = value
    return out


def _order(text: str | None, tensors: Mapping[str, Tensor]) -> list[str]:
    """The keys in the order the state_dict had when we saved it (kept in the metadata), else in
    the file's (name) order: safetensors itself keeps no order."""
    try:
        order = json.loads(text) if text else []
    except ValueError:
        order = []
    if not isinstance(order, list) or sorted(map(str, order)) != sorted(tensors):
        return list(tensors)
    return [str(k) for k in order]


# -- a project's weights: <project>.weights/<network>.safetensors ---------------------------


def weights_dir(project_path: str | Path) -> Path:
    """Where a project keeps its weights, whichever way they came (an import, File ▸ Load
    Weights…): ``<project>.weights/`` beside the file, one ``<network>.safetensors`` each (plain
    state_dicts any torch code can load)."""
    p = Path(project_path)
    return p.with_name(p.stem + FOLDER_SUFFIX)


def legacy_weights_file(project_path_or_folder: str | Path) -> Path:
    """The one file an import wrote before the folder: ``<project>.weights.safetensors``, keys
    ``<network>/<key>``. Still read, so older projects keep their weights."""
    p = Path(project_path_or_folder)
    folder = p if p.suffix == FOLDER_SUFFIX else weights_dir(p)
    return folder.with_name(folder.name + ".safetensors")


def save_project_weights(project_path: str | Path,
                         states: Mapping[str, Mapping[str, Tensor]],
                         info: Mapping[str, str] | None = None) -> Path:
    """Write each network's state_dict into the project's weights folder; the folder."""
    folder = weights_dir(project_path)
    for network, state in states.items():
        write_safetensors(state, folder / f"{network}.safetensors", info)
    return folder


def _folder_of(location: str | Path) -> Path | None:
    """The weights folder ``location`` names: the folder itself, or a project file's."""
    p = Path(location)
    if p.is_dir() or p.suffix == FOLDER_SUFFIX:
        return p
    if p.suffix == ".loom":
        return weights_dir(p)
    return None


def stored_weights(location: str | Path) -> dict[str, Path]:
    """network -> the file its weights come from, for a project (its file or its weights
    folder), without reading tensors: the folder's file, or the old import file's where the
    folder has none for that network or an older one."""
    folder = _folder_of(location)
    if folder is None:
        return {}
    found: dict[str, Path] = {}
    legacy = legacy_weights_file(folder)
    if legacy.is_file():
        for network in _legacy_networks(legacy):
            found[network] = legacy
    if folder.is_dir():
        for f in sorted(folder.glob("*.safetensors")):
            old = found.get(f.stem)
            if old is None or f.stat().st_mtime >= old.stat().st_mtime:
                found[f.stem] = f
    return found


def _legacy_networks(path: Path) -> list[str]:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as f:
            keys = list(f.keys())
    except Exception:  # unreadable: reading it later says why
        return [""]
    return sorted({k.partition("/")[0] for k in keys if "/" in k})


def read_project_weights(location: str | Path) -> dict[str, dict[str, Tensor]]:
    """network -> state_dict of what ``location`` holds: a project's weights folder (or its
    project file), the old one-file import weights, or any weights file (then by the names it
    gives, ``""`` for a single unnamed state_dict)."""
    folder = _folder_of(location)
    if folder is None:
        return _read(Path(location))
    stored = stored_weights(folder)
    if not stored:
        raise ProjectWeightsError(f"{folder} holds no weights",
                                  "import the model again or load weights (File ▸ Load "
                                  "Weights…) into the saved project")
    out: dict[str, dict[str, Tensor]] = {}
    cache: dict[Path, dict[str, dict[str, Tensor]]] = {}
    for network, path in stored.items():
        if path not in cache:
            cache[path] = _read(path)
        states = cache[path]
        state = states.get(network, states.get("") if len(states) == 1 else None)
        if state is not None:
            out[network] = state
    return out


def _read(path: Path) -> dict[str, dict[str, Tensor]]:
    if not path.is_file():
        raise ProjectWeightsError(f"weights file {path} does not exist",
                                  "import the model again or load weights (File ▸ Load "
                                  "Weights…) into the saved project")
    if path.suffix != ".safetensors":
        raise ProjectWeightsError(f"{path} is not a .safetensors file",
                                  "load it with File ▸ Load Weights… (it matches any "
                                  "state_dict and saves it into the project's weights folder)")
    return read_safetensors(path)


def migrate_legacy(project_path: str | Path) -> list[str]:
    """Copy the networks of the old import file into the weights folder where the folder has
    none for them (or an older one); the old file stays, so nothing is lost. The networks
    copied."""
    folder = weights_dir(project_path)
    legacy = legacy_weights_file(folder)
    moved = [n for n, p in stored_weights(folder).items() if p == legacy and n]
    if not moved:
        return []
    states = _read(legacy)
    for network in moved:
        write_safetensors(states[network], folder / f"{network}.safetensors",
                          {"migrated_from": legacy.name})
    return moved


@dataclass
class WeightsFit:
    """How a network's stored weights fit the network as it is now (after an edit: a widened
    stage): the tensors that load, and those that cannot and would start from fresh values."""

    network: str
    #: keys whose stored tensor has the network's shape: loaded
    loaded: list[str] = field(default_factory=list)
    #: (key, shape in the network, shape stored) where they differ: re-initialised
    reshaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    #: keys of the network the weights have nothing for: re-initialised
    missing: list[str] = field(default_factory=list)
    #: stored keys the network no longer has: ignored
    unused: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every tensor of the network loads and nothing stored is left over: a strict load."""
        return not self.reshaped and not self.missing and not self.unused

    @property
    def reinitialised(self) -> list[str]:
        """The network's tensors that keep their fresh initial values in a partial load."""
        return [k for k, _, _ in self.reshaped] + self.missing

    def problems(self, limit: int = 5) -> list[str]:
        """What stops a strict load, a phrase each, the first ``limit`` of each kind."""
        parts = []
        if self.reshaped:
            parts.append("shape differs for " + ", ".join(
                f"{k} ({_dims(stored)} stored, {_dims(own)} now)"
                for k, own, stored in self.reshaped[:limit]) + _more(self.reshaped, limit))
        if self.missing:
            parts.append(f"no stored weights for {', '.join(self.missing[:limit])}"
                         + _more(self.missing, limit))
        if self.unused:
            parts.append(f"stored but no longer in the network: {', '.join(self.unused[:limit])}"
                         + _more(self.unused, limit))
        return parts

    def text(self, limit: int = 5) -> str:
        """One paragraph for a dialog or a run's warning."""
        head = (f"network '{self.network}': {len(self.loaded)} of "
                f"{len(self.loaded) + len(self.reinitialised)} tensors load from the project's "
                f"weights, {len(self.reinitialised)} start from fresh values")
        return head + ("" if self.complete else ": " + "; ".join(self.problems(limit)))


def _dims(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _more(items: list, limit: int) -> str:
    return f" and {len(items) - limit} more" if len(items) > limit else ""


def stored_state(network: str, location: str | Path) -> dict[str, Tensor]:
    """The stored state_dict of ``network`` (an error naming what is there when there is none)."""
    states = read_project_weights(location)
    state = states.get(network, states.get("") if list(states) == [""] else None)
    if state is None:
        raise ProjectWeightsError(f"{location} holds no weights for network '{network}' (it "
                                  f"has {', '.join(sorted(states)) or 'none'})",
                                  "load weights for it (File ▸ Load Weights…) or import again")
    return state


def fit_of(own: Mapping[str, Tensor], network: str, state: Mapping[str, Tensor]) -> WeightsFit:
    """Compare a network's state_dict (``own``; meta tensors do) with stored weights by name."""
    fit = WeightsFit(network)
    for key, value in own.items():
        if key not in state:
            fit.missing.append(key)
        elif tuple(state[key].shape) != tuple(value.shape):
            fit.reshaped.append((key, tuple(value.shape), tuple(state[key].shape)))
        else:
            fit.loaded.append(key)
    fit.unused = [k for k in state if k not in own]
    return fit


def load_project_weights(model: nn.Module, network: str, location: str | Path, *,
                         allow_partial: bool = False) -> WeightsFit:
    """Load the stored weights of ``network`` into ``model``: what a run that starts from the
    project's weights does; the fit.

    Strict (names and shapes) unless ``allow_partial``, which the user gives after being told
    which tensors do not fit (a stage widened since the import): then every tensor whose name
    and shape agree loads and the rest keep the fresh values the model was made with.
    """
    state = stored_state(network, location)
    own = model.state_dict()
    fit = fit_of(own, network, state)
    if not fit.complete and not allow_partial:
        raise ProjectWeightsError(
            f"the weights in {location} do not fit network '{network}': "
            + "; ".join(fit.problems()),
            "the graph changed since they were saved: start with only the tensors that fit "
            "(the Training panel asks; `layerloom train --init-weights --partial-weights`), "
            "train from scratch, or load or import them again")
    dtypes = {k: v.dtype for k, v in own.items()}
    chosen = {k: state[k] for k in fit.loaded}
    model.load_state_dict({k: v.to(dtypes[k]) if v.dtype != dtypes[k] and v.is_floating_point()
                           else v for k, v in chosen.items()}, strict=fit.complete)
    return fit


def copy_project_weights(old_project: str | Path, new_project: str | Path) -> list[str]:
    """Save As (or an unsaved project's first save) keeps the weights: every network stored at
    ``old_project`` (a project file or a weights folder) is written into ``new_project``'s
    folder, replacing what a file overwritten there had (the new file is this project now);
    the old folder keeps its own. The networks copied."""
    if not stored_weights(old_project):
        return []
    if weights_dir(old_project).resolve() == weights_dir(new_project).resolve():
        return []
    states = {n: sd for n, sd in read_project_weights(old_project).items() if n}
    save_project_weights(new_project, states, {"copied_from": str(weights_dir(old_project))})
    return list(states)


__all__ = ["FOLDER_SUFFIX", "NETWORKS_MARK", "ORDER_MARK", "ProjectWeightsError", "WeightsFit",
           "copy_project_weights", "fit_of", "legacy_weights_file", "load_project_weights",
           "migrate_legacy", "read_project_weights", "read_safetensors", "save_project_weights",
           "stored_state", "stored_weights", "weights_dir", "write_safetensors"]
