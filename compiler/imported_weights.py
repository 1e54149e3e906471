"""The names the import code used for its weights, kept for callers and older projects.

An import's weights now live where every other weights of a project do, in the project's
weights folder, ``<project>.weights/<network>.safetensors``, read and written by
:mod:`compiler.project_weights` (the one module for that layout). Imports before it wrote one
file, ``NAME.weights.safetensors`` (keys ``<network>/<key>``); that module still reads it where
the folder has no newer file for a network, and its ``migrate_legacy`` copies it into the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from compiler.project_weights import ProjectWeightsError as ImportedWeightsError
from compiler.project_weights import (
    legacy_weights_file,
    load_project_weights,
    read_project_weights,
    weights_dir,
    write_safetensors,
)

#: The old single file's suffix (``NAME.weights.safetensors``), still read.
SUFFIX = ".weights.safetensors"


def weights_path(project_path: str | Path) -> Path:
    """Where the weights of ``project_path`` live: its weights folder."""
    return weights_dir(project_path)


def save_weights(path: str | Path, states: Mapping[str, Mapping[str, torch.Tensor]],
                 info: Mapping[str, str] | None = None) -> Path:
    """Several networks' state_dicts in one file at ``path`` (``<network>/<key>``), for
    ``layerloom import --weights FILE``; :func:`read_weights` reads it back."""
    return write_safetensors({k: dict(v) for k, v in states.items()}, path, info)


def read_weights(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """network -> state_dict from a weights folder, a project file or a weights file."""
    return read_project_weights(path)


def load_into(model: torch.nn.Module, network: str, path: str | Path) -> None:
    """Load the stored weights of ``network`` into ``model``, strictly (names and shapes)."""
    load_project_weights(model, network, path)


__all__ = ["ImportedWeightsError", "SUFFIX", "legacy_weights_file", "load_into", "read_weights",
           "save_weights", "weights_path"]
