"""Round trip: every small template's exported ``model.py`` imports back to a project whose
analysis (output shapes), parameter count, node types and params, and outputs with the imported
weights equal the original's."""

from __future__ import annotations

import pytest
import torch

import templates
from compiler.build import build
from compiler.codegen import generate
from compiler.imported_weights import weights_path
from compiler.importing import ImportFailure, import_model
from compiler.importing.source import load_object
from compiler.loading import load
from compiler.shapes import NetworkResult, analyze

SMALL = [t.name for t in templates.all_templates() if t.variant == "small"]
#: graph inputs (edge index + batch as a Graph tuple) are not imported yet
GRAPH = [n for n in SMALL if any(node.type == "io.graph_input" for net in
                                 templates.build(n).networks for node in net.nodes)]


def _ops(res: NetworkResult, out: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(type, validated params) of every op instance, blocks expanded; a node that writes no
    code (a Dropout with p=0) cannot come back from the code and is left out."""
    for node_id in res.order:
        nr = res.nodes[node_id]
        if nr.role == "block":
            for inst in nr.instances:
                _ops(inst, out)
        elif nr.role == "op" and not nr.cls.emit(nr.params, nr.ins).is_identity:
            out.append((nr.cls.id, repr(nr.params)))
    return out


def _inputs(res: NetworkResult) -> tuple[list[str], list[str]]:
    ins = res.inputs()
    return ([",".join(map(str, r.params.shape)) for r in ins], [r.params.dtype for r in ins])


#: a quick cross-section (MLP, CNN, RNN, several outputs; blocks: test_importer.py); the
#: rest run with the slow tests (each well under a minute)
FAST = {"mlp-digits", "alexnet-small", "lstm-digits", "vae-digits"}


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in SMALL if n not in GRAPH])
def test_template_export_imports_back(name: str, tmp_path) -> None:
    project = templates.build(name)
    analysis = analyze(project)
    source = generate(analysis)
    path = tmp_path / "model.py"
    path.write_text(source.text)
    for net, cls in source.network_classes.items():
        res = analysis.networks[net]
        original = load_object(f"{path}:{cls}")()  # the exported class, random weights
        shapes, dtypes = _inputs(res)
        result = import_model(lambda m=original: m, inputs=shapes, dtypes=dtypes)
        again = analyze(result.project)
        assert not again.errors
        back = again.networks["net"]
        assert back.param_count == res.param_count
        assert [o.ins["x"] for o in back.outputs()] == [o.ins["x"] for o in res.outputs()]
        assert sorted(_ops(back, [])) == sorted(_ops(res, []))
        assert result.report.max_difference <= 1e-5
        # with the weights as saved beside the project, the rebuilt network equals the original
        saved, _ = result.save(tmp_path / f"{net}.loom")
        rebuilt = build(load(saved)).instantiate("net", weights=str(weights_path(saved)))
        xs = [torch.randint(0, 8, (2, 5)) if d == "long" else
              torch.randn([2] + [int(s) for s in shape.split(",")[1:]])
              for shape, d in zip(shapes, dtypes, strict=True)]
        original.eval(), rebuilt.eval()
        with torch.no_grad():
            a, b = original(*xs), rebuilt(*xs)
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,),
                        strict=True):
            assert torch.allclose(x, y, atol=1e-5)


def test_graph_templates_say_they_need_shapes(tmp_path) -> None:
    """Graph inputs are not imported yet: the message says what to give, not a traceback."""
    assert GRAPH, "a graph template exists"
    source = generate(templates.build(GRAPH[0]))
    path = tmp_path / "model.py"
    path.write_text(source.text)
    with pytest.raises(ImportFailure, match="--input"):
        import_model(f"{path}:{source.network_classes['net']}")
