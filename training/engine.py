"""The training loop every recipe runs in: set-up, optimisers, schedules, batching, checkpoints.

Torch-only and free of Layerloom imports, because ``training.export`` copies the pieces of this
file that a project uses into its ``train.py`` (by source): the loop that trains in the app is the
loop the user takes away. The runner adds event streaming through :class:`Hooks` (and watches for
divergence), resumable checkpoints and, through :mod:`training.appside`, its extra samples;
``train.py`` adds printing and DistributedDataParallel. So the copied pieces stay the core loop
both share: one update path (the gradient scaler is torch's pass-through unless fp16 runs), and
what only the app needs lives in pieces the export never reaches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import struct
import time
import zlib
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TrainingFault(Exception):
    """A run that cannot go on, for a reason the user can fix (``kind`` picks the app's hint).

    ``kind`` is nan|oom|data|checkpoint|codegen|error; ``step`` is where it happened.
    """

    def __init__(self, reason: str, hint: str = "", kind: str = "error", step: int = 0) -> None:
        super().__init__(reason)
        self.reason, self.hint, self.kind, self.step = reason, hint, kind, step


# ----------------------------------------------------------------------------------------------
# Optimisers and schedules
# ----------------------------------------------------------------------------------------------



def lr_shape(hp: dict, total_steps: int) -> Callable[[int], float]:
    """The learning-rate multiplier at a step: a linear warm-up, then constant, step or cosine.

    A function rather than a callable object, so the scheduler's state dict holds no state of it.
    Each schedule computes its own numbers, so train.py keeps only the branch its project uses.
    """
    warmup, total = int(hp.get("warmup_steps") or 0), max(1, total_steps)

    def shape(step: int) -> float:
        if hp.get("warmup_steps") and step < warmup:
            return (step + 1) / warmup
        if hp["schedule"] == "cosine":
            span = max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))
        if hp["schedule"] == "step":
            every = max(1, int(hp.get("step_size") or total // 3))
            return float(hp.get("gamma", 0.1)) ** ((step - warmup) // every)
        return 1.0

    return shape


class Optimizers:
    """One optimiser per parameter group the recipe declares, each with its schedule and scaler.

    ``groups`` maps a name to parameters or to torch's param-group dicts (a group may set its own
    ``lr``). The gradient scaler is torch's pass-through unless fp16 autocast runs on CUDA, so
    the update has one path. The optimiser, the schedule and clipping are tests of the settings,
    which train.py decides at export (:mod:`training.fold`): it keeps the branch its project uses.
    """

    scheds: dict[str, Any] = {}  # no schedule: the learning rate stays as set (never mutated)

    def __init__(self, groups: dict[str, list], hp: dict, total_steps: int,
                 device: torch.device) -> None:
        if hp["optimizer"] == "sgd":
            kind, extra = torch.optim.SGD, {"momentum": hp.get("momentum", 0.9)}
        else:
            kind = torch.optim.AdamW if hp["optimizer"] == "adamw" else torch.optim.Adam
            extra = {"betas": tuple(hp.get("betas", (0.9, 0.999)))}
        fused = {"fused": True} if hp.get("optimize") else {}  # one kernel for the whole update
        self.hp, self.opts = hp, {k: kind(list(ps), lr=hp["lr"], weight_decay=hp["weight_decay"],
                                          **extra, **fused) for k, ps in groups.items()}
        if hp["schedule"] != "constant" or hp.get("warmup_steps"):
            shape = lr_shape(hp, total_steps)
            self.scheds = {k: torch.optim.lr_scheduler.LambdaLR(o, shape)
                           for k, o in self.opts.items()}
        fp16 = device.type == "cuda" and hp.get("amp") == "fp16"
        self.scalers = {k: torch.amp.GradScaler("cuda", enabled=fp16) for k in self.opts}

    def step(self, loss: Tensor, name: str = "main", retain_graph: bool = False) -> None:
        """The whole update of one optimiser: zero grads, backward, clip, step, schedule."""
        opt, scaler = self.opts[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward(retain_graph=retain_graph)
        if self.hp.get("grad_clip"):
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]],
                                     self.hp["grad_clip"])
        scaler.step(opt)
        scaler.update()
        if self.hp["schedule"] != "constant" or self.hp.get("warmup_steps"):
            self.scheds[name].step()

    def lr(self) -> float:
        return float(next(iter(self.opts.values())).param_groups[0]["lr"])

    def resume_state(self) -> dict:
        """What a resumed run needs (the app's checkpoints; train.py saves the weights only)."""
        return {k: {"opt": self.opts[k].state_dict(), "scaler": self.scalers[k].state_dict(),
                    **({"sched": self.scheds[k].state_dict()} if k in self.scheds else {})}
                for k in self.opts}

    def load_resume_state(self, state: dict) -> None:
        for k, s in state.items():
            self.opts[k].load_state_dict(s["opt"])
            if k in self.scheds and "sched" in s:
                self.scheds[k].load_state_dict(s["sched"])
            self.scalers[k].load_state_dict(s["scaler"])


# ----------------------------------------------------------------------------------------------
# Recipes
# ----------------------------------------------------------------------------------------------


class Recipe:
    """Base of every recipe: subclasses set the class attributes and write ``train_step``.

    ``networks`` maps each role the recipe needs to what that network must take and return;
    ``defaults`` are hyperparameters the recipe trains well with; ``metric`` is the headline
    metric and whether higher is better. ``nets`` are the live modules by role. A recipe with
    artefacts to show defines ``samples(step, out_dir)``, a list of {"kind": "image", "path"},
    {"kind": "text", "text"}, ...: the loop asks only those that have it, so a classifier's
    train.py carries no sampling code.
    """

    name = "recipe"
    networks: dict[str, str] = {"net": "any network"}
    optional_networks: dict[str, str] = {}
    defaults: dict[str, Any] = {}
    metric: tuple[str, str] = ("loss", "min")
    NO_AUTOCAST = contextlib.nullcontext()  # reusable: nullcontext keeps no state
    logs_now = True  # set by fit before each step: a train record follows (compute extras)
    graph_cls: Any = None  # model.py's Graph, for the recipes that build graph inputs (set after)

    def __init__(self, nets: dict[str, nn.Module], data: Any, hp: dict,
                 device: torch.device) -> None:
        self.nets, self.data, self.hp, self.device = nets, data, hp, device
        self.opt: Optimizers | None = None

    # -- hooks for subclasses -----------------------------------------------------------------
    def adapt(self, input_specs: dict[str, list[tuple[tuple, str]]]) -> None:
        """Set up for the data: fit the first train tensor to the first network's first input.

        Called once the networks and data are in place, before the optimisers exist (a recipe
        keeps its own state here). ``input_specs`` maps a network role to its inputs' (dims,
        dtype), dims with symbols; a misfit is a DataError.
        """
        role = next(iter(self.networks))
        if input_specs.get(role):
            self.data.fit_input(0, input_specs[role][0][0], f"network '{role}'")

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"main": [p for n in self.nets.values() for p in n.parameters()]}

    def train_step(self, batch: tuple, step: int) -> dict[str, Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        return {}

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def compile(self) -> Callable[[], None]:
        """Optimised mode: torch.compile every network; returns what undoes it.

        Evaluation and samples run the same modules eagerly (no second compile for eval mode).
        A recipe whose step is one forward pass and a loss compiles those together instead.
        """
        eager = dict(self.nets)
        self.nets = {k: torch.compile(n) for k, n in eager.items()}

        def eagerly(fn: Callable) -> Callable:
            def run(*args: Any) -> Any:
                compiled, self.nets = self.nets, eager
                try:
                    return fn(*args)
                finally:
                    self.nets = compiled
            return run

        self.evaluate = eagerly(self.evaluate)
        if hasattr(self, "samples"):
            self.samples = eagerly(self.samples)
        return lambda: setattr(self, "nets", eager)

    # -- helpers ------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision when asked (bf16 on CUDA or the CPU, fp16 on CUDA only: CPU fp16 is
        slower than fp32), else one shared no-op (no allocation per step). ``auto`` is off here:
        :func:`fast_kernels` turns it into bf16 or off."""
        amp, kind = self.hp.get("amp", "off"), self.device.type
        if (amp == "bf16" and kind in ("cuda", "cpu")) or (amp == "fp16" and kind == "cuda"):
            return torch.autocast(kind, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
        return self.NO_AUTOCAST

    def train_mode(self, on: bool = True) -> None:
        for n in self.nets.values():
            n.train(on)

    def val_batches(self, batch_size: int | None = None) -> Iterable[tuple]:
        """The validation split in order, in batches of max(256, batch size) rows.

        With ``max_val_samples`` set (a quick check), only that many of its rows.
        """
        n, bs = self.data.size("val"), batch_size or max(self.hp["batch_size"], 256)
        if self.hp.get("max_val_samples"):
            n = min(n, int(self.hp["max_val_samples"]))
        batch_of = self.data.batcher("val", self.device)
        return (batch_of(torch.arange(i, min(n, i + bs))) for i in range(0, n, bs))

    def graph(self, edge_index: Tensor, batch: Tensor, num_graphs: int) -> Any:
        if self.graph_cls is None:
            raise TrainingFault("the model has no Graph input, but the data is a graph",
                                "start the network with a Graph Input node", "data")
        return self.graph_cls(edge_index=edge_index, batch=batch, num_graphs=num_graphs)


def first(out: Any) -> Tensor:
    """The first output of a network that returns several."""
    return out[0] if isinstance(out, (tuple, list)) else out


# ----------------------------------------------------------------------------------------------
# Batching
# ----------------------------------------------------------------------------------------------


class Sampler:
    """Batch indices as a pure function of (seed, step), so a resumed run sees the same batches.

    Every epoch is a fresh permutation drawn from a generator seeded with seed + epoch; ranks of a
    distributed run take interleaved slices of each batch. The permutation goes to ``device``
    once an epoch: where the data lie (a GPU, for data setup preloads), since indexing GPU data
    with CPU indices copies them over with a stream synchronisation, every tensor, every step.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.batch_size = max(1, min(batch_size, n))
        self.steps_per_epoch = max(1, n // self.batch_size)
        self._epoch, self._perm, self.device = -1, torch.arange(n), torch.device("cpu")

    def indices(self, step: int) -> Tensor:
        epoch, pos = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1000003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g).to(self.device)
        idx = self._perm[pos * self.batch_size:(pos + 1) * self.batch_size]
        return idx[self.rank::self.world] if self.world > 1 else idx


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------


