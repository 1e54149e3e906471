"""ResNet (He et al. 2015): residual blocks, y = F(x) + x, so very deep networks still train.

Each stage is one block node: a Stage block (the first residual block changes the width or the
resolution, so its shortcut is a 1×1 projection; the rest repeat an identity block), or, where
nothing changes, the identity block with ``repeat``. The block params ``planes`` and ``stride``
let one block class serve every stage, and the module names equal torchvision's, so its
checkpoints load with ``strict=True``.
"""

from __future__ import annotations

from compiler import Graph, Project, add_block, add_network, ref

from .registry import register

DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
          50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)),
          152: ("bottleneck", (3, 8, 36, 3))}


def _conv_bn(b: Graph, src: str, name: str, out: object, k: int, stride: object = 1,
             relu: bool = True) -> str:
    conv = {"out_channels": out, "kernel_size": k, "bias": False}
    if k > 1:
        conv["padding"] = k // 2
    if stride != 1:
        conv["stride"] = stride
    ids = b.chain(src, ("conv.conv2d", conv, f"conv{name}"), ("norm.batch_norm2d", {}, f"bn{name}"))
    if relu:
        ids.append(b.chain(ids[-1], ("activation.relu", {}, f"relu{name}"))[-1])
    return ids[-1]


def residual_block(p: Project, name: str, kind: str, projection: bool) -> None:
    """BasicBlock (two 3×3) or Bottleneck (1×1 reduce, 3×3, 1×1 expand ×4, stride on the 3×3).

    The projection variant's shortcut is a ``downsample`` block node (1×1 conv + BN), which
    codegen writes as ``nn.Sequential``: the same submodule names as torchvision's."""
    params: dict[str, int] = {"planes": 64}
    if kind == "bottleneck":
        params["out_channels"] = 256
    if projection:
        params["stride"] = 1
    what = "two 3×3 convs" if kind == "basic" else "1×1 reduce, 3×3, 1×1 expand"
    shortcut = "strided, 1×1 projection shortcut" if projection else "identity shortcut"
    b = add_block(p, name, params, description=f"Residual block: {what}; {shortcut}.")
    x = b.add("io.block_input", "x")
    stride = ref("stride") if projection else 1
    if kind == "basic":
        out_ch: object = ref("planes")
        h = _conv_bn(b, x, "1", ref("planes"), 3, stride)
        h = _conv_bn(b, h, "2", ref("planes"), 3, relu=False)
    else:
        out_ch = ref("out_channels")
        h = _conv_bn(b, x, "1", ref("planes"), 1)
        h = _conv_bn(b, h, "2", ref("planes"), 3, stride)
        h = _conv_bn(b, h, "3", out_ch, 1, relu=False)
    short = x
    if projection:
        short = b.chain(x, ("block.block", {"block": "Downsample", "args": {
            "out_channels": out_ch, "stride": ref("stride")}}, "downsample"))[-1]
    add = b.add("merge.add", "residual")
    b.connect(h, add)
    b.connect(short, add)
    b.chain(add, ("activation.relu", {}, "relu"), ("io.block_output", {}, "y"))


def downsample_block(p: Project) -> None:
    """The projection shortcut: a strided 1×1 convolution and batch norm."""
    b = add_block(p, "Downsample", {"out_channels": 64, "stride": 1},
                  description="Projection shortcut: a strided 1×1 convolution and batch norm, "
                  "so the shortcut matches the residual branch's width and resolution.")
    conv = {"out_channels": ref("out_channels"), "kernel_size": 1, "stride": ref("stride"),
            "bias": False}
    b.chain(b.add("io.block_input", "x"), ("conv.conv2d", conv, "conv"),
            ("norm.batch_norm2d", {}, "bn"), ("io.block_output", {}, "y"))


def stage_block(p: Project, name: str, cls: str, bottleneck: bool) -> None:
    """A stage that changes width or resolution: one projection block, then ``blocks``
    identity blocks; a chain, so codegen writes it as one ``nn.Sequential`` (torchvision's
    ``layer2.0``, ``layer2.1``, ...)."""
    params: dict[str, int] = {"planes": 64}
    if bottleneck:
        params["out_channels"] = 256
    params.update({"stride": 1, "blocks": 1})
    b = add_block(p, name, params, description=f"One ResNet stage: a {cls}Down (projection "
                  f"shortcut, carries the stride), then `blocks` × {cls}.")
    args = {k: ref(k) for k in params if k != "blocks"}
    rest = {k: v for k, v in args.items() if k != "stride"}
    b.chain(b.add("io.block_input", "x"),
            ("block.block", {"block": cls + "Down", "args": args}, "first"),
            ("block.block", {"block": cls, "repeat": ref("blocks"), "args": rest}, "rest"),
            ("io.block_output", {}, "y"))


