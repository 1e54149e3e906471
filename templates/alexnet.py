"""AlexNet (Krizhevsky, Sutskever & Hinton 2012): the deep CNN that won ImageNet 2012."""

from __future__ import annotations

from compiler import Project, add_block, add_network

from .registry import register


def alexnet(p: Project, *, size: int, widths: tuple[int, ...], kernels: tuple[int, ...],
            first_stride: int, pool_size: int, hidden: int, classes: int) -> None:
    """Five convolutions (pooling after the 1st, 2nd and 5th), then three dense layers, as
    torchvision lays them out: ``features`` and ``classifier`` blocks (chains, so codegen writes
    each as one ``nn.Sequential``: keys ``features.0.weight``, ``classifier.1.weight``)."""
    f = add_block(p, "Features", description="Five convolutions with ReLU; overlapping max "
                  "pooling after the 1st, 2nd and 5th.")
    items: list = []
    for i, (w, k) in enumerate(zip(widths, kernels, strict=True), start=1):
        conv = {"out_channels": w, "kernel_size": k, "padding": k // 2 if i > 1 else 2}
        if i == 1:
            conv["stride"] = first_stride
        items += [("conv.conv2d", conv, f"conv{i}"), ("activation.relu", {}, f"relu{i}")]
        if i in (1, 2, 5):
            items.append(("pool.max_pool2d", {"kernel_size": 3, "stride": 2}, f"pool{i}"))
    f.chain(f.add("io.block_input", "x"), *items, ("io.block_output", {}, "y"))

    c = add_block(p, "Classifier", description="Two dropout-regularised dense layers and the "
                  "classifier.")
    c.chain(c.add("io.block_input", "x"),
            ("norm.dropout", {"p": 0.5}, "drop1"),
            ("linear.linear", {"out_features": hidden}, "fc1"), ("activation.relu", {}, "relu6"),
            ("norm.dropout", {"p": 0.5}, "drop2"),
            ("linear.linear", {"out_features": hidden}, "fc2"), ("activation.relu", {}, "relu7"),
            ("linear.linear", {"out_features": classes}, "fc3"), ("io.block_output", {}, "y"))

    g = add_network(p, "net")
    g.chain(g.add("io.input", "x", shape=["N", 3, size, size]),
            ("block.block", {"block": "Features"}, "features"),
            ("pool.adaptive_avg_pool2d", {"output_size": pool_size}, "avgpool"),
            ("shape.flatten", {}, "flatten"),
            ("block.block", {"block": "Classifier"}, "classifier"), ("io.output", {}, "logits"))


@register("alexnet", "AlexNet", "reference",
          "AlexNet as torchvision builds it: five convolutions (11×11 stride 4 first) with ReLU "
          "and overlapping max pooling, then two dropout-regularised 4096-wide dense layers and a "
          "1000-way classifier. ReLUs and GPUs made this depth trainable in 2012. Input "
          "[N, 3, 224, 224]. Bring your own ImageNet-style data.",
          "classification", None, layout="LR")
def alexnet_reference() -> Project:
    p = Project()
    alexnet(p, size=224, widths=(64, 192, 384, 256, 256),
            kernels=(11, 5, 3, 3, 3), first_stride=4, pool_size=6, hidden=4096, classes=1000)
    return p


@register("alexnet-small", "AlexNet", "small",
          "AlexNet's layout scaled to 32×32 colour images: five convolutions with max pooling "
          "after the 1st, 2nd and 5th, dropout in the dense layers. Classifies the built-in "
          "coloured shapes (4 classes).",
          "classification", "shapes32", layout="LR")
def alexnet_small() -> Project:
    p = Project()
    alexnet(p, size=32, widths=(16, 32, 64, 64, 32), kernels=(5, 3, 3, 3, 3),
            first_stride=1, pool_size=2, hidden=128, classes=4)
    return p
