"""What only the app adds to a recipe: extra samples the dashboard shows and train.py leaves out.

The recipes (copied into train.py) hold the training both share; :func:`app_recipe` subclasses
one for the runner with the app's extras, so the exported script stays the core loop.
"""

from __future__ import annotations

import torch

from .engine import Recipe, first


class ConfusionMatrix(Recipe):
    """A classifier's confusion matrix over the validation split, as a ``confusion`` sample."""

    @torch.no_grad()
    def samples(self, step: int, out_dir: str | None) -> list[dict]:
        k, conf = int(self.data.info.get("num_classes", 0)), None
        for x, y in self.val_batches():  # a pass of its own: train.py's evaluate stays plain
            with self.autocast():
                logits = first(self.nets["net"](x))
            k = max(k, logits.shape[-1])
            m = torch.bincount(y * k + logits.argmax(-1), minlength=k * k).reshape(k, k).cpu()
            conf = m if conf is None or conf.shape != m.shape else conf + m
        base = getattr(super(), "samples", None)  # a recipe's own, if it makes any
        shown = base(step, out_dir) if base else []
        if conf is None:
            return shown
        labels = self.data.info.get("labels") or [str(i) for i in range(k)]
        return [*shown, {"kind": "confusion", "matrix": conf.tolist(), "labels": list(labels)[:k]}]


#: recipe name -> the app's extras for it (a mixin subclassing Recipe)
EXTRAS: dict[str, type[Recipe]] = {"classification": ConfusionMatrix}


def app_recipe(cls: type[Recipe]) -> type[Recipe]:
    """``cls`` with the app's extras (the class train.py copies when there are none)."""
    extra = EXTRAS.get(cls.name)
    return cls if extra is None else type(cls.__name__, (extra, cls), {})
