"""Architecture search over a drawn graph (no Qt).

``space``: a project's choices as decisions, ``resolve`` to an ordinary project. ``samplers``:
the strategies as Optuna samplers (aging evolution, a REINFORCE controller; Optuna's own TPE,
random and NSGA-II). ``evaluate``: the analysis before training (shapes, constraints, params,
FLOPs, latency). ``trial``: one trial as a training run of the runner in a child process.
``study``: the study beside the project (``<project>.search/study.db``), its budget, pruning,
stop and resume, and the JSON-lines events the app and the CLI read.
"""
