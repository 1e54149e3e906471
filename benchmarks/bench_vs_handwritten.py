"""Train-step time of generated models against the same models written by hand, in one run.

    python benchmarks/bench_vs_handwritten.py [--threads 1] [--seconds 180] [--models resnet,gpt]

For each model (the ``resnet18-small`` and ``gpt-small`` templates) three contenders train on the
same batch: the model written by hand in this file with the loop anyone writes (zero_grad,
forward, loss, backward, step), the generated model through Layerloom's own engine in eager mode,
and the same in the optimised mode, exactly as the app and train.py set it up (``engine.setup``
with ``optimize``: channels-last, fused optimiser, torch.compile, and bf16 autocast where
``engine.fast_kernels`` turns it on: a conv net on a CPU with AMX or AVX512-BF16). The eager
rows are fp32 on both sides. The hand-written model gets the generated one's weights (loaded by
position, checked: equal outputs), so the three compute the same thing (the optimised one in
bf16 where it says so: the line names its precision).

A round times one step of each contender twice, in a palindrome; rounds go on for ``--seconds``
per model (a budget of time, not a rule that looks at the results; ``--reps`` fixes the count
instead). The figure is the median over rounds of the per-round ratio contender / hand-written,
with its 95% bootstrap interval and the 25th-75th percentile spread. torch's threads are pinned
(``--threads``). Targets: generated eager <= 1.01 (held when the interval's upper end is);
optimised <= 0.8 for the conv net on CPU; for the transformer the figure is stated.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import json
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from resource import RUSAGE_THREAD

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
    recipe = recipe_cls({"net": net}, data, hp, torch.device("cpu"))
    recipe.adapt(inputs)
    setup(recipe, say=notes.append)
    return net, (lambda: recipe.train_step(batch, 0)), notes, hp


def hand_step(model: nn.Module, batch: tuple, hp: dict, lm: bool):
    """The loop anyone writes, with the engine's optimiser settings (so the update is the same
    arithmetic: AdamW's default weight decay 0.01 would be extra work the engine skips)."""
    if hp["optimizer"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"],
                              weight_decay=hp["weight_decay"])
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], betas=tuple(hp["betas"]),
                                weight_decay=hp["weight_decay"])
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


# ---- the measurement ----------------------------------------------------------------------------


def timed_block(step: Callable[[], object], n: int) -> tuple[int, int, int]:
    """``n`` steps: (wall ns, this thread's CPU ns, page faults). With one torch thread every
    kernel, forward and backward (CPU autograd runs on the calling thread), runs on this thread,
    so its CPU time leaves out the time other processes hold the core: the figure that survives
    a loaded VM. The page faults say whether the step still gets fresh memory from the OS."""
    f0 = resource.getrusage(RUSAGE_THREAD).ru_minflt
    w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
    for _ in range(n):
        step()
    w, c = time.perf_counter_ns() - w0, time.thread_time_ns() - c0
    return w, c, resource.getrusage(RUSAGE_THREAD).ru_minflt - f0


def steady_allocator() -> bool:
    """Keep freed memory in the process (glibc: no mmap'd chunks, no trimming of the heap).

    By default glibc hands large freed blocks back to the OS and the next step faults them in
    again (hundreds of faults, about 2% of a step here), and whether a step does so depends on
    the allocation history, not on its code: which contender paid flipped from run to run. With
    the memory kept, as torch's caching allocator keeps it on CUDA, every contender reuses its
    memory after warm-up and the timing compares the computation. False where this is not glibc.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def bootstrap_median(xs: list[float], rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the median of ``xs``."""
    rng = random.Random(seed)
    n = len(xs)
    meds = sorted(statistics.median(rng.choices(xs, k=n)) for _ in range(rounds))
    return meds[int(0.025 * rounds)], meds[int(0.975 * rounds) - 1]


def summary(ratios: list[float]) -> dict:
    """Median of the per-pair ratios, its 95% bootstrap CI and the p25-p75 spread."""
    q = statistics.quantiles(ratios, n=4)
    lo, hi = bootstrap_median(ratios)
    return {"median": round(statistics.median(ratios), 4), "ci95": [round(lo, 4), round(hi, 4)],
            "p25_p75": [round(q[0], 4), round(q[2], 4)]}


