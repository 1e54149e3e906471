"""Key maps: load published checkpoints (Hugging Face GPT-2 and BERT, torchvision EfficientNet)
into the reference templates whose names cannot equal the published ones.

ResNet, VGG and AlexNet need none: their names equal torchvision's. For the rest, a map (data,
in :mod:`.tables`; the format in :mod:`.convert`) says how each tensor of ours is made from the
published tensors. Three ways in:

* :func:`load_pretrained` (``source="hf-gpt2"``): convert and load strictly, with a report;
* :func:`adapt`: what File ▸ Load weights… (``compiler.weights``) calls: a file laid out as a known
  map names is renamed to our keys before matching;
* :func:`export_files`: the export writes ``pretrained.py`` (the converter and the maps that fit
  its networks, needing only torch) beside ``model.py``, and says so in the README.
"""

from __future__ import annotations

import pprint
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from nodes.catalogue import Registry

from . import convert as _convert
from .convert import Conversion, KeyMapError, convert, covers, load_with_map
from .tables import ALL

if TYPE_CHECKING:
    from compiler.codegen import PythonSource

#: Key maps by source name ("hf-gpt2", "hf-bert", "torchvision-efficientnet_b0").
KEYMAPS: Registry[dict[str, Any]] = Registry("key map")
for _map in ALL:
    KEYMAPS.add(_map["name"], _map)
    _convert.KEYMAPS[_map["name"]] = _map  # so convert.load_pretrained knows them too


def load_pretrained(model: nn.Module, state_dict: Mapping[str, Tensor], source: str = "hf-gpt2",
                    *, strict: bool = True) -> Conversion:
    """Load a published checkpoint laid out as ``source`` into ``model`` (strictly); the report.

    Raises :class:`KeyMapError` when a tensor of ours cannot be made, or (``strict``) when the
    file holds tensors the map neither uses nor drops on purpose.
    """
    return load_with_map(model, state_dict, KEYMAPS.get(source), strict=strict)


def find(ours: Mapping[str, Tensor], theirs: Mapping[str, Tensor]) -> Conversion | None:
    """The conversion by the first map that fits the model and makes every tensor of ours from
    ``theirs``, or None (the file is no published layout we know, or not for this model)."""
    for keymap in KEYMAPS.entries():
        if covers(keymap, ours):
            report = convert(keymap, ours, theirs)
            if report.complete:
                return report
    return None


def adapt(ours: Mapping[str, Tensor], theirs: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    """``theirs`` renamed to our keys when a known key map converts it completely; otherwise
    ``theirs`` as it is (a file that already names our keys is never converted). The file's
    tensors that the map did not use stay, under their names, so a report can list them."""
    if all(key in theirs for key in ours):
        return theirs
    report = find(ours, theirs)
    if report is None:
        return theirs
    return {**report.state, **{k: theirs[k] for k in report.unused if k not in report.state}}


README = """
## Published weights

`pretrained.py` loads a published checkpoint whose names differ from `model.py`'s:
{titles}.

Its key map is data: for each tensor of the model, the published tensor(s) it is made from and
how (`transpose` for Hugging Face's `Conv1D`, `cat` to pack separate q, k, v into one
`in_proj`); buffers that the model recomputes (causal masks, `position_ids`) are dropped. It
loads with `strict=True` and returns a report of what it left out (`strict=False` accepts a
file with extra heads).

```
import torch
from model import NETWORKS
from pretrained import load_pretrained

model = NETWORKS["{network}"]()
state = torch.load("pytorch_model.bin", weights_only=True)  # or safetensors.torch.load_file
print(load_pretrained(model, state, source="{source}").text())
```
"""


def _literal(keymap: Mapping[str, Any]) -> str:
    """``KEYMAPS[name] = {...}`` as Python literals, one rule a line, within 100 columns."""
    lines = [f"KEYMAPS[{keymap['name']!r}] = {{"]
    for name, value in keymap.items():
        if not isinstance(value, list) or not value:
            lines.append(f"    {name!r}: {value!r},")
            continue
        lines.append(f"    {name!r}: [")
        for item in value:
            one = repr(item)
            lines.append(f"        {one}," if len(one) < 91 else
                         textwrap.indent(pprint.pformat(item, width=91), " " * 8) + ",")
        lines.append("    ],")
    return "\n".join([*lines, "}", ""])


def export_files(source: PythonSource, files: Mapping[str, str]) -> dict[str, str]:
    """``pretrained.py`` (and ``README.md`` with a section on it) when a key map fits one of the
    exported networks; else nothing. The networks are made on the meta device (no weights)."""
    import torch

    from compiler.build import build

    try:
        with torch.device("meta"):
            built = build(source)
            keys = {name: built.instantiate(name).state_dict() for name in built.networks}
    except Exception:  # noqa: BLE001 - an optional extra: a network that will not build gets none
        return {}
    fitting = {name: [m for m in KEYMAPS.entries() if covers(m, state)]
               for name, state in keys.items()}
    maps = {m["name"]: m for found in fitting.values() for m in found}
    if not maps:
        return {}
    network, first = next((n, found[0]) for n, found in fitting.items() if found)
    text = Path(_convert.__file__).read_text(encoding="utf-8").rstrip("\n")
    text += ("\n\n\n# The key maps that fit this export's networks (data, in the format above).\n"
             + "\n".join(_literal(m) for m in maps.values()))
    readme = files.get("README.md") or ("# Exported from Layerloom\n\n* `model.py`: the "
                                         "network(s) (`NETWORKS` maps names to classes).\n"
                                         "* `pretrained.py`: published weights into them.\n")
    readme = readme.rstrip("\n") + "\n" + README.format(
        titles="; ".join(m["title"] for m in maps.values()), network=network,
        source=first["name"])
    return {"pretrained.py": text, "README.md": readme}


__all__ = ["KEYMAPS", "Conversion", "KeyMapError", "adapt", "convert", "covers", "export_files",
           "find", "load_pretrained", "load_with_map"]
