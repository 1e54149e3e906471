"""Resource bombs are refused before they cost: each answers with a Diagnostic within seconds.

Each test prints its real elapsed time; the asserted bound (5 s) is generous so a busy CI machine
does not flake, while the bombs themselves took minutes (or never finished) before the limits.
"""

from __future__ import annotations

import time

import pytest

from compiler import EdgeModel, Project, add_block, add_network, analyze, save, shapes
from compiler.summary import summarize

BOUND_S = 5.0


def _nested(reps: tuple[int, ...], width: int = 8) -> Project:
    """Blocks B0 > B1 > ... each holding the next, repeated reps[i] times; a Linear innermost."""
    p = Project(name="bomb")
    names = [f"B{i}" for i in range(len(reps))]
    inner = add_block(p, names[-1])
    inner.chain(("io.block_input", {}, "x"), ("linear.linear", {"out_features": width}, "fc"),
                ("io.block_output", {}, "y"))
    for i in range(len(reps) - 2, -1, -1):
        b = add_block(p, names[i])
        b.chain(("io.block_input", {}, "x"),
                ("block.block", {"block": names[i + 1], "repeat": reps[i + 1]}, "inner"),
                ("io.block_output", {}, "y"))
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", width]}, "x"),
            ("block.block", {"block": names[0], "repeat": reps[0]}, "outer"),
            ("io.output", {}, "y"))
    return p


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    elapsed = time.perf_counter() - t
    print(f"{fn.__name__}: {elapsed:.3f} s")
    return out, elapsed


@pytest.mark.parametrize("reps", [(1000, 1000), (1000, 1000, 1000, 1000)])
def test_nested_repeats_are_refused_on_the_outermost_block_node(reps):
    analysis, elapsed = _timed(analyze, _nested(reps))
    assert elapsed < BOUND_S
    err = next(d for d in analysis.errors if "node instances" in d.message)
    assert err.node_name == "outer" and err.network == "net"
    assert f"{shapes.MAX_INSTANCES:,}" in err.message and "repeat" in err.hint
    expected = reps[0] * (reps[1] * 3 + 2) if len(reps) == 2 else None
    if expected is not None:
        assert f"{expected:,}" in err.message


def test_nested_bomb_file_is_refused_by_check(tmp_path, capsys):
    from builder.cli import main

    path = tmp_path / "bomb.loom"
    save(_nested((1000, 1000)), path)
    assert path.stat().st_size < 8192
    code, elapsed = _timed(main, ["check", str(path)])
    assert code == 1 and elapsed < BOUND_S
    assert "node instances" in capsys.readouterr().err


def test_moderate_repeats_still_analyse():
    analysis = analyze(_nested((10, 10)))
    assert analysis.ok, analysis.diagnostics
    res = analysis.networks["net"]
    assert res.instance_count == 2 + 10 * (2 + 10 * 3)  # a block node counts as its repeats
    assert res.param_count == 100 * (8 * 8 + 8)  # every repeat of the Linear counted


def _linears(*sizes: int, in_size: int) -> Project:
    p = Project(name="wide")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", in_size]}, "x"),
            *[("linear.linear", {"out_features": s}, f"fc{i}") for i, s in enumerate(sizes)],
            ("io.output", {}, "y"))
    return p


def test_terabyte_linear_is_an_error_naming_the_size():
    analysis, elapsed = _timed(analyze, _linears(10**6, in_size=10**6))
    assert elapsed < BOUND_S
    err = next(d for d in analysis.errors if d.node_name == "fc0")
    assert "1,000,001,000,000 parameters" in err.message and "'out_features'" in err.hint


def test_huge_linear_is_a_warning():
    analysis = analyze(_linears(20_000, in_size=20_000))  # 400M params: 1.5 GiB
    assert analysis.ok
    warn = next(d for d in analysis.warnings if d.node_name == "fc0")
    assert "400,020,000 parameters" in warn.message and "out_features" in warn.hint


def test_network_total_has_a_limit():
    analysis, elapsed = _timed(analyze, _linears(*[40_000] * 6, in_size=40_000))
    assert elapsed < BOUND_S
    assert not any("over the limit of" in d.message and d.node_name.startswith("fc")
                   and "for one node" in d.message for d in analysis.errors)
    err = next(d for d in analysis.errors if "the network has" in d.message)
    assert f"{shapes.MAX_NETWORK_PARAMS:,}" in err.message and err.node_name.startswith("fc")


def test_flops_are_skipped_above_the_instance_limit(monkeypatch):
    monkeypatch.setattr(shapes, "MAX_FLOP_INSTANCES", 4)
    import compiler.summary as summary

    monkeypatch.setattr(summary, "MAX_FLOP_INSTANCES", 4)
    p = _linears(8, 8, 8, in_size=8)  # 5 instances
    analysis = analyze(p)
    assert analysis.ok
    assert any("FLOPs are not counted" in d.message for d in analysis.warnings)
    s = summarize(p, analysis=analysis)["net"]
    assert s.flops is None and "FLOPs not counted" in (s.error or "")
    assert s.params == 3 * (8 * 8 + 8)  # params are still counted


def test_flops_counted_below_the_limit():
    s = summarize(_linears(8, in_size=8))["net"]
    assert s.flops == 2 * 8 * 8 and s.error is None


def _block_with_two_outputs_named_y() -> Project:
    p = Project(name="dup")
    b = add_block(p, "B")
    x = b.add("io.block_input", "x")
    r = b.add("activation.relu", "r")
    b.connect(x, r)
    y1 = b.add("io.block_output", "y")
    b.connect(r, y1)
    y2 = b.add("io.block_output", "y2")
    b.connect(x, y2)
    p.block("B").node(y2).name = "y"  # the Graph API refuses this; a file can hold it
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 4]}, "x"), ("block.block", {"block": "B"}, "blk"))
    g.connect(g.find("blk"), g.add("io.output", "out"), "y")
    return p


def test_two_block_outputs_with_one_name_are_an_error():
    analysis = analyze(_block_with_two_outputs_named_y())
    err = next(d for d in analysis.errors if "two Block Output" in d.message)
    # reported on the block node where the block is used, naming the inner node
    assert err.network == "net" and err.node_name == "blk" and "node 'y'" in err.message
    assert err.hint


def test_two_block_inputs_with_one_name_are_an_error():
    p = Project(name="dup")
    b = add_block(p, "B")
    x1, x2 = b.add("io.block_input", "x"), b.add("io.block_input", "x2")
    add = b.add("merge.add", "sum")
    b.connect(x1, add)
    b.connect(x2, add)
    b.connect(add, b.add("io.block_output", "y"))
    p.block("B").node(x2).name = "x"
    errs = [d for d in analyze(p).errors if "two Block Input" in d.message]
    assert len(errs) == 1 and errs[0].node_name == "x"


def test_wire_into_itself_is_an_error():
    p = _linears(8, in_size=8)
    fc = p.networks[0].node_by_name("fc0")
    p.networks[0].edges.append(EdgeModel(src=fc.id, dst=fc.id))
    err = next(d for d in analyze(p).errors if "into itself" in d.message)
    assert err.node_name == "fc0" and err.hint