def measure(steps_of: dict[str, Callable[[], object]], reps: int | None, seconds: float,
            steps: int, warmup: int) -> dict[str, dict[str, list[int]]]:
    """``reps`` rounds, or as many as fit in ``seconds`` (at least MIN_REPS); a round runs every
    contender twice, ``steps`` steps a block, in a palindrome (A B C C B A) whose start rotates
    round to round. Short blocks (one step) keep the two sides of a ratio close in time, so a
    neighbour's load hits both alike. The palindrome cancels any
    linear drift within a round (thermal, a neighbour's job starting); the rotation gives each
    contender each position equally. Garbage collection is off while timing and run between
    rounds, so no contender pays for another's garbage. Warm-up runs at least ``warmup`` blocks
    of each, then goes on (up to MAX_WARMUP) until a pass where no contender page-faults."""
    names = list(steps_of)
    for i in range(max(warmup, MAX_WARMUP)):  # until no contender faults in fresh memory
        faults = [timed_block(steps_of[k], steps)[2] for k in names]
        if i + 1 >= warmup and not any(faults):
            break
    out = {k: {"wall": [], "cpu": [], "faults": []} for k in names}
    gc.collect()
    gc.disable()
    deadline, r = time.perf_counter() + seconds, 0
    try:
        while r < reps if reps else (r < MIN_REPS or time.perf_counter() < deadline):
            order = names[r % len(names):] + names[:r % len(names)]
            got: dict[str, list[tuple[int, int, int]]] = {k: [] for k in names}
            for k in order + order[::-1]:
                got[k].append(timed_block(steps_of[k], steps))
            for k, blocks in got.items():
                for i, c in enumerate(("wall", "cpu", "faults")):
                    out[k][c].append(sum(b[i] for b in blocks))
            gc.enable()
            gc.collect()
            gc.disable()
            r += 1
    finally:
        gc.enable()
    return out


def work(step: Callable[[], object]) -> dict[str, int]:
    """What one step does, counted rather than timed (so no neighbour's load can blur it): the
    ATen operators it runs (forward, backward and update) and the Python calls around them."""
    step()
    calls = [0]

    def count(_frame: object, event: str, _arg: object) -> None:
        if event in ("call", "c_call"):
            calls[0] += 1

    sys.setprofile(count)
    try:
        step()
    finally:
        sys.setprofile(None)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    ops = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))
    return {"aten_ops": ops, "python_calls": calls[0]}


def compare(name: str, hand: nn.Module, batch: tuple, hyper: dict, lm: bool, reps: int | None,
            seconds: float, steps: int, warmup: int, optimized: bool, control: bool) -> dict:
    gen, gen_step, _, hp = engine_step(name, batch, hyper, optimize=False)
    copy_weights(gen, hand)
    x = batch[0][:, :-1] if lm else batch[0]
    with torch.no_grad():
        gen.eval(), hand.eval()
        same = torch.allclose(gen(x), hand(x), atol=1e-5)
        gen.train(), hand.train()
    if not same:
        raise SystemExit(f"{name}: the hand-written model computes something else")
    steps_of = {"hand": hand_step(hand, batch, hp, lm), "eager": gen_step}
    if control:  # a second copy of the hand-written model: its ratio is the method's noise floor
        twin = copy.deepcopy(hand)
        steps_of["hand_twin"] = hand_step(twin, batch, hp, lm)
    if hp["amp"] not in ("auto", "off"):  # eager: no autocast (auto is off outside the mode)
        raise SystemExit(f"{name}: the eager contender would run amp {hp['amp']}, not fp32")
    out: dict = {"model": name, "threads": torch.get_num_threads(),
                 "steps_per_block": steps, "blocks_per_rep": 2, "batch": list(batch[0].shape)}
    if optimized:
        t0 = time.perf_counter()
        _, opt_step, notes, opt_hp = engine_step(name, batch, hyper, optimize=True)
        opt_step()  # the first step compiles
        out["compile_s"] = round(time.perf_counter() - t0, 1)
        out["compile_notes"] = [n.get("message", n.get("kind")) for n in notes]
        out["optimized_amp"] = opt_hp["amp"]  # what fast_kernels chose for this device
        steps_of["optimized"] = opt_step
    out["work_per_step"] = {k: work(steps_of[k]) for k in ("hand", "eager")}
    times = measure(steps_of, reps, seconds, steps, warmup)
    out["reps"] = reps = len(times["hand"]["cpu"])
    out["contenders"] = list(steps_of)
    per_step = 2 * steps * 1e6  # ns per round -> ms per step
    for k in steps_of:
        out[f"{k}_ms"] = {c: round(statistics.median(times[k][c]) / per_step, 3)
                          for c in ("wall", "cpu")}
        out[f"{k}_faults_per_step"] = round(sum(times[k]["faults"]) / (2 * steps * reps), 1)
    for k in steps_of:
        if k == "hand":
            continue
        for c in ("cpu", "wall"):
            ratios = [a / b for a, b in zip(times[k][c], times["hand"][c], strict=True)]
            out[f"{k}_vs_hand_{c}"] = summary(ratios)
    return out


