"""EfficientNet-B0 (Tan & Le 2019): the network an architecture search found, of MBConv blocks.

MBConv (inverted residual): a 1×1 convolution expands the channels ×6, a depthwise k×k
convolution filters each channel alone (cheap), squeeze-and-excitation re-weights the channels
from their global average, and a 1×1 convolution projects back down; SiLU throughout. Three block
classes cover the variants: without expansion (the first stage), and with expansion with or
without the residual (a stage's first block changes width or resolution, so it has none).
"""

from __future__ import annotations

from compiler import Graph, Project, add_block, add_network, ref

from .registry import register

# (expand ratio, kernel, stride, out channels, repeats): the B0 table of the paper
B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
      (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


def _conv_bn_act(b: Graph, src: str, name: str, act: bool = True, **conv: object) -> str:
    ids = b.chain(src, ("conv.conv2d", {**conv, "bias": False}, name),
                  ("norm.batch_norm2d", {}, f"{name}_bn"))
    if act:
        ids.append(b.chain(ids[-1], ("activation.silu", {}, f"{name}_act"))[-1])
    return ids[-1]


def _mbconv(p: Project, name: str, expand: bool, residual: bool) -> None:
    """Block params: ``channels`` (the depthwise width: input ×6, or the input when not
    expanding), ``squeeze`` (input // 4), ``out_channels``, ``kernel_size``, ``padding``,
    ``stride``."""
    params: dict[str, int] = {"channels": 96, "squeeze": 4, "out_channels": 24, "kernel_size": 3,
                              "padding": 1}
    if not residual:
        params["stride"] = 1
    b = add_block(p, name, params, description=(
        ("MBConv: 1×1 expand, " if expand else "MBConv without expansion: ")
        + "depthwise k×k, squeeze-excitation, 1×1 project"
        + (" + residual." if residual else ".")))
    x = b.add("io.block_input", "x")
    h = x
    if expand:
        h = _conv_bn_act(b, h, "expand", out_channels=ref("channels"), kernel_size=1)
    dw: dict[str, object] = {"out_channels": ref("channels"), "kernel_size": ref("kernel_size"),
                             "padding": ref("padding"), "groups": ref("channels")}
    if not residual:
        dw["stride"] = ref("stride")
    h = _conv_bn_act(b, h, "depthwise", **dw)
    scale = b.chain(h, ("pool.adaptive_avg_pool2d", {"output_size": 1}, "squeeze_pool"),
                    ("conv.conv2d", {"out_channels": ref("squeeze"), "kernel_size": 1},
                     "se_reduce"),
                    ("activation.silu", {}, "se_act"),
                    ("conv.conv2d", {"out_channels": ref("channels"), "kernel_size": 1},
                     "se_expand"),
                    ("activation.sigmoid", {}, "se_gate"))[-1]
    excite = b.add("merge.multiply", "excite")
    b.connect(h, excite)
    b.connect(scale, excite)
    h = _conv_bn_act(b, excite, "project", act=False, out_channels=ref("out_channels"),
                     kernel_size=1)
    if residual:
        add = b.add("merge.add", "residual")
        b.connect(h, add)
        b.connect(x, add)
        h = add
    b.connect(h, b.add("io.block_output", "y"))


def efficientnet(p: Project, *, stages: tuple, stem: int, head: int, size: int, classes: int,
                 dropout: float) -> None:
    _mbconv(p, "MBConv1", expand=False, residual=False)
    _mbconv(p, "MBConv", expand=True, residual=False)
    _mbconv(p, "MBConvResidual", expand=True, residual=True)
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 3, size, size])
    h = _conv_bn_act(g, x, "stem", out_channels=stem, kernel_size=3, stride=2, padding=1)
    c = stem
    for i, (e, k, s, out, n) in enumerate(stages, start=1):
        base = {"kernel_size": k, "padding": k // 2, "out_channels": out}
        first = {**base, "channels": c * e, "squeeze": max(1, c // 4), "stride": s}
        block = "MBConv1" if e == 1 else "MBConv"
        if c == out and s == 1 and e != 1:
            block = "MBConvResidual"
            first.pop("stride")
        h = g.chain(h, ("block.block", {"block": block, "args": first}, f"stage{i}_first"))[-1]
        c = out
        if n > 1:
            rest = {**base, "channels": c * e, "squeeze": max(1, c // 4)}
            h = g.chain(h, ("block.block", {"block": "MBConvResidual", "repeat": n - 1,
                                            "args": rest}, f"stage{i}"))[-1]
    h = _conv_bn_act(g, h, "head", out_channels=head, kernel_size=1)
    g.chain(h, ("pool.adaptive_avg_pool2d", {"output_size": 1}, "avgpool"),
            ("shape.flatten", {}, "flatten"), ("norm.dropout", {"p": dropout}, "dropout"),
            ("linear.linear", {"out_features": classes}, "classifier"),
            ("io.output", {}, "logits"))


@register("efficientnet-b0", "EfficientNet", "reference",
          "EfficientNet-B0, the baseline a neural architecture search found and compound scaling "
          "grows into B1-B7: a 3×3 stem, 16 MBConv blocks (inverted residuals with "
          "squeeze-and-excitation and SiLU) in seven stages, a 1×1 head to 1280 channels, "
          "dropout 0.2 and a 1000-way Linear. Input [N, 3, 224, 224]. Bring your own "
          "ImageNet-style data. It stands for what NAS finds until the search feature lands.",
          "classification", None, layout="LR")
def efficientnet_b0() -> Project:
    p = Project()
    efficientnet(p, stages=B0, stem=32, head=1280, size=224, classes=1000, dropout=0.2)
    return p


@register("efficientnet-small", "EfficientNet", "small",
          "EfficientNet's MBConv design at toy size for 32×32 images: a stem, four stages of "
          "inverted-residual blocks with squeeze-and-excitation and SiLU, and a small head. "
          "Classifies the built-in coloured shapes (4 classes).",
          "classification", "shapes32", layout="LR")
def efficientnet_small() -> Project:
    p = Project()
    efficientnet(p, stages=((1, 3, 1, 8, 1), (4, 3, 2, 16, 2), (4, 5, 2, 24, 2),
                            (4, 3, 1, 32, 1)), stem=16, head=128, size=32, classes=4,
                 dropout=0.1)
    return p
