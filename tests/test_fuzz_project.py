"""Property: no mutated project file makes load, analysis or codegen raise anything but the
project's own errors (ProjectLoadError, CodegenError) or run past a few seconds.

Cases are JSON-aware mutations of template projects (see ``tests/fuzz_cases.py``); the nightly-size
run is ``scripts/fuzz_project.py``. Block repeats are kept small here; repeat bombs are their own
check in the script (``--bombs``).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.fuzz_cases import project_texts, run_case, time_limit

CASE_SECONDS = 10.0


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(project_texts(max_mutations=4, max_extra_nodes=200))
def test_mutated_projects_never_crash(text):
    with time_limit(CASE_SECONDS):
        run_case(text)


def test_unmutated_seeds_generate():
    """The property above is only meaningful if the seeds themselves get through codegen."""
    from tests.fuzz_cases import seed_texts

    assert {run_case(t) for t in seed_texts()} == {"generated"}
