"""ONNX out: every small template that ONNX can express, exported and run in onnxruntime.

Each export (with perturbed weights, so outputs depend on inputs) is checked twice: by
``export_onnx`` itself (onnxruntime vs torch at sizes other than the trace's) and here,
independently, by running the written file at yet another batch size against a fresh instance of
the generated network with the same weights. What cannot be exported is
listed in ``CANNOT`` with the node that stops it and why, and the test holds the exporter to
naming exactly that node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import templates
from compiler import Project, add_network, analyze, build
from compiler import onnx_export as ox
from compiler.onnx_export import OnnxExportError, OnnxUnavailable, export_onnx
from nodes.base import TensorSpec

pytest.importorskip("onnxruntime", reason="the ONNX extra: pip install 'layerloom[onnx]'")

SMALL = [t.name for t in templates.all_templates() if t.variant == "small"]
#: template -> (node that cannot be exported, words the reason must contain)
CANNOT: dict[str, tuple[str, str]] = {
    # torch.onnx writes scatter_reduce(reduce="mean") as ScatterElements, which has no mean:
    # the file runs but gives other numbers, so the export is refused, naming the pool.
    "gcn-graphs": ("pool", "no mean reduction"),
    # torch.export unrolls nn.RNN over the sequence (LSTM and GRU keep a loop): T gets fixed.
    "rnn-charlm": ("rnn", "the T dim cannot stay dynamic"),
}


def _trained_like(project: Project) -> dict[str, dict[str, torch.Tensor]]:
    """Each network's initial weights plus noise: at initialisation some templates (zero-init
    gammas) give nearly the same output for every input, which would make any file pass."""
    built = build(project)
    out = {}
    for net in built.networks:
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(3)
        out[net] = {k: v + 0.2 * torch.randn(v.shape, generator=gen)
                    if v.is_floating_point() and "running" not in k else v
                    for k, v in built.instantiate(net).state_dict().items()}
    return out


def _independent_check(project: Project, result: ox.OnnxResult,
                       weights: dict[str, torch.Tensor], batch: int = 4) -> float:
    """Max |onnxruntime - torch| at batch size ``batch`` for a network with tensor inputs."""
    import onnxruntime as ort

    res = analyze(project).networks[result.network]
    model = build(project).instantiate(result.network).eval()
    model.load_state_dict(weights)
    sizes = {**ox.CHECK_SIZES, "N": batch}
    gen = torch.Generator().manual_seed(7)
    args = []
    for inp in res.inputs():
        for spec in inp.outs.values():
            assert isinstance(spec, TensorSpec)
            shape = spec.concrete(sizes)
            args.append(torch.randint(0, 2, shape, generator=gen) if spec.dtype == "long"
                        else torch.randn(shape, generator=gen))
    with torch.no_grad():
        out = model(*args)
    want = [o for o in (out if isinstance(out, tuple) else (out,))]
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    feeds = {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)}
    got = session.run(None, feeds)
    return max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_small_template_exports_and_runs_in_onnxruntime(name: str, tmp_path: Path) -> None:
    import onnx

    project = templates.build(name)
    if name in CANNOT:
        node, words = CANNOT[name]
        with pytest.raises(OnnxExportError) as err:
            export_onnx(project, tmp_path)
        assert err.value.node == node and words in str(err.value), str(err.value)
        assert not list(tmp_path.glob("*.onnx")), "a refused export leaves no file"
        return
    weights = _trained_like(project)
    results = export_onnx(project, tmp_path, weights=weights)
    assert [r.network for r in results] == [n.name for n in project.networks]
    for r in results:
        assert r.ok and r.path.exists(), r.line()
        model = onnx.load(str(r.path))
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 18
        res = analyze(project).networks[r.network]
        symbols = {d for inp in res.inputs() for s in inp.outs.values()
                   for d in getattr(s, "dims", (getattr(s, "nodes", None),)) if isinstance(d, str)}
        dims = {d for _, ds in r.inputs for d in ds if isinstance(d, str)}
        assert symbols <= dims, f"dynamic dims {dims} lack some of {symbols}"
        if all(isinstance(s, TensorSpec) for inp in res.inputs() for s in inp.outs.values()):
            assert _independent_check(project, r, weights[r.network]) <= r.tolerance


def test_a_node_onnx_cannot_express_is_named_with_the_reason(tmp_path: Path) -> None:
    p = Project(name="adaptive max")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 3, 9, 9]}, "x"),
            ("conv.conv2d", {"out_channels": 4, "kernel_size": 3}, "conv"),
            ("pool.adaptive_max_pool2d", {"output_size": [4, 4]}, "squeeze"),
            ("io.output", {}, "y"))
    with pytest.raises(OnnxExportError) as err:
        export_onnx(p, tmp_path)
    e = err.value
    assert (e.network, e.node, e.node_type) == ("net", "squeeze", "pool.adaptive_max_pool2d")
    assert "adaptive_max_pool2d" in e.reason and "ONNX has no translation" in e.reason
    assert not list(tmp_path.glob("*.onnx"))


def test_mlp_exports_with_named_dynamic_batch_and_given_weights(tmp_path: Path) -> None:
    from tests.helpers import mlp_project

    project = mlp_project()
    torch.manual_seed(5)
    trained = build(project).instantiate().state_dict()
    (r,) = export_onnx(project, tmp_path, weights={"net": trained})
    assert r.path.name == "model.onnx" and r.ok
    assert r.inputs == [("x", ["N", 64])] and r.outputs == [("logits", ["N", 10])]
    import onnxruntime as ort

    x = torch.randn(11, 64)  # a batch size the trace never saw
    model = build(project).instantiate().eval()
    model.load_state_dict(trained)
    got = ort.InferenceSession(str(r.path)).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - model(x).numpy()).max() <= r.tolerance


def test_without_the_extra_the_export_says_how_to_install(monkeypatch, tmp_path: Path) -> None:
    import sys

    from tests.helpers import mlp_project

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # how Python marks "not importable"
    assert ox.missing_packages() == ["onnxruntime"]
    with pytest.raises(OnnxUnavailable, match=r"pip install 'layerloom\[onnx\]'"):
        export_onnx(mlp_project(), tmp_path)


@pytest.mark.slow
def test_cli_export_onnx(tmp_path: Path, capsys) -> None:
    from builder.cli import main

    assert main(["export", "mlp-digits", "-o", str(tmp_path), "--onnx", "--model-only"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "model.py").exists() and (tmp_path / "model.onnx").exists()
    assert "onnxruntime vs torch at N=3: max |diff|" in out


def test_the_check_counts_a_nan_or_infinity_on_one_side_as_a_mismatch() -> None:
    nan, inf = float("nan"), float("inf")
    want = torch.tensor([1.0, nan, inf, -inf, 2.0])
    assert ox.output_diff(want, want.clone()) == 0.0  # the same NaNs and infinities agree
    assert ox.output_diff(want, torch.tensor([1.0, nan, inf, -inf, 2.5])) == 0.5
    for have in ([nan, nan, inf, -inf, 2.0], [1.0, 0.0, inf, -inf, 2.0],
                 [1.0, nan, -inf, -inf, 2.0], [1.0, nan, 3.0, -inf, 2.0]):
        assert ox.output_diff(want, torch.tensor(have)) == float("inf"), have
    assert ox.output_diff(torch.zeros(0), torch.zeros(0)) == 0.0
