"""A project's weights, whichever way they came: ``<project>.weights/<network>.safetensors``.

One folder beside the project file, one plain safetensors state_dict per network (any torch code
loads it), is where an import's weights go (``ImportResult.save``) and where File ▸ Load
Weights… keeps what it matched; training starts from it (the Training panel's "start from the
project's weights", ``layerloom train --init-weights``). This module is the one that reads and
writes that layout, and the safetensors files of :mod:`compiler.weights` (which matches files of
other layouts to a network, and re-exports these names).

Imports before the folder wrote one file, ``<project>.weights.safetensors`` (keys
``<network>/<key>``). It is still read: per network, the newer of the folder's file and the old
one's wins, and :func:`migrate_legacy` copies what only the old file holds into the folder,
keeping the old file, so nothing is lost. safetensors holds tensors and a string table only, so
reading never runs code; nothing here imports the rest of the compiler (``compiler.build`` loads
a network's weights through this module without a cycle).
"""

from __future__ import annotations

import json
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


def load_project_weights(model: nn.Module, network: str, location: str | Path) -> None:
    """Load the stored weights of ``network`` into ``model``, strictly (names and shapes): what
    a run that starts from the project's weights does."""
    states = read_project_weights(location)
    state = states.get(network, states.get("") if list(states) == [""] else None)
    if state is None:
        raise ProjectWeightsError(f"{location} holds no weights for network '{network}' (it "
                                  f"has {', '.join(sorted(states)) or 'none'})",
                                  "load weights for it (File ▸ Load Weights…) or import again")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:5])}")
        if wrong:
            parts.append("shape differs for " + ", ".join(
                f"{k} ({tuple(state[k].shape)} vs {tuple(own[k].shape)})" for k in wrong[:5]))
        raise ProjectWeightsError(
            f"the weights in {location} do not fit network '{network}': " + "; ".join(parts),
            "the graph changed since they were saved: train from scratch (untick 'start from "
            "the project's weights') or load or import them again")
    dtypes = {k: v.dtype for k, v in own.items()}
    model.load_state_dict({k: v.to(dtypes[k]) if v.dtype != dtypes[k] and v.is_floating_point()
                           else v for k, v in state.items()}, strict=True)


__all__ = ["FOLDER_SUFFIX", "NETWORKS_MARK", "ORDER_MARK", "ProjectWeightsError",
           "legacy_weights_file", "load_project_weights", "migrate_legacy", "read_project_weights",
           "read_safetensors", "save_project_weights", "stored_weights", "weights_dir",
           "write_safetensors"]
