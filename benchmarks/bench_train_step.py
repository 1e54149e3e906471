"""Train-step time of a generated ResNet-style model vs the same model written by hand.

Both models are measured in one run, interleaved, with identical weights and data; the ratio
generated/hand-written is printed (target <= 1.02).
Run: ``python benchmarks/bench_train_step.py [--device cuda] [--batch 256]``.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from compiler import Project, add_network, build
from compiler.graph import add_block, ref


def graph_model() -> nn.Module:
    p = Project(name="bench resnet")
    b = add_block(p, "BasicBlock", {"planes": 32})
    x = b.add("io.block_input", "x")
    c1 = b.chain(x, ("conv.conv2d", {"out_channels": ref("planes"), "kernel_size": 3, "padding": 1,
                                      "bias": False}, "conv1"),
                 ("norm.batch_norm2d", {}, "bn1"), ("activation.relu", {}, "relu1"),
                 ("conv.conv2d", {"out_channels": ref("planes"), "kernel_size": 3, "padding": 1,
                                  "bias": False}, "conv2"),
                 ("norm.batch_norm2d", {}, "bn2"))
    add = b.add("merge.add", "add")
    b.connect(c1[-1], add)
    b.connect(x, add)
    b.chain(add, ("activation.relu", {}, "relu2"), ("io.block_output", {}, "y"))
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 3, 32, 32]}, "x"),
            ("conv.conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1, "bias": False},
             "stem"),
            ("norm.batch_norm2d", {}, "stem_bn"), ("activation.relu", {}, "stem_relu"),
            ("block.block", {"block": "BasicBlock", "repeat": 4, "args": {"planes": 32}}, "stage"),
            ("pool.global_avg_pool", {}, "pool"), ("linear.linear", {"out_features": 10}, "fc"),
            ("io.output", {}, "logits"))
    return build(p).instantiate()


class BasicBlock(nn.Module):
    def __init__(self, planes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + x)


class HandWritten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(32)
        self.stem_relu = nn.ReLU()
        self.stage = nn.Sequential(*[BasicBlock(32) for _ in range(4)])
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_relu(self.stem_bn(self.stem(x)))
        x = self.stage(x)
        return self.fc(x.mean(dim=(2, 3)))


def step_time(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> list[float]:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def main(rounds: int = 8, steps: int = 10, device: str = "cpu", batch: int = 32) -> None:
    torch.manual_seed(0)
    gen, hand = graph_model(), HandWritten()
    n_gen = sum(p.numel() for p in gen.parameters())
    n_hand = sum(p.numel() for p in hand.parameters())
    assert n_gen == n_hand, (n_gen, n_hand)
    with torch.no_grad():
        for a, b in zip(gen.parameters(), hand.parameters(), strict=True):
            a.copy_(b)
    gen, hand = gen.to(device), hand.to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    step_time(gen, x, y, 3)
    step_time(hand, x, y, 3)  # warm-up
    t_gen: list[float] = []
    t_hand: list[float] = []
    for _ in range(rounds):  # interleave so drift hits both equally
        t_gen += step_time(gen, x, y, steps)
        t_hand += step_time(hand, x, y, steps)
    g, h = statistics.median(t_gen), statistics.median(t_hand)
    where = torch.cuda.get_device_name() if device.startswith("cuda") else \
        f"CPU, torch threads {torch.get_num_threads()}"
    print(f"train step, batch {batch}x3x32x32, {n_gen:,} params, {where}")
    print(f"generated   {g * 1e3:8.2f} ms/step (median of {len(t_gen)})")
    print(f"hand-written {h * 1e3:7.2f} ms/step (median of {len(t_hand)})")
    print(f"ratio generated/hand-written = {g / h:.3f} (target <= 1.02)")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=8)
    a = ap.parse_args()
    main(rounds=a.rounds, device=a.device, batch=a.batch)