class Hooks:
    """What the loop tells the outside world: train.py prints it, the runner streams events.

    With ``show`` (train.py's rank 0) progress goes to stdout as JSON lines; else nowhere.
    ``sample_dir`` is where the recipes that make images write them (None: nowhere).
    """

    sample_dir: str | None = None

    def __init__(self, show: bool = False) -> None:
        self.show = show

    def metric(self, record: dict) -> None:
        if self.show:  # the numbers, rounded, without the per-step losses
            print(json.dumps({k: round(v, 5) if isinstance(v, float) else v
                              for k, v in record.items() if k != "losses"}), flush=True)

    def sample(self, record: dict) -> None:
        if self.show and record.get("kind") == "text":
            print(record["text"][:300], flush=True)

    def should_stop(self, step: int) -> bool:  # between steps (the runner checkpoints here too)
        return False

    def warning(self, record: dict) -> None:
        """Something the user should know although the run goes on (``kind``: diverged)."""


NAN_HINT = ("lower the learning rate (try a tenth), set grad_clip to 1.0, or check the data for "
            "NaN or infinite values")
DIVERGED_HINT = ("lower the learning rate (try a tenth) or set grad_clip to 1.0; a run that "
                 "diverged early rarely learns, even when its loss comes back down")


class DivergenceWatch:
    """Finds a loss that blew up: ``patience`` consecutive steps far above the first step's loss.

    The runner's hooks feed it each train record's ``losses`` (the exported loop leaves it out).

    "Far above" is more than ``factor`` times the start (for a start near zero or below it, more
    than ``factor - 1`` units above it), so a healthy run's noise and a single spike never count.
    Per-step losses, not logged means: with a learning rate of 10 the first ten steps already
    average thousands, so a mean would have no sane start to compare with. Says it once.
    """

    def __init__(self, factor: float = 10.0, patience: int = 5) -> None:
        self.factor, self.patience = factor, patience
        self.start: float | None = None
        self.run, self.fired = 0, False
        self.first_bad = 0

    def update(self, first_step: int, losses: list[float]) -> dict | None:
        """Feed the per-step losses from ``first_step`` on; a warning record when it diverged."""
        for i, v in enumerate(losses):
            if self.start is None:
                self.start = v
                continue
            limit = self.start + (self.factor - 1) * max(abs(self.start), 1.0)
            if v > limit:
                self.run += 1
                self.first_bad = self.first_bad if self.run > 1 else first_step + i
            else:
                self.run = 0
            if self.run >= self.patience and not self.fired:
                self.fired = True
                peak = max(losses[max(0, i - self.patience + 1):i + 1])
                return {"step": first_step + i, "kind": "diverged", "since_step": self.first_bad,
                        "message": f"the loss diverged: from {self.start:.4g} at the first step "
                                   f"to {peak:.4g} by step {first_step + i} (over "
                                   f"{self.factor:g}x its start since step {self.first_bad})",
                        "hint": DIVERGED_HINT}
        return None


