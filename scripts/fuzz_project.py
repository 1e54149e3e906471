"""Nightly-size fuzzing of project files: mutated templates through load, analysis and codegen.

    python scripts/fuzz_project.py --cases 10000 [--seed 0] [--bombs] [--out failures.jsonl]

Prints counts per outcome (refused / diagnosed / codegen-error / generated) and every failure
(an exception other than the project's own, or a case past --seconds) with a shrunk input.
Exit 1 when anything failed. The strategies are those of tests/test_fuzz_project.py.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.fuzz_cases import Hang, project_texts, run_case, time_limit  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=10.0, help="time budget of one case")
    ap.add_argument("--bombs", action="store_true", help="keep large block repeats")
    ap.add_argument("--nodes", type=int, default=2000, help="most nodes added to a chain")
    ap.add_argument("--out", type=Path, help="write failures here as JSON lines")
    args = ap.parse_args(argv)

    outcomes: collections.Counter[str] = collections.Counter()
    failures: dict[str, dict] = {}  # one (the shortest) input per failure signature
    started = time.time()

    @settings(max_examples=args.cases, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(project_texts(max_mutations=6, max_extra_nodes=args.nodes, bombs=args.bombs))
    def case(text: str) -> None:
        try:
            with time_limit(args.seconds):
                outcomes[run_case(text)] += 1
        except Hang:
            _record(failures, "Hang", text, "")
            outcomes["hang"] += 1
        except Exception as err:  # noqa: BLE001 - anything here is the finding
            tb = traceback.extract_tb(err.__traceback__)[-1]
            sig = f"{type(err).__name__} at {Path(tb.filename).name}:{tb.lineno}"
            _record(failures, sig, text, f"{type(err).__name__}: {str(err)[:300]}")
            outcomes["failure"] += 1

    seed(args.seed)(case)()  # reproducible runs
    total = sum(outcomes.values())
    print(f"{total} cases in {time.time() - started:.0f} s: " +
          ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    for sig, info in failures.items():
        print(f"FAIL {sig} x{info['count']}: {info['error']}\n  shortest input "
              f"({len(info['text'])} chars): {info['text'][:400]}")
    if args.out:
        args.out.write_text("".join(json.dumps(dict(sig=s, **i)) + "\n"
                                    for s, i in failures.items()))
    return 1 if failures else 0


def _record(failures: dict[str, dict], sig: str, text: str, error: str) -> None:
    info = failures.setdefault(sig, {"count": 0, "text": text, "error": error})
    info["count"] += 1
    if len(text) < len(info["text"]):
        info["text"], info["error"] = text, error or info["error"]


if __name__ == "__main__":
    sys.exit(main())
