"""The nightly-size run of the random-graph equivalence test: built vs exported modules.

Runs ``--cases`` graphs (default 1,000) from the strategy in tests/test_random_graphs.py and,
unlike pytest, keeps going after a failure, so the summary counts every disagreeing case::

    OMP_NUM_THREADS=1 python scripts/random_graphs.py --cases 1000
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import UnsatisfiedAssumption  # noqa: E402

from tests.test_random_graphs import check_equivalent, random_graphs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    args = parser.parse_args(argv)
    counts = {"cases": 0, "skipped": 0, "failures": 0}
    first: list[str] = []

    @settings(max_examples=args.cases, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=random_graphs(), seed=st.integers(0, 2**31 - 1))
    def run(case, seed):
        counts["cases"] += 1
        try:
            check_equivalent(*case, seed)
        except UnsatisfiedAssumption:
            counts["skipped"] += 1
        except Exception:  # noqa: BLE001 - counted and reported, the run goes on
            counts["failures"] += 1
            if not first:
                first.append(f"{case[0].model_dump_json()}\n{traceback.format_exc()}")

    start = time.perf_counter()
    run()
    print(f"{counts['cases']} cases, {counts['skipped']} invalid (skipped), "
          f"{counts['failures']} failures in {time.perf_counter() - start:.1f} s")
    if first:
        print("first failure:\n" + first[0])
    return 1 if counts["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