def setup(recipe: Recipe, rank: int = 0, world: int = 1,
          wrap: Callable[[nn.Module], nn.Module] | None = None, say: Callable[[dict], None] = (
              lambda note: print(json.dumps(note), flush=True))) -> Sampler:
    """The recipe's sampler and optimisers; sets the budget ``hp["total_steps"]``.

    Shared by the app's runner and ``train.py``, each of which makes the recipe and fits it to
    its data first (:meth:`Recipe.adapt`, which a project whose data already fits leaves out of
    its train.py). ``wrap`` (DistributedDataParallel) is applied to every trainable network;
    ``hp["optimize"]`` turns the optimised mode on (see :func:`speed_up`), whose notes (compile
    time, a fallback to eager) go to ``say`` (by default printed as JSON lines, as train.py
    shows them).
    """
    data, hp, device = recipe.data, recipe.hp, recipe.device
    sampler = Sampler(data.size("train"), hp["batch_size"], hp["seed"], rank, world)
    if device.type == "cuda" and data.kind == "tensors":  # small data: keep it on the GPU
        data.train, data.val = (tuple(t.to(device) for t in p) for p in (data.train, data.val))
        sampler.device = device  # and the batches' indices
    total = hp.get("steps") or hp["epochs"] * sampler.steps_per_epoch
    hp.update(total_steps=total, steps_per_epoch=sampler.steps_per_epoch)
    hp["eval_every"] = hp.get("eval_every") or max(1, total // 10)
    if hp.get("optimize"):
        fast_kernels(recipe)
    if wrap is not None:
        recipe.nets = {k: wrap(n) if any(p.requires_grad for p in n.parameters()) else n
                       for k, n in recipe.nets.items()}
    if hp.get("optimize") or hp.get("compile"):
        speed_up(recipe, say)
    recipe.opt = Optimizers(recipe.param_groups(), hp, total, device)
    return sampler


def fast_kernels(recipe: Recipe) -> None:
    """Optimised mode: channels-last conv nets, bf16 autocast where the device runs it faster;
    on CUDA also cudnn.benchmark and TF32.

    These change numerics (bf16 keeps 8 bits of mantissa; a run is no longer bit-for-bit
    reproducible), which is why the mode is opt-in. Only ``amp: auto`` (the default) is decided
    here; an explicit ``off``, ``bf16`` or ``fp16`` is kept. On the CPU bf16 pays only for conv
    nets on a CPU with bf16 arithmetic: there oneDNN's bf16 convolutions run about twice as fast
    as fp32 ones, while for the matmuls of a small transformer the casts cost more than they save
    (GPT-small: 1.2x slower), and on a CPU without bf16 instructions it is emulated (slower).
    """
    if convolutional(recipe.nets):
        for k, net in recipe.nets.items():  # the nets with 2-D convolutions go channels-last
            if any(isinstance(m, nn.Conv2d) for m in net.modules()):
                recipe.nets[k] = net.to(memory_format=torch.channels_last)
    cuda = recipe.device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    if recipe.hp.get("amp", "auto") == "auto":
        recipe.hp["amp"] = "bf16" if cuda and torch.cuda.is_bf16_supported() else "off"
        if convolutional(recipe.nets) and recipe.device.type == "cpu" and cpu_has_fast_bf16():
            recipe.hp["amp"] = "bf16"  # oneDNN's bf16 convolutions


def convolutional(nets: dict[str, nn.Module]) -> bool:
    """Whether a network has a convolution of any kind (train.py has the export's answer)."""
    return any(isinstance(m, nn.modules.conv._ConvNd) for n in nets.values() for m in n.modules())


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AMX-BF16 or AVX512-BF16) for oneDNN.

    Newer torch lists the CPU's features (``torch.cpu.get_capabilities``); the older ones our
    pyproject allows (2.4 on) may not, and have the probes torch's own compiler uses. Without
    either the answer is no, and the run stays in fp32 (the safe side).
    """
    if not torch.backends.mkldnn.is_available():
        return False
    have = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {
        k: getattr(torch.cpu, probe, bool)() for k, probe in (  # older torch: the probes
            ("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))}
    return bool(have.get("amx_bf16") or have.get("avx512_bf16"))


def speed_up(recipe: Recipe, say: Callable[[dict], None]) -> None:
    """Optimised mode: torch.compile the recipe; the first step pays for it (timed, said once).

    :meth:`Recipe.compile` says what is compiled. When compiling fails, the run goes on in eager
    mode and says why.
    """
    undo, step_fn = recipe.compile(), recipe.train_step

    def first_step(batch: tuple, step: int) -> dict:
        recipe.train_step, t0 = step_fn, time.perf_counter()  # the next steps call it directly
        try:
            out = step_fn(batch, step)
        except Exception as err:  # a model torch.compile cannot handle: train it eagerly
            undo()
            why = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            say({"kind": "compile", "step": step, "message": "torch.compile failed, training in "
                 f"eager mode instead ({type(err).__name__}: {why})", "hint": "the run is correct, "
                 "only not faster; turn the optimised mode off to skip the attempt"})
            return step_fn(batch, step)
        say({"kind": "compiled", "step": step + 1, "seconds": round(time.perf_counter() - t0, 2)})
        return out

    recipe.train_step = first_step


def fit(recipe: Recipe, sampler: Sampler, total_steps: int, start_step: int,
        hooks: Hooks) -> tuple[int, dict]:
    """Train from ``start_step`` to ``total_steps``; returns (last step, last val metrics).

    A train record follows every ``log_every`` steps, but at most one per ``log_min_s`` seconds:
    a fast run's records would otherwise cost more than its steps (a record is ~0.15 ms, a small
    MLP's step ~1 ms) and a live plot shows no more. Every step's loss is in the record that
    follows it (``losses``), and one always follows an evaluation's step, the last step and a
    stop, so the log is whole where a run ends or can resume. Under DDP every ``log_every``
    steps, on every rank: timed by each rank's clock, records could fall at different steps, and
    a NaN would stop one rank while the others wait for it in the next step's all-reduce.
    Losses stay on the device between records (no sync per step); a non-finite loss is found at
    the next record and raises TrainingFault with the first bad step.
    """
    step, pending, last_val, hp = start_step, [], {}, recipe.hp
    log_every, min_s, eval_every = hp["log_every"], hp.get("log_min_s", 0), hp.get("eval_every")
    min_s = min_s if sampler.world == 1 else 0  # ranks in step record at the same steps
    recipe.train_mode(True)
    # bound once: at a millisecond a step, attribute lookups and dispatch show in throughput
    batch_of, indices = recipe.data.batcher("train", recipe.device), sampler.indices
    sync, t_last = eval_every or total_steps, time.perf_counter()
    while step < total_steps and not hooks.should_stop(step):
        recipe.logs_now = (step + 1) % sync == 0 or step + 1 == total_steps or (
            (step + 1) % log_every == 0 and time.perf_counter() - t_last >= min_s)
        batch = batch_of(indices(step))
        out = recipe.train_step(batch, step)  # looked up each step: speed_up replaces it once
        step += 1
        out["loss"] = out["loss"].detach()  # keep the number, not the step's autograd graph
        pending.append(out)
        if recipe.logs_now:
            hooks.metric(train_record(recipe, sampler, step, pending, t_last))
            pending, t_last = [], time.perf_counter()
        if (eval_every and step % eval_every == 0) or step == total_steps:
            last_val = run_eval(recipe, step, sampler, hooks)
            t_last = time.perf_counter()
    if pending:  # stopped between records: the steps since the last one
        hooks.metric(train_record(recipe, sampler, step, pending, t_last))
    return step, last_val


def train_record(recipe: Recipe, sampler: Sampler, step: int,
                 pending: list[dict], t_last: float) -> dict:
    """The train record of the steps in ``pending``, the last of them ``step``.

    Their losses, the mean of the other metrics the last step returned, and ``samples_per_s``
    since ``t_last``, which counts whole batches (every rank's share of a distributed one: the
    run's throughput).
    """
    losses = torch.stack([o["loss"] for o in pending]).float().tolist()  # one cast
    for i, v in enumerate(losses, step - len(losses) + 1):
        if not math.isfinite(v):
            raise TrainingFault(f"the loss became {v} at step {i}", NAN_HINT, "nan", i)
    means = {k: float(torch.stack([torch.as_tensor(o[k]).detach().float()
                                   for o in pending if k in o]).mean())
             for k in pending[-1].keys() - {"loss"}}  # the step's other metrics
    rate = len(losses) * sampler.batch_size / max(1e-9, time.perf_counter() - t_last)
    return {"step": step, "epoch": step / sampler.steps_per_epoch, "split": "train",
            "loss": sum(losses) / len(losses), "losses": losses, **means,
            "lr": recipe.opt.lr() if recipe.opt else 0.0, "samples_per_s": rate}


def run_eval(recipe: Recipe, step: int, sampler: Sampler,
             hooks: Hooks) -> dict:
    """Validation (and samples) under a forked RNG, so evaluating never changes the training run.

    An error here ends the run (nothing trains on after it), so no ``finally`` restores the mode.
    """
    cuda = recipe.device.type == "cuda"
    with torch.random.fork_rng(devices=[recipe.device.index or 0] if cuda else []):
        torch.manual_seed(int(recipe.hp.get("seed", 0)) + 7919)
        recipe.train_mode(False)
        metrics = recipe.evaluate()
        if metrics:
            hooks.metric({"step": step, "epoch": step / sampler.steps_per_epoch, "split": "val",
                          **metrics})
        if hasattr(recipe, "samples"):  # the recipes that make images or text
            for s in recipe.samples(step, hooks.sample_dir):
                hooks.sample({"step": step, **s})
        recipe.train_mode(True)
    return metrics


# ----------------------------------------------------------------------------------------------
# Checkpoints: plain tensors and numbers only, so torch.load(weights_only=True) reads them
# ----------------------------------------------------------------------------------------------


CHECKPOINT_FORMAT = 2  # 2: carries "checksum"; 1 (no "format" key): written before checksums
DAMAGED_HINT = "the checkpoint file is damaged; resume from an earlier one or start over"
FOREIGN_HINT = "resume only from checkpoints/latest.pt written by a Layerloom run, or start over"


def checkpoint_state(recipe: Recipe, step: int) -> dict:
    state = {"format": CHECKPOINT_FORMAT, "step": step,
             "nets": {k: unwrap(n).state_dict() for k, n in recipe.nets.items()},
             "opt": recipe.opt.resume_state() if recipe.opt else {},
             "extra": recipe.extra_state(),
             "rng_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and recipe.device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    return state


def state_checksum(state: Any) -> str:
    """sha256 of a checkpoint's content (keys, numbers, strings, every tensor's dtype, shape and
    bytes), computed the same way before saving and after loading.

    Over the content rather than the file's bytes, so the file stays one plain dict that
    ``torch.load(weights_only=True)`` reads, and the sum needs no second file that a kill could
    leave out of step with the first. A flipped byte in a tensor, a key or a number changes it.
    """
    h = hashlib.sha256()
    _digest(h, state)
    return "sha256:" + h.hexdigest()


def _digest(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}|".encode())
        for k in sorted(obj, key=repr):
            h.update(f"{type(k).__name__}:{k!r}=".encode())
            _digest(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__[0]}{len(obj)}|".encode())
        for v in obj:
            _digest(h, v)
    else:  # None, bool, int, float, str, bytes: repr is exact (floats round-trip)
        h.update(f"{type(obj).__name__}:{obj!r}|".encode())


def save_checkpoint(path: str, state: dict) -> None:
    """Atomic: a temp file beside the target, then rename over it. Adds the content checksum."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    state = {k: v for k, v in state.items() if k != "checksum"}
    state["checksum"] = state_checksum(state)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_checkpoint(path: str) -> dict:
    """A checkpoint's state, verified; TrainingFault(kind="checkpoint") saying what is wrong.

    Only tensors and plain data are ever unpickled (``weights_only=True``): a file that holds
    anything else is not one of ours, and we say so rather than pass on torch's advice to load
    it unrestricted, which would run whatever code the file carries.
    """
    import pickle

    try:
        size = os.path.getsize(path)
    except OSError as err:
        raise TrainingFault(f"cannot read the checkpoint {path}: {err.strerror or err}",
                            "check that the run folder is still there", "checkpoint") from None
    if size == 0:
        raise TrainingFault(f"the checkpoint {path} is empty (0 bytes): it was never completely "
                            "written", DAMAGED_HINT, "checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        foreign = re.search(r"GLOBAL (\S+) was not an allowed global|module (\S+) is blocked"
                            r"|(\S+) must be \S+ to load", str(err))
        if foreign:
            what = next(g for g in foreign.groups() if g)
            raise TrainingFault(f"{path} is not a Layerloom checkpoint: it asks to load Python "
                                f"objects ({what}), which a Layerloom checkpoint never holds "
                                "(the file is foreign, or damaged) and Layerloom never loads, "
                                "since they could run code", FOREIGN_HINT,
                                "checkpoint") from None
        raise _damaged(path, _pickle_problem(err)) from None
    except Exception as err:  # a torn zip, a truncated file, bytes that are no pickle
        raise _damaged(path, err) from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise TrainingFault(f"{path} is not a Layerloom checkpoint (it has no training state)",
                            FOREIGN_HINT, "checkpoint")
    stored = state.pop("checksum", None)
    if stored is None and "format" in state:
        raise _damaged(path, "its checksum is missing")
    if stored is not None and stored != state_checksum(state):
        raise _damaged(path, "its content does not match its checksum")
    return state


