"""Train every small template for a few steps on a CUDA GPU, with and without mixed precision
and torch.compile, and print one JSON line per run (device, outcome, samples/s, final metrics).

    python scripts/cuda_check.py [--steps 60] [--templates a,b,...] [--amp off,bf16,fp16]

CI has no GPU; run this on a machine with one after touching training/ or codegen. It exits 1
when any run fails, and prints why.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import templates  # noqa: E402
import training  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--templates", default="")
    ap.add_argument("--amp", default="off,bf16")
    ap.add_argument("--compile", default="mlp-digits,resnet18-small,gpt-small",
                    help="templates also run with torch.compile on")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    names = a.templates.split(",") if a.templates else \
        [t.name for t in templates.all_templates() if t.variant == "small"]
    plans = [(n, amp, False) for n in names for amp in a.amp.split(",")]
    plans += [(n, "off", True) for n in a.compile.split(",") if n in names]
    bad = 0
    for name, amp, comp in plans:
        events: list[dict] = []
        t = time.time()
        with tempfile.TemporaryDirectory() as d:
            ev = training.run(templates.build(name), d, steps=a.steps, device="cuda",
                              hyper={"amp": amp, "compile": comp, "log_every": 10,
                                     "max_val_samples": 512},
                              on_event=events.append)
        started = next((e for e in events if e["event"] == "started"), {})
        rates = [e["samples_per_s"] for e in events
                 if e["event"] == "metric" and e.get("split") == "train"]
        row = {"template": name, "amp": amp, "compile": comp, "outcome": ev["event"],
               "device": started.get("device_name"), "seconds": round(time.time() - t, 1),
               "samples_per_s": round(rates[-1]) if rates else None,
               "metrics": {k: round(v, 4) for k, v in (ev.get("metrics") or {}).items()
                           if isinstance(v, (int, float))}}
        if ev["event"] != "finished":
            bad += 1
            row["reason"] = ev.get("reason")
        print(json.dumps(row), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
