"""Search templates: projects that declare a search space, so "Search" works on them at once.

* ``nas-digits``: an MLP on the 8×8 digits whose hidden layers are one block slot: the block
  (Dense+ReLU, Dense+GELU or Dense+Tanh: the activation), its ``repeat`` (depth 1-3) and its
  ``width`` (4-256) are searched; 144 architectures, a search of 20 trials takes under a minute
  on a CPU.
* ``nas-shapes``: the EfficientNet recipe of the essay's NAS at toy size on the built-in coloured
  shapes: a stem, three stages of MBConv blocks (inverted residuals with squeeze-and-excitation),
  a head. Searched per stage: the depthwise kernel 3 or 5 (its padding moves with it: the two
  lists share one label), the expansion 1, 3 or 6 and the depth 1-3; and one width multiplier
  0.5 / 0.75 / 1 on every stage's width. The expansion is counted against a stage's width at
  multiplier 1, since a param holds one value and cannot be the product of two decisions.
"""

from __future__ import annotations

import math

from compiler import Project, add_block, add_network, ref
from compiler.project import Choice, Domain

from .efficientnet import _conv_bn_act, _mbconv
from .registry import register

ACTIVATIONS = (("DenseReLU", "activation.relu"), ("DenseGELU", "activation.gelu"),
               ("DenseTanh", "activation.tanh"))
#: From 4 (a few hundred params, ~0.5-0.6 accuracy) to 256, about 1.4x apart: the front of
#: accuracy against params then spans a real trade-off (widths from 16 up all reach ~0.9, so a
#: space starting there had a front decided by its smallest net), and widths 112-192 at depth 1
#: beat the hand-made mlp-digits (0.975 at 17,226 params, 300 steps) with fewer params.
WIDTHS = (4, 8, 12, 16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 256)


def _choice(p: Project, label: str, scope: str, node: str, param: str, **domain: object) -> None:
    p.search.choices.append(Choice(label=label, scope=scope, node=node, param=param,
                                   domain=Domain(**domain)))  # type: ignore[arg-type]


@register("nas-digits", "Search", "small",
          "A search space, not one network: an MLP on the 8×8 digits whose hidden layers are "
          "one block slot. Searched: the activation (which dense block fills the slot: ReLU, "
          "GELU or Tanh), the depth (the block's repeat, 1-3) and the width (4-256). 144 "
          "architectures; run Search and watch accuracy against parameters in a minute.",
          "classification", "digits-flat", layout="LR")
def nas_digits() -> Project:
    p = Project()
    for name, act in ACTIVATIONS:
        b = add_block(p, name, {"width": 64}, description=f"Linear(width) then {act}.")
        b.chain(("io.block_input", {}, "x"), ("linear.linear", {"out_features": ref("width")},
                                              "fc"), (act, {}, "act"), ("io.block_output", {}, "y"))
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 64])
    hidden = g.chain(x, ("block.block", {"block": "DenseReLU", "repeat": 2,
                                         "args": {"width": 64}}, "hidden"))[-1]
    g.chain(hidden, ("linear.linear", {"out_features": 10}, "head"), ("io.output", {}, "logits"))
    _choice(p, "activation", "net", hidden, "block", kind="values",
            values=[name for name, _ in ACTIVATIONS])
    _choice(p, "depth", "net", hidden, "repeat", kind="int", low=1, high=3)
    _choice(p, "width", "net", hidden, "args.width", kind="values", values=list(WIDTHS))
    p.search.strategy, p.search.trials, p.search.steps = "evolution", 20, 300
    return p


#: Base widths (multiplier 1) of the stem, the three stages and the head; stage strides.
STEM, STAGES, HEAD, STRIDES = 8, (12, 16, 24), 48, (2, 2, 1)
MULTIPLIERS = (0.5, 0.75, 1.0)
EXPANSIONS = (1, 3, 6)


def _scaled(width: int) -> list[int]:
    """A width under each multiplier, to an even number (distinct for every base width here)."""
    return [max(2, math.floor(width * m / 2 + 0.5) * 2) for m in MULTIPLIERS]


@register("nas-shapes", "Search", "small",
          "The essay's architecture search at toy size: an EfficientNet-style space of MBConv "
          "stages on the built-in coloured shapes (32×32, 4 classes). Searched per stage: "
          "kernel 3 or 5, expansion 1, 3 or 6 and depth 1-3; and a width multiplier of 0.5, "
          "0.75 or 1. About 17,500 architectures; a trial is 80 steps of batch 32 (5-7 s of "
          "training on an idle CPU core, so 20 trials take a few minutes).",
          "classification", "shapes32", layout="LR")
def nas_shapes() -> Project:
    p = Project()
    _mbconv(p, "MBConvResidual", expand=True, residual=True)
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 3, 32, 32])
    h = _conv_bn_act(g, x, "stem", out_channels=STEM, kernel_size=3, stride=2, padding=1)
    _choice(p, "width", "net", g.find("stem"), "out_channels", kind="values",
            values=_scaled(STEM))
    for i, (width, stride) in enumerate(zip(STAGES, STRIDES, strict=True), start=1):
        h = _conv_bn_act(g, h, f"stage{i}_down", out_channels=width, kernel_size=3,
                         stride=stride, padding=1)
        _choice(p, "width", "net", g.find(f"stage{i}_down"), "out_channels", kind="values",
                values=_scaled(width))
        args = {"channels": width * 6, "squeeze": max(1, width // 4), "out_channels": width,
                "kernel_size": 3, "padding": 1}
        h = g.chain(h, ("block.block", {"block": "MBConvResidual", "repeat": 1, "args": args},
                        f"stage{i}"))[-1]
        _choice(p, "width", "net", h, "args.out_channels", kind="values", values=_scaled(width))
        _choice(p, f"stage{i}_kernel", "net", h, "args.kernel_size", kind="values", values=[3, 5])
        _choice(p, f"stage{i}_kernel", "net", h, "args.padding", kind="values", values=[1, 2])
        _choice(p, f"stage{i}_expand", "net", h, "args.channels", kind="values",
                values=[width * e for e in EXPANSIONS])
        _choice(p, f"stage{i}_depth", "net", h, "repeat", kind="int", low=1, high=3)
    h = _conv_bn_act(g, h, "head", out_channels=HEAD, kernel_size=1)
    _choice(p, "width", "net", g.find("head"), "out_channels", kind="values", values=_scaled(HEAD))
    g.chain(h, ("pool.adaptive_avg_pool2d", {"output_size": 1}, "avgpool"),
            ("shape.flatten", {}, "flatten"), ("linear.linear", {"out_features": 4}, "classifier"),
            ("io.output", {}, "logits"))
    # A short proxy that still ranks: 80 steps of batch 32 with a warmed-up cosine from 3e-3
    # (against a constant 1e-3 it lifted 3 of 5 sampled architectures by 0.08-0.23 accuracy at
    # the same budget, the other two within 0.03, away from the near-chance regime where a
    # ranking is noise), and a single evaluation at the end: accuracy after 20 or 40 steps is
    # still near chance (0.23-0.27 for nets that end at 0.65), so successive halving pruned on
    # noise, and the evaluations cost time.
    # A search with more steps (--steps) evaluates, and can prune, every 80 steps.
    p.training.hyper = {"batch_size": 32, "eval_every": 80, "lr": 3e-3, "schedule": "cosine",
                        "warmup_steps": 8}
    p.search.strategy, p.search.trials, p.search.steps = "evolution", 20, 80
    return p
