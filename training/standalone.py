"""The ``main`` of an exported train.py: arguments, devices (and DDP), networks, the loop.

``training.export`` copies it into train.py after the config, the data loader, the recipe and the
loop pieces it uses, which define every name below; the app's runner calls the same
:func:`training.engine.setup` and :func:`training.engine.fit`. Never imported by Layerloom.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from functools import partial

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

# layerloom: local imports (train.py defines these names above)
from training.engine import Hooks, TrainingFault, fit, setup, unwrap

CONFIG: dict = {}  # the run's settings
INPUTS: dict = {}  # each network's input shapes, which the recipe fits the data to
RECIPE = None  # the recipe's class
model = None  # model.py, beside train.py (``import model`` at its top): NETWORKS and Graph


def load_data(seed: int):  # the project's dataset: train.py calls its loader here, as the app
    raise NotImplementedError  # does (``digits({}, hp["seed"], flat=True)``)


# layerloom: end local imports


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=f"Train {CONFIG['project']} (exported by Layerloom)")
    ap.add_argument("--steps", type=int, help="train this many steps (default: the config's)")
    ap.add_argument("--epochs", type=int, help="or this many passes over the data")
    ap.add_argument("--device", default=CONFIG["device"], help="auto, cpu, cuda or mps")
    ap.add_argument("--optimize", action="store_true", default=CONFIG["optimize"],
                    help="torch.compile, channels-last, fused optimisers, bf16/TF32 where faster")
    ap.add_argument("--out", default="checkpoints",
                    help="folder for the weights, latest.pt (and samples, if the recipe makes any)")
    args = ap.parse_args(argv)
    budget = {"steps": args.steps, "epochs": args.epochs} if args.steps or args.epochs else {}
    hp = {**CONFIG, "optimize": args.optimize, **budget}
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))  # this process's GPU under torchrun
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local}" if cuda else args.device.replace("auto", "cpu"))
    if world > 1:  # under torchrun: one process per GPU (NCCL) or per CPU share (gloo)
        if cuda and local >= torch.cuda.device_count():
            sys.exit(f"process {local} has no GPU of its own: run torchrun --nproc_per_node="
                     f"{torch.cuda.device_count()} train.py, or add --device cpu")
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(device)
    data = load_data(hp["seed"])
    torch.manual_seed(hp["seed"])
    nets = {role: model.NETWORKS[role]().to(device) for role in CONFIG["networks"]}
    ddp = partial(DDP, device_ids=[local] if cuda else None) if world > 1 else None
    recipe = RECIPE(nets, data, hp, device)
    if hasattr(recipe, "graph"):  # graph data: the recipe batches it with model.py's Graph
        recipe.graph_cls = model.Graph
    recipe.adapt(INPUTS)
    sampler = setup(recipe, rank, world, ddp)
    hooks, t0 = Hooks(show=rank == 0), time.time()
    if hasattr(recipe, "samples") and rank == 0:  # the images it makes
        hooks.sample_dir = os.path.join(args.out, "samples")
    try:
        step, metrics = fit(recipe, sampler, hp["total_steps"], 0, hooks)
        if rank == 0:
            os.makedirs(args.out, exist_ok=True)
            nets = {k: unwrap(n).state_dict() for k, n in recipe.nets.items()}  # weights only
            torch.save({"step": step, "nets": nets}, os.path.join(args.out, "latest.pt"))
            print(json.dumps({"finished": step, "world_size": world, "metrics": metrics,
                              "duration_s": round(time.time() - t0, 2)}), flush=True)
    except TrainingFault as err:  # a loss that became NaN: what happened, and what to change
        sys.exit(f"{err.reason}: {err.hint}" if err.hint else err.reason)
    finally:  # free the DDP wrappers while the process group lives (a failed run too): left to
        if world > 1:  # the exit, gloo's threads were torn down at 1 in 10 ("terminate called")
            del recipe
            gc.collect()  # the wrappers sit in reference cycles
            torch.distributed.destroy_process_group()

if __name__ == "__main__":
    sys.exit(main())