#: Most warm-up blocks per contender (the engine's heap settles within about 40 steps).
MAX_WARMUP = 60

#: Fewer rounds than this and a bootstrap interval says little: no verdict is printed.
MIN_REPS = 20


def verdict(res: dict) -> str:
    """One line per contender: the figure, its CI and whether the target holds."""
    lines = []
    targets = {"eager": 1.01, "optimized": 0.8 if "resnet" in res["model"] else None,
               "hand_twin": None}
    for k, target in targets.items():
        if f"{k}_vs_hand_cpu" not in res:
            continue
        c, w = res[f"{k}_vs_hand_cpu"], res[f"{k}_vs_hand_wall"]
        label = f"{k}[{res['optimized_amp']}]" if k == "optimized" else k
        line = (f"{res['model']:>15} {label:>15}/hand: cpu {c['median']:.3f} "
                f"[95% CI {c['ci95'][0]:.3f}-{c['ci95'][1]:.3f}, p25-p75 {c['p25_p75'][0]:.3f}-"
                f"{c['p25_p75'][1]:.3f}]  wall {w['median']:.3f} "
                f"[CI {w['ci95'][0]:.3f}-{w['ci95'][1]:.3f}]")
        if target is not None and res["reps"] < MIN_REPS:
            line += f"  target <= {target}: (too few rounds for a verdict)"
        elif target is not None:
            held = "held" if c["ci95"][1] <= target else (
                "median only" if c["median"] <= target else "MISSED")
            line += f"  target <= {target}: {held}"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1, help="torch threads (pinned)")
    ap.add_argument("--seconds", type=float, default=180,
                    help="time for the timed rounds of each model (after warm-up and compile)")
    ap.add_argument("--reps", type=int, default=None,
                    help="a fixed number of rounds (each one pair of ratios) instead")
    ap.add_argument("--steps", type=int, default=1, help="steps per timed block")
    ap.add_argument("--warmup", type=int, default=10,
                    help="fewest untimed blocks per contender")
    ap.add_argument("--models", default="resnet,gpt")
    ap.add_argument("--no-optimized", action="store_true", help="eager vs hand only (no compile)")
    ap.add_argument("--control", action="store_true",
                    help="also time a copy of the hand-written model (an A/A ratio: the noise)")
    ap.add_argument("--system-malloc", action="store_true",
                    help="leave glibc's allocator at its defaults (memory back to the OS)")
    ap.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU core")
    ap.add_argument("--json", action="store_true", help="also print the full JSON record")
    a = ap.parse_args()
    if not a.system_malloc and not steady_allocator():
        print("(not glibc: the allocator's defaults stay)", flush=True)
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    runs = []
    if "resnet" in a.models:
        batch = (torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 4, (64,), generator=g))
        runs.append(("resnet18-small", ResNet18Small(), batch, {"optimizer": "sgd", "lr": 0.01},
                     False))
    if "gpt" in a.models:
        ids = torch.randint(0, 96, (16, 65), generator=g)
        runs.append(("gpt-small", GPTSmall(), (ids,),
                     {"optimizer": "adamw", "lr": 3e-4, "grad_clip": 0.0,
                      "schedule": "constant", "warmup_steps": 0}, True))
    for name, hand, batch, hyper, lm in runs:
        res = compare(name, hand, batch, hyper, lm, a.reps, a.seconds, a.steps, a.warmup,
                      not a.no_optimized, a.control)
        if a.json:
            print(json.dumps(res), flush=True)
        ms = "  ".join(f"{k} {res[k + '_ms']['cpu']:.1f}" for k in ("hand", "eager", "optimized",
                                                                    "hand_twin")
                       if k + "_ms" in res)
        print(f"{name:>15} ms/step (cpu): {ms}  ({res['reps']} rounds)", flush=True)
        w = res["work_per_step"]
        faults = ", ".join(f"{k} {res[k + '_faults_per_step']}" for k in res["contenders"])
        print(f"{name:>15} per step: aten ops hand {w['hand']['aten_ops']} eager "
              f"{w['eager']['aten_ops']}, python calls hand {w['hand']['python_calls']} eager "
              f"{w['eager']['python_calls']}; page faults while timed: {faults}", flush=True)
        print(verdict(res), flush=True)


if __name__ == "__main__":
    main()