def _pickle_problem(err: Exception) -> str:
    """torch's weights-only error without its advice to load the file unrestricted."""
    found = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
    return found.group(1).strip() if found else "not a readable checkpoint"


def _damaged(path: str, why: Any) -> TrainingFault:
    text = str(why).strip().splitlines()[0] if str(why).strip() else type(why).__name__
    return TrainingFault(f"the checkpoint {path} is damaged ({text})", DAMAGED_HINT, "checkpoint")


def load_checkpoint(path: str, recipe: Recipe) -> int:
    state = read_checkpoint(path)
    try:
        for k, n in recipe.nets.items():
            unwrap(n).load_state_dict(state["nets"][k])
        if recipe.opt and state.get("opt"):
            recipe.opt.load_resume_state(state["opt"])
        recipe.load_extra_state(state.get("extra", {}))
        torch.set_rng_state(state["rng_cpu"])
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrainingFault(f"the checkpoint {path} does not fit this model ({text})",
                            "it was saved by a different version of the networks: resume with "
                            "the project it was trained with, or start over", "checkpoint") \
            from None
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return int(state["step"])


def unwrap(net: nn.Module) -> nn.Module:
    net = getattr(net, "module", net)  # DistributedDataParallel
    return getattr(net, "_orig_mod", net)  # torch.compile


