"""The entry point of an exported train.py: data, networks from model.py, the recipe, the loop.

Copied into train.py after the engine, the data loaders and the recipe (which define every name
used here) and ``CONFIG``. Supports ``torchrun --nproc_per_node=N train.py``
(DistributedDataParallel, gloo on CPU, NCCL on CUDA). Never imported by Layerloom itself.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time

import torch

# layerloom: local imports (train.py defines these names above)
from training.data.builtin import BUILTIN  # noqa: F401
from training.data.files import FILES  # noqa: F401
from training.engine import Hooks, Optimizers, Sampler, checkpoint_state, fit, save_checkpoint

DATASETS = {**BUILTIN, **FILES}
RECIPE = None  # the exported recipe's class
CONFIG: dict = {}  # the run's settings
# layerloom: end local imports


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the exported model (" + CONFIG["project"] + ")")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--device", default=CONFIG["hyper"].get("device", "auto"))
    ap.add_argument("--out", default="checkpoints")
    args = ap.parse_args(argv)
    hp = dict(CONFIG["hyper"])
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if world > 1 and device.type == "cuda":
        local, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
        if local >= gpus:  # NCCL cannot put two processes on one GPU: say so before it fails
            sys.exit(f"process {local} has no GPU of its own: this machine has {gpus}. Run "
                     f"torchrun --nproc_per_node={gpus} train.py, or add --device cpu to "
                     f"train on the CPU (gloo)")
    if world > 1:
        import torch.distributed as dist

        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    model = importlib.import_module("model")
    data = DATASETS[CONFIG["dataset"]](CONFIG["dataset_options"], hp["seed"])
    torch.manual_seed(hp["seed"])
    nets = {role: model.NETWORKS[name]().to(device) for role, name in CONFIG["networks"].items()}
    recipe = RECIPE(nets, data, hp, device, getattr(model, "Graph", None))
    recipe.adapt({k: [(tuple(d), t) for d, t in v] for k, v in CONFIG["input_specs"].items()})
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        for k, net in recipe.nets.items():
            if any(p.requires_grad for p in net.parameters()):
                recipe.nets[k] = DDP(net, device_ids=ids)
    sampler = Sampler(data.size("train"), hp["batch_size"], hp["seed"], rank, world)
    if args.steps:
        total = args.steps
    elif args.epochs:
        total = args.epochs * sampler.steps_per_epoch
    else:
        total = hp.get("steps") or hp["epochs"] * sampler.steps_per_epoch
    hp["total_steps"] = total
    hp["eval_every"] = hp.get("eval_every") or max(1, total // 10)
    recipe.opt = Optimizers(recipe.param_groups(), hp, total, device)

    class Print(Hooks):
        def metric(self, record):
            if rank == 0:
                shown = {k: round(v, 5) for k, v in record.items()
                         if isinstance(v, float) and k != "epoch"}
                print(json.dumps({"step": record["step"], "split": record["split"], **shown}),
                      flush=True)

        def warning(self, record):
            if rank == 0:
                print(json.dumps({"warning": record["message"], "hint": record["hint"]}),
                      flush=True)

        def sample(self, record):
            if rank == 0 and record.get("kind") == "text":
                print(record["text"][:300], flush=True)

    t0 = time.time()
    out = args.out if rank == 0 else None
    step, metrics = fit(recipe, sampler, total, 0, Print(), out and os.path.join(out, "samples"))
    if rank == 0:
        save_checkpoint(os.path.join(args.out, "latest.pt"), checkpoint_state(recipe, step))
        print(json.dumps({"finished": step, "world_size": world, "metrics": metrics,
                          "duration_s": round(time.time() - t0, 2)}), flush=True)
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
