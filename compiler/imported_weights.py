"""The weights an import brings, kept beside the project: ``NAME.weights.safetensors``.

safetensors holds tensors and a string table only, so reading one never runs code (no pickle).
Keys are ``<network>/<state_dict key of the built network>``; the metadata records the format.
The built model loads them strictly (``BuiltModule.instantiate(name, weights=...)``), and
training can start from them (``layerloom train --init-weights FILE``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

FORMAT = "layerloom-weights/1"
SUFFIX = ".weights.safetensors"


class ImportedWeightsError(Exception):
    """A weights file that cannot be read or does not fit the network; says which and how."""


def weights_path(project_path: str | Path) -> Path:
    """Where the weights of ``project_path`` live: beside it, same stem."""
    p = Path(project_path)
    return p.with_name(p.name.removesuffix(p.suffix) + SUFFIX)


def save_weights(path: str | Path, states: Mapping[str, Mapping[str, torch.Tensor]],
                 info: Mapping[str, str] | None = None) -> Path:
    """Write the state_dicts of several networks (name -> state_dict) into one file."""
    from safetensors.torch import save_file

    flat: dict[str, torch.Tensor] = {}
    for net, state in states.items():
        for key, value in state.items():
            # clone: safetensors refuses tensors that share memory (tied weights)
            flat[f"{net}/{key}"] = value.detach().to("cpu").contiguous().clone()
    meta = {"format": FORMAT, "networks": json.dumps(sorted(states))}
    meta.update({k: str(v) for k, v in (info or {}).items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(flat, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_weights(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """network -> state_dict from a file written by :func:`save_weights`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise ImportedWeightsError(f"weights file {p} does not exist; import the model again or "
                                   "pick the file that came with the project")
    try:
        flat = load_file(str(p))
    except (SafetensorError, OSError, ValueError) as err:
        raise ImportedWeightsError(f"{p} is not a readable safetensors file: {err}") from None
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        net, sep, name = key.partition("/")
        if not sep:
            raise ImportedWeightsError(f"{p}: key {key!r} names no network "
                                       "(expected 'network/param')")
        out.setdefault(net, {})[name] = value
    return out


def load_into(model: nn.Module, network: str, path: str | Path) -> None:
    """Load the saved weights of ``network`` into ``model``, strictly (names and shapes)."""
    states = read_weights(path)
    if network not in states:
        raise ImportedWeightsError(f"{path} holds no weights for network '{network}' (it has "
                                   f"{', '.join(sorted(states)) or 'none'}); import again")
    state = states[network]
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
        raise ImportedWeightsError(
            f"the weights in {path} do not fit network '{network}': " + "; ".join(parts)
            + ". The graph changed since they were saved: train from scratch (untick 'start "
            "from imported weights') or import again")
    model.load_state_dict(state, strict=True)
