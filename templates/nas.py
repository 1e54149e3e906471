"""Search templates: projects that declare a search space, so "Search" works on them at once.

* ``nas-digits``: "an MLP or a small CNN" on the 8×8 digits as one block slot of layers: the block
  (Dense or Conv3x3 layers, each with ReLU, GELU or Tanh), its ``repeat`` (depth 1-3) and its
  ``width`` (units of a dense layer, channels of a conv layer; 4-128) are searched; 180
  architectures, a search of 20 trials takes a few minutes on a CPU.
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

ACTIVATIONS = (("ReLU", "activation.relu"), ("GELU", "activation.gelu"),
               ("Tanh", "activation.tanh"))
#: The layers a slot can hold: a name and the nodes of one layer before its activation (a
#: dense layer flattens first, a no-op after the first layer, so both kinds take the 1×8×8
#: image) and after it (a conv layer halves the image: 8×8, 4×4, 2×2, 1×1 for depths 1-3, so
#: the head stays small: 10·width·16 weights after one conv layer).
LAYERS: tuple[tuple[str, tuple, tuple], ...] = (
    ("Dense", (("shape.flatten", {}, "flatten"),
               ("linear.linear", {"out_features": ref("width")}, "fc")), ()),
    ("Conv", (("conv.conv2d", {"out_channels": ref("width"), "kernel_size": 3, "padding": 1},
               "conv"),), (("pool.max_pool2d", {"kernel_size": 2}, "pool"),)),
)
#: Units of a dense layer, channels of a conv layer: from 4 (310-690 params, 0.47-0.91 accuracy)
#: to 128 (~0.3M params for three conv layers), about 1.4x apart, so the front of accuracy
#: against params spans a real trade-off. Trained for 300 steps, one conv layer of 24-96
#: channels beats the hand-made mlp-digits (0.975 at 17,226 params) with 4-16k params (0.981-
#: 0.992); the best dense layers only tie it (every architecture measured: see
#: benchmarks/bench_search.py).
WIDTHS = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128)


def _choice(p: Project, label: str, scope: str, node: str, param: str, **domain: object) -> None:
    p.search.choices.append(Choice(label=label, scope=scope, node=node, param=param,
                                   domain=Domain(**domain)))  # type: ignore[arg-type]


def layer_blocks(p: Project) -> list[str]:
    """Add one block per layer kind and activation (DenseReLU ... ConvTanh); their names, the
    values of the slot. Every block has ports x -> y and one param, ``width``."""
    names: list[str] = []
    for kind, before, after in LAYERS:
        for act_name, act in ACTIVATIONS:
            name = kind + act_name
            what = "Flatten, Linear(width)" if kind == "Dense" else "Conv3x3(width)"
            pool = ", then a 2×2 max pool" if after else ""
            b = add_block(p, name, {"width": 64}, description=f"{what}, then {act}{pool}.")
            b.chain(("io.block_input", {}, "x"), *before, (act, {}, "act"), *after,
                    ("io.block_output", {}, "y"))
            names.append(name)
    return names


@register("nas-digits", "Search", "small",
          "A search space, not one network: an MLP or a small CNN on the 8×8 digits, its hidden "
          "layers one block slot. Searched: the layer (which block fills the slot: Dense or "
          "Conv3x3 with a 2×2 pool, each with ReLU, GELU or Tanh), the depth (the block's "
          "repeat, 1-3) and the width (units or channels, 4-128). 180 architectures; run "
          "Search and watch accuracy against parameters in a few minutes.",
          "classification", "digits", layout="LR")
def nas_digits() -> Project:
    p = Project()
    names = layer_blocks(p)
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 1, 8, 8])
    hidden = g.chain(x, ("block.block", {"block": "DenseReLU", "repeat": 2,
                                         "args": {"width": 64}}, "hidden"))[-1]
    g.chain(hidden, ("shape.flatten", {}, "flatten"),
            ("linear.linear", {"out_features": 10}, "head"), ("io.output", {}, "logits"))
    _choice(p, "layer", "net", hidden, "block", kind="values", values=names)
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