# ----------------------------------------------------------------------------------------------
# Images: a grid of tensors written as PNG with zlib alone (no Pillow needed)
# ----------------------------------------------------------------------------------------------


def image_grid(images: Tensor, nrow: int = 8, pad: int = 1) -> Tensor:
    """[B, C, H, W] (any range) -> [C', H', W'] uint8 grid, each image scaled to 0..255."""
    x = images.detach().float().cpu()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    b, c, h, w = x.shape
    if c not in (1, 3):
        x, c = x[:, :1], 1
    lo = x.flatten(1).min(1)[0].view(b, 1, 1, 1)
    hi = x.flatten(1).max(1)[0].view(b, 1, 1, 1)
    x = (x - lo) / (hi - lo).clamp_min(1e-8)
    ncol = min(nrow, b)
    rows = (b + ncol - 1) // ncol
    grid = torch.ones(c, rows * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(b):
        r, q = divmod(i, ncol)
        grid[:, pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + q * (w + pad):pad + q * (w + pad) + w] = x[i]
    return (grid * 255).round().clamp(0, 255).to(torch.uint8)


def write_png(path: str, image: Tensor) -> None:
    """[C, H, W] uint8 (C = 1 or 3) -> an 8-bit PNG file, written atomically."""
    c, h, w = image.shape
    rows = image.permute(1, 2, 0).contiguous().numpy().reshape(h, w * c)
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    color = 0 if c == 1 else 2
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(png)
    os.replace(tmp, path)


def save_grid(out_dir: str | None, name: str, images: Tensor, nrow: int = 8) -> dict | None:
    if out_dir is None:
        return None
    path = os.path.join(out_dir, name)
    write_png(path, image_grid(images, nrow))
    return {"kind": "image", "path": path}


# ----------------------------------------------------------------------------------------------
# Shared pieces of the self-supervised recipes
# ----------------------------------------------------------------------------------------------


def augment(x: Tensor) -> Tensor:
    """A random view of each image in a batch [N, C, H, W] (or of each flat vector).

    Per image: a random resized crop (scale 0.5-1, aspect 3:4-4:3) with a flip, then colour
    jitter per channel and grey-scale one time in five. Colour distortion matters: without it
    two crops of one image are matched by their colour histogram alone, and the encoder learns
    nothing about shape (SimCLR's ablation finds the same).
    """
    n = x.shape[0]
    dev = x.device
    if x.dim() != 4:
        return x * (1 + 0.2 * torch.randn(n, 1, device=dev)) + \
            0.3 * torch.randn_like(x) * x.std()
    c = x.shape[1]
    area = 0.5 + 0.5 * torch.rand(n, device=dev)
    ratio = torch.exp((torch.rand(n, device=dev) - 0.5) * 0.575)  # log(4/3) * 2
    sx = (area * ratio).sqrt().clamp(max=1.0)
    sy = (area / ratio).sqrt().clamp(max=1.0)
    tx = (1 - sx) * (2 * torch.rand(n, device=dev) - 1)
    ty = (1 - sy) * (2 * torch.rand(n, device=dev) - 1)
    flip = torch.where(torch.rand(n, device=dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = sx * flip, tx
    theta[:, 1, 1], theta[:, 1, 2] = sy, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    gain = 1 + 0.8 * (torch.rand(n, c, 1, 1, device=dev) - 0.5)
    bias = 0.8 * (torch.rand(n, c, 1, 1, device=dev) - 0.5)
    out = out * gain + bias
    if c > 1:
        grey = torch.rand(n, 1, 1, 1, device=dev) < 0.2
        out = torch.where(grey, out.mean(1, keepdim=True).expand_as(out), out)
    return out + 0.05 * torch.randn_like(out)


@torch.no_grad()
def linear_probe(encode: Callable[[Tensor], Tensor], recipe: Recipe,
                 ridge: float = 1e-2) -> float:
    """Validation accuracy of a ridge-regression classifier on frozen features (closed form)."""

    limit = recipe.hp.get("max_val_samples")

    def feats(split: str) -> tuple[Tensor, Tensor]:
        n, fs, ys = recipe.data.size(split), [], []
        if limit:  # a quick check: at most max_val_samples to validate, 8 times that to fit
            n = min(n, int(limit) * (8 if split == "train" else 1))
        for i in range(0, n, 512):
            x, y = recipe.data.batch(split, torch.arange(i, min(n, i + 512)), recipe.device)[:2]
            fs.append(first(encode(x)).flatten(1).float())
            ys.append(y)
        return torch.cat(fs), torch.cat(ys)

    ftr, ytr = feats("train")
    fva, yva = feats("val")
    mu, sd = ftr.mean(0), ftr.std(0).clamp_min(1e-6)
    ftr, fva = (ftr - mu) / sd, (fva - mu) / sd
    ftr = torch.cat([ftr, torch.ones(len(ftr), 1, device=ftr.device)], 1)
    fva = torch.cat([fva, torch.ones(len(fva), 1, device=fva.device)], 1)
    k = int(max(ytr.max(), yva.max())) + 1
    t = F.one_hot(ytr.long(), k).float()
    a = ftr.T @ ftr + ridge * len(ftr) * torch.eye(ftr.shape[1], device=ftr.device)
    w = torch.linalg.solve(a, ftr.T @ t)
    return float(((fva @ w).argmax(1) == yva).float().mean())
