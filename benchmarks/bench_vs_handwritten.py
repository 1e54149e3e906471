"""Train-step time of generated models against the same models written by hand, in one run.

    python benchmarks/bench_vs_handwritten.py [--threads 1] [--reps 30] [--models resnet,gpt]

For each model (the ``resnet18-small`` and ``gpt-small`` templates) three contenders train on the
same batch: the model written by hand in this file with the loop anyone writes (zero_grad,
forward, loss, backward, step), the generated model through Layerloom's own engine in eager mode,
and the same in the optimised mode (``engine.setup`` with ``optimize``: channels-last, fused
optimiser, torch.compile). The hand-written model gets the generated one's weights (loaded by
position, checked: equal outputs), so the three compute the same thing.

One repetition times ``--steps`` steps of each contender, in a fresh random order; the figure is
the median over repetitions of the per-repetition ratio contender / hand-written, with the
spread (25th-75th percentile) beside it. torch's threads are pinned (``--threads``). Targets:
generated eager <= 1.01; optimised <= 0.8 for the conv net on CPU.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402

import templates  # noqa: E402
from compiler import build  # noqa: E402
from training import recipes  # noqa: E402
from training.config import resolve  # noqa: E402
from training.data.common import Data  # noqa: E402
from training.engine import setup  # noqa: E402
from training.plan import prepare  # noqa: E402

# ---- the models, written by hand ----------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18Small(nn.Module):
    def __init__(self, classes: int = 4, widths: tuple = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            layers.append(nn.Sequential(BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w)))
            cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, 4 * dim)
        self.proj = nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.proj(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class GPTSmall(nn.Module):
    def __init__(self, vocab: int = 96, dim: int = 128, heads: int = 4, layers: int = 4,
                 max_len: int = 128) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(max_len, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)

    def forward(self, ids: Tensor) -> Tensor:
        t = ids.shape[1]
        mask = torch.ones(t, t, dtype=torch.bool, device=ids.device).triu(1)
        x = self.wte(ids) + self.wpe(torch.arange(t, device=ids.device))
        for block in self.blocks:
            x = block(x, mask)
        return F.linear(self.ln_f(x), self.wte.weight)


# ---- the contenders -----------------------------------------------------------------------------


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """The generated model's parameters and buffers into the hand-written one, by position."""
    a, b = list(src.state_dict().values()), dst.state_dict()
    if len(a) != len(b) or any(x.shape != y.shape for x, (_, y) in zip(a, b.items(), strict=True)):
        raise SystemExit("the hand-written model does not match the generated one")
    dst.load_state_dict(dict(zip(b, a, strict=True)), strict=True)


def engine_step(name: str, batch: tuple, hyper: dict, optimize: bool):
    """A generated model's train step through Layerloom's engine (the app's and train.py's)."""
    project = templates.build(name)
    torch.manual_seed(0)
    net = build(project).instantiate("net")
    recipe_cls = recipes.get(project.training.recipe)
    hp = resolve(recipe_cls.defaults, hyper, {"optimize": optimize, "steps": 10**6,
                                             "log_every": 10**8}).model_dump()
    data = Data(batch, batch, {"num_classes": 4})
    notes: list[dict] = []
    inputs = prepare(project, load_data=False).input_specs
    recipe, _ = setup(recipe_cls, {"net": net}, data, hp, torch.device("cpu"), inputs,
                      say=notes.append)
    return net, (lambda: recipe.train_step(batch, 0)), notes


def hand_step(model: nn.Module, batch: tuple, hyper: dict, lm: bool):
    if hyper["optimizer"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=hyper["lr"], momentum=0.9)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=hyper["lr"])
    x = batch[0]

    def step() -> Tensor:
        opt.zero_grad(set_to_none=True)
        if lm:
            logits = model(x[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        else:
            loss = F.cross_entropy(model(x), batch[1])
        loss.backward()
        opt.step()
        return loss
    return step


def timed(step, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def compare(name: str, hand: nn.Module, batch: tuple, hyper: dict, lm: bool, reps: int,
            steps: int) -> dict:
    gen, gen_step, _ = engine_step(name, batch, hyper, optimize=False)
    copy_weights(gen, hand)
    x = batch[0][:, :-1] if lm else batch[0]
    with torch.no_grad():
        gen.eval(), hand.eval()
        same = torch.allclose(gen(x), hand(x), atol=1e-5)
        gen.train(), hand.train()
    if not same:
        raise SystemExit(f"{name}: the hand-written model computes something else")
    t0 = time.perf_counter()
    _, opt_step, notes = engine_step(name, batch, hyper, optimize=True)
    opt_step()  # the first step compiles
    compile_s = time.perf_counter() - t0
    steps_of = {"hand": hand_step(hand, batch, hyper, lm), "eager": gen_step,
                "optimized": opt_step}
    for s in steps_of.values():  # warm-up
        timed(s, 2)
    times: dict[str, list[float]] = {k: [] for k in steps_of}
    rng = random.Random(0)
    for _ in range(reps):
        order = list(steps_of)
        rng.shuffle(order)
        for k in order:
            times[k].append(timed(steps_of[k], steps))
    out = {"model": name, "threads": torch.get_num_threads(), "reps": reps,
           "steps_per_rep": steps, "batch": list(batch[0].shape),
           "hand_ms": round(1e3 * statistics.median(times["hand"]), 2),
           "compile_s": round(compile_s, 1),
           "compile_notes": [n.get("message", n.get("kind")) for n in notes]}
    for k in ("eager", "optimized"):
        ratios = sorted(a / b for a, b in zip(times[k], times["hand"], strict=True))
        q = statistics.quantiles(ratios, n=4)
        out[f"{k}_ms"] = round(1e3 * statistics.median(times[k]), 2)
        out[f"{k}_vs_hand"] = round(statistics.median(ratios), 3)
        out[f"{k}_spread_p25_p75"] = [round(q[0], 3), round(q[2], 3)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1, help="torch threads (pinned)")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--steps", type=int, default=3, help="steps per contender per repetition")
    ap.add_argument("--models", default="resnet,gpt")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    if "resnet" in a.models:
        batch = (torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 4, (64,), generator=g))
        print(json.dumps(compare("resnet18-small", ResNet18Small(), batch,
                                 {"optimizer": "sgd", "lr": 0.01}, False, a.reps, a.steps)),
              flush=True)
    if "gpt" in a.models:
        ids = torch.randint(0, 96, (16, 65), generator=g)
        print(json.dumps(compare("gpt-small", GPTSmall(), (ids,),
                                 {"optimizer": "adamw", "lr": 3e-4, "grad_clip": 0.0,
                                  "schedule": "constant", "warmup_steps": 0}, True, a.reps,
                                 a.steps)), flush=True)


if __name__ == "__main__":
    main()
