"""VGG (Simonyan & Zisserman 2014): depth from stacks of 3×3 convolutions, one block per stage."""

from __future__ import annotations

from compiler import Project, add_block, add_network, ref

from .registry import register

STAGES = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


def vgg(p: Project, *, stages: tuple[int, ...], widths: tuple[int, ...], batch_norm: bool,
        size: int, pool_size: int, hidden: int, classes: int) -> None:
    """torchvision's layout: a ``features`` block (stage i: ``stages[i]`` × (3×3 conv [+ BN] +
    ReLU) as one block node, then a 2×2 max pool), ``avgpool``, and a ``classifier`` block of
    three dense layers. Both blocks are chains, which codegen writes as ``nn.Sequential``, so
    the state_dict keys equal torchvision's (``features.0.weight``, ``classifier.6.weight``)."""
    block = "ConvBNReLU" if batch_norm else "ConvReLU"
    b = add_block(p, block, {"channels": 64}, description="One VGG layer: a 3×3 convolution "
                  + ("with batch norm " if batch_norm else "") + "and ReLU; a stage repeats it.")
    x = b.add("io.block_input", "x")
    items: list = [("conv.conv2d", {"out_channels": ref("channels"), "kernel_size": 3,
                                    "padding": 1}, "conv")]
    if batch_norm:
        items.append(("norm.batch_norm2d", {}, "bn"))
    items += [("activation.relu", {}, "relu"), ("io.block_output", {}, "y")]
    b.chain(x, *items)

    f = add_block(p, "Features", description="The convolutional stages, each followed by 2×2 "
                  "max pooling.")
    h = f.add("io.block_input", "x")
    for i, (n, w) in enumerate(zip(stages, widths, strict=True), start=1):
        h = f.chain(h, ("block.block", {"block": block, "repeat": n, "args": {"channels": w}},
                        f"stage{i}"),
                    ("pool.max_pool2d", {"kernel_size": 2, "stride": 2}, f"pool{i}"))[-1]
    f.chain(h, ("io.block_output", {}, "y"))

    c = add_block(p, "Classifier", description="Three dense layers, dropout between them.")
    c.chain(c.add("io.block_input", "x"),
            ("linear.linear", {"out_features": hidden}, "fc1"), ("activation.relu", {}, "relu1"),
            ("norm.dropout", {"p": 0.5}, "drop1"),
            ("linear.linear", {"out_features": hidden}, "fc2"), ("activation.relu", {}, "relu2"),
            ("norm.dropout", {"p": 0.5}, "drop2"),
            ("linear.linear", {"out_features": classes}, "fc3"), ("io.block_output", {}, "y"))

    g = add_network(p, "net")
    g.chain(g.add("io.input", "x", shape=["N", 3, size, size]),
            ("block.block", {"block": "Features"}, "features"),
            ("pool.adaptive_avg_pool2d", {"output_size": pool_size}, "avgpool"),
            ("shape.flatten", {}, "flatten"),
            ("block.block", {"block": "Classifier"}, "classifier"), ("io.output", {}, "logits"))


def _reference(depth: int, batch_norm: bool = False):
    def build() -> Project:
        p = Project()
        vgg(p, stages=STAGES[depth], widths=WIDTHS, batch_norm=batch_norm, size=224, pool_size=7,
            hidden=4096, classes=1000)
        return p
    return build


_WHY = ("Two stacked 3×3 convolutions see as far as one 5×5 with fewer weights and an extra "
        "ReLU; VGG pushes that idea to depth {depth}.")
for _depth in (11, 16, 19):
    register(f"vgg{_depth}", "VGG", "reference",
             f"VGG-{_depth} (configuration {'A' if _depth == 11 else 'D' if _depth == 16 else 'E'}"
             f"), as torchvision builds it without batch norm: five stages of 3×3 convolutions, "
             "each a block repeated per layer and followed by 2×2 max pooling, then three dense "
             f"layers. {_WHY.format(depth=_depth)} Input [N, 3, 224, 224], 1000 classes. Bring "
             "your own ImageNet-style data.",
             "classification", None, layout="LR")(_reference(_depth))

register("vgg16-bn", "VGG", "reference",
         "VGG-16 with batch normalisation after every convolution (torchvision's vgg16_bn): the "
         "same network, but normalised activations let it train from scratch at higher learning "
         "rates. Input [N, 3, 224, 224], 1000 classes.",
         "classification", None, layout="LR")(_reference(16, batch_norm=True))


@register("vgg-small", "VGG", "small",
          "A VGG for 32×32 images: three stages of 3×3 conv + batch norm + ReLU blocks (widths "
          "16, 32, 64) with max pooling, then a small dense head. Classifies the built-in "
          "coloured shapes (4 classes).",
          "classification", "shapes32", layout="LR")
def vgg_small() -> Project:
    p = Project()
    vgg(p, stages=(1, 1, 2), widths=(16, 32, 64), batch_norm=True, size=32, pool_size=2,
        hidden=128, classes=4)
    return p