def resnet(p: Project, *, kind: str, stages: tuple[int, ...], width: int, size: int,
           classes: int, imagenet_stem: bool) -> None:
    """torchvision's layout: ``conv1``, ``bn1``, ``relu``, ``maxpool``, ``layer1``..``layer4``
    (each one block node: a stage, or a repeated identity block), ``avgpool``, ``fc``."""
    cls = "BasicBlock" if kind == "basic" else "Bottleneck"
    expansion = 1 if kind == "basic" else 4
    downsample_block(p)
    residual_block(p, cls, kind, projection=False)
    residual_block(p, cls + "Down", kind, projection=True)
    stage_block(p, cls + "Stage", cls, kind == "bottleneck")
    g = add_network(p, "net")
    x = g.add("io.input", "x", shape=["N", 3, size, size])
    if imagenet_stem:
        h = g.chain(x, ("conv.conv2d", {"out_channels": width, "kernel_size": 7, "stride": 2,
                                        "padding": 3, "bias": False}, "conv1"),
                    ("norm.batch_norm2d", {}, "bn1"), ("activation.relu", {}, "relu"),
                    ("pool.max_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1},
                     "maxpool"))[-1]
    else:  # small images: a 3×3 stem keeps the resolution
        h = g.chain(x, ("conv.conv2d", {"out_channels": width, "kernel_size": 3, "padding": 1,
                                        "bias": False}, "conv1"),
                    ("norm.batch_norm2d", {}, "bn1"), ("activation.relu", {}, "relu"))[-1]
    c_in = width
    for i, n in enumerate(stages, start=1):
        planes = width * 2 ** (i - 1)
        args: dict = {"planes": planes}
        if expansion > 1:
            args["out_channels"] = planes * expansion
        stride = 1 if i == 1 else 2
        if stride != 1 or c_in != planes * expansion:
            node = {"block": cls + "Stage", "args": {**args, "stride": stride, "blocks": n - 1}}
        else:
            node = {"block": cls, "repeat": n, "args": args}
        h = g.chain(h, ("block.block", node, f"layer{i}"))[-1]
        c_in = planes * expansion
    g.chain(h, ("pool.adaptive_avg_pool2d", {"output_size": 1}, "avgpool"),
            ("shape.flatten", {}, "flatten"), ("linear.linear", {"out_features": classes}, "fc"),
            ("io.output", {}, "logits"))


def _reference(depth: int):
    def build() -> Project:
        p = Project()
        kind, stages = DEPTHS[depth]
        resnet(p, kind=kind, stages=stages, width=64, size=224, classes=1000, imagenet_stem=True)
        return p
    return build


for _depth, (_kind, _stages) in DEPTHS.items():
    _block = ("BasicBlocks (two 3×3 convolutions)" if _kind == "basic" else
              "Bottleneck blocks (1×1 reduce, 3×3, 1×1 expand ×4)")
    register(f"resnet{_depth}", "ResNet", "reference",
             f"ResNet-{_depth} (torchvision's): a 7×7 stem, four stages of {_block} "
             f"{'/'.join(map(str, _stages))}, global average pooling and a 1000-way Linear. The "
             "identity shortcut lets gradients skip layers, so depth helps instead of hurting. "
             "Input [N, 3, 224, 224]. Bring your own ImageNet-style data.",
             "classification", None, layout="LR")(_reference(_depth))


@register("resnet18-small", "ResNet", "small",
          "ResNet-18's four stages of two BasicBlocks at a quarter of the width (16-32-64-128), "
          "with a 3×3 stem for 32×32 images. Classifies the built-in coloured shapes (4 "
          "classes).",
          "classification", "shapes32", layout="LR")
def resnet18_small() -> Project:
    p = Project()
    resnet(p, kind="basic", stages=(2, 2, 2, 2), width=16, size=32, classes=4, imagenet_stem=False)
    return p
