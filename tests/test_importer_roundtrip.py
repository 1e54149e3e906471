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
#: graph inputs: node features and the structure (the exported model's Graph tuple)
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
    """--input and --dtype of each input; a Graph Input is node features V,F and the graph."""
    shapes: list[str] = []
    dtypes: list[str] = []
    for r in res.inputs():
        if r.cls.id == "io.graph_input":
            shapes += [f"V,{r.params.features}", "graph"]
            dtypes += ["float", "float"]
        else:
            shapes.append(",".join(map(str, r.params.shape)))
            dtypes.append(r.params.dtype)
    return shapes, dtypes


def _example(shapes: list[str], dtypes: list[str], graph_cls: type) -> list:
    """A fresh input of batch (or node count) 2; a graph: four random edges in one graph."""
    out: list = []
    for shape, d in zip(shapes, dtypes, strict=True):
        if shape == "graph":
            out.append(graph_cls(torch.randint(0, 2, (2, 4)), torch.zeros(2, dtype=torch.long),
                                 1))
        elif d == "long":
            out.append(torch.randint(0, 8, (2, 5)))
        else:
            out.append(torch.randn([2] + [int(s) for s in shape.split(",")[1:]]))
    return out


#: a quick cross-section (MLP, CNN, RNN, several outputs, a graph; blocks: test_importer.py);
#: the rest run with the slow tests (each well under a minute)
FAST = {"mlp-digits", "alexnet-small", "lstm-digits", "vae-digits", "gcn-karate"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in SMALL])
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
        xs = _example(shapes, dtypes, load_object(f"{path}:Graph") if "graph" in shapes
                      else tuple)
        original.eval(), rebuilt.eval()
        with torch.no_grad():
            a, b = original(*xs), rebuilt(*xs)
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,),
                        strict=True):
            assert torch.allclose(x, y, atol=1e-5)


@pytest.mark.timeout(60)
def test_graph_templates_import_without_shapes(tmp_path) -> None:
    """A graph model's inputs follow from its forward (features, Graph) and first layer: no
    --input needed, and the imported Graph Input has the original's feature size."""
    assert GRAPH, "a graph template exists"
    project = templates.build(GRAPH[0])
    source = generate(project)
    path = tmp_path / "model.py"
    path.write_text(source.text)
    result = import_model(f"{path}:{source.network_classes['net']}")
    want = [n.params for n in project.network("net").nodes if n.type == "io.graph_input"]
    got = [n.params for n in result.project.network("net").nodes if n.type == "io.graph_input"]
    assert got == want and len(got) == 1
    assert result.report.max_difference <= 1e-5 and result.report.opaque == []


@pytest.mark.timeout(60)
def test_a_graph_input_needs_its_features(tmp_path) -> None:
    """--input graph alone (no node features) says what to give, not a traceback."""
    source = generate(templates.build(GRAPH[0]))
    path = tmp_path / "model.py"
    path.write_text(source.text)
    with pytest.raises(ImportFailure, match="--input V,F --input graph"):
        import_model(f"{path}:{source.network_classes['net']}", inputs=["graph"])


_GRAPH_BLOCKS = '''

class Layer(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.gcn = GCNConv(c_in, c_out)
        self.act = nn.ReLU()

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        return self.act(self.gcn(x, graph))


class Stack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = Layer(34, 16)
        self.l2 = Layer(16, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        return self.head(self.l2(self.l1(x, graph), graph))
'''


@pytest.mark.timeout(60)
def test_a_user_block_taking_the_graph_imports_as_a_block(tmp_path) -> None:
    """A submodule called with (features, graph) becomes one block with a graph-kind input."""
    source = generate(templates.build("gcn-karate"))
    path = tmp_path / "model.py"
    path.write_text(source.text + _GRAPH_BLOCKS)
    result = import_model(f"{path}:Stack")
    assert [(b, uses) for b, uses, _ in result.report.blocks] == [("Layer", 2)]
    inputs = [n.params for n in result.project.block("Layer").nodes
              if n.type == "io.block_input"]
    assert inputs == [{"kind": "tensor"}, {"kind": "graph"}]
    assert result.report.params_imported == result.report.params_original
    assert result.report.max_difference <= 1e-5 and result.report.opaque == []
    assert not analyze(result.project).errors
