"""The torch.export fallback of the importer: a forward torch.fx cannot follow (a branch on a
size) is exported instead, its ATen graph collapsed back into the calls of its submodules, so the
catalogue's modules are still their nodes; the import is verified as any other. Control flow on
values, which torch.export cannot follow either, keeps fx's message (module and line)."""

from __future__ import annotations

import pytest
import reference_import_models as M
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compiler.build import build
from compiler.importing import ImportFailure, import_model
from compiler.importing.exported import collapse
from compiler.loading import load
from compiler.project import save
from compiler.shapes import analyze


class Residual(nn.Module):
    """A plain (fx-traceable) user block: converted with fx even inside an exported forward."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.fc(x)) + x


class ShapeBranch(nn.Module):
    """fx stops at ``if x.shape[1] > 3`` (a Proxy has no truth value); export specialises it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.small = nn.Conv2d(4, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 16)
        self.res = Residual(16)
        self.head = nn.Linear(16, 3)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] > 3:
            x = self.conv(x)
        else:
            x = self.small(x)
        x = self.act(self.bn(x))
        x = self.pool(self.act(x))  # the same ReLU called twice: two nodes
        x = x.view(x.size(0), -1)
        x = self.res(torch.relu(self.fc(x)))
        return self.head(x)


class Wrapper(nn.Module):
    """A traceable root around a shape-branching submodule: that one is exported on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(6, 8)
        self.inner = Branchy(8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.inner(self.stem(x)))


class Branchy(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.wide = nn.Linear(width, width)
        self.narrow = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        y = self.wide(x) if x.shape[-1] >= 8 else self.narrow(x)
        return torch.cat([torch.sigmoid(y), x], dim=1).flatten(1)[:, :8]


class NoNode(nn.Module):
    """Exported fine, but a cumulative sum has no node type: fx's message, and what export hit."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] == 4:
            x = self.fc(x)
        return torch.cumsum(x, dim=1)


def _types(result) -> list[str]:
    return [n.type for n in result.project.network("net").nodes]


@pytest.mark.timeout(120)
def test_shape_branch_imports_through_torch_export_verified(tmp_path) -> None:
    model = ShapeBranch()
    r = import_model(lambda: model, inputs=["N,4,8,8"])
    assert r.report.max_difference <= 1e-5
    assert r.report.params_imported == sum(p.numel() for p in model.parameters()) - sum(
        p.numel() for p in model.small.parameters())  # the branch not taken is not drawn
    assert any("small never ran on the example input" in w for w in r.report.warnings)
    # the report says the fallback was used, and where fx stopped
    assert [q for q, _ in r.report.exported] == ["ShapeBranch"]
    assert "if x.shape[1] > 3:" in r.report.exported[0][1]
    assert "torch.export fallback: ShapeBranch" in r.report.text()
    # the catalogue modules are their nodes again, with their settings; the user block is a block
    nodes = {n.name: n for n in r.project.network("net").nodes}
    assert nodes["conv"].type == "conv.conv2d" and nodes["conv"].params["kernel_size"] == 3
    assert nodes["pool"].type == "pool.max_pool2d"
    assert nodes["res"].type == "block.block" and r.report.opaque == []
    assert _types(r).count("activation.relu") == 3  # act twice, torch.relu once
    assert "shape.reshape" in _types(r) and "norm.batch_norm2d" in _types(r)
    assert [b for b, _, _ in r.report.blocks] == ["Residual"]
    # the batch stays symbolic: the analysis gives [N, 3]
    res = analyze(r.project).networks["net"]
    assert [o.ins["x"].dims for o in res.outputs()] == [("N", 3)]
    # saved, loaded and rebuilt, with the imported weights it computes what the original does
    # on a new batch size
    path = tmp_path / "branch.loom"
    save(r.project, path)
    rebuilt = build(load(path)).instantiate("net")
    rebuilt.load_state_dict(r.weights["net"])
    rebuilt.eval()
    x = torch.randn(5, 4, 8, 8)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), model(x), atol=1e-5)


@pytest.mark.timeout(60)
def test_untraceable_submodule_is_exported_as_a_block_not_opaque() -> None:
    r = import_model(Wrapper, inputs=["N,6"])
    assert r.report.max_difference <= 1e-5 and r.report.opaque == []
    assert [q for q, _ in r.report.exported] == ["inner"]
    assert [b for b, _, _ in r.report.blocks] == ["Branchy"]
    block = r.project.block("Branchy")
    types = sorted(n.type for n in block.nodes)
    assert types == sorted(["io.block_input", "io.block_output", "linear.linear",
                            "activation.sigmoid", "merge.concat", "shape.flatten",
                            "shape.slice"])


@pytest.mark.timeout(60)
def test_control_flow_on_values_still_names_module_and_line() -> None:
    """``if x.sum() > 0`` depends on the values: torch.export cannot follow it either."""
    with pytest.raises(ImportFailure) as err:
        import_model(M.DataDependent, inputs=["N,4"])
    text = str(err.value)
    assert "reference_import_models.py:" in text and "if x.sum() > 0" in text
    assert "--leaf DataDependent" in text and "torch.export cannot follow it either" in text


@pytest.mark.timeout(60)
def test_an_exported_op_without_a_node_keeps_fxs_message() -> None:
    with pytest.raises(ImportFailure) as err:
        import_model(NoNode, inputs=["N,4"])
    text = str(err.value)
    assert "if x.shape[1] == 4:" in text and "--leaf NoNode" in text
    assert "torch.export traced it, but" in text and "cumsum" in text


@pytest.mark.timeout(60)
def test_collapse_gives_one_call_per_submodule_call() -> None:
    """The ATen ops of each submodule call become one call_module (two for a module called
    twice); the ops of this forward itself stay ATen ops."""
    model = ShapeBranch().eval()
    ep = torch.export.export(model, (torch.randn(2, 4, 8, 8),), strict=False)
    graph = collapse(ep, model)
    calls = [str(n.target) for n in graph.nodes if n.op == "call_module"]
    assert calls == ["conv", "bn", "act", "act", "pool", "fc", "res", "head"]
    own = [str(n.target) for n in graph.nodes if n.op == "call_function"]
    assert "aten.view.default" in own and "aten.relu.default" in own
    assert not any("conv" in t or "linear" in t for t in own)


class AroundNoNode(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = NoNode()
        self.head = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.inner(x))


@pytest.mark.timeout(60)
def test_an_exported_submodule_that_cannot_be_drawn_stays_opaque() -> None:
    """What the fallback cannot map is kept as the user's code, and the import verified."""
    r = import_model(AroundNoNode, inputs=["N,4"])
    assert [(q, ref) for q, ref, _ in r.report.opaque] == [("inner", "test_import_fallback:NoNode")]
    reason = r.report.opaque[0][2]
    assert "if x.shape[1] == 4:" in reason and "torch.export traced it, but" in reason
    assert r.report.exported == [] and r.report.max_difference <= 1e-5


_USER_FILE = '''
import torch
from torch import Tensor, nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.head = nn.Linear(8 * 8 * 8, 3)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] > 3:
            x = torch.relu(self.conv(x))
        return self.head(torch.flatten(x, 1))
'''


@pytest.mark.timeout(60)
def test_cli_reports_the_fallback(tmp_path, capsys) -> None:
    from builder.cli import main as cli_main

    src = tmp_path / "user_net.py"
    src.write_text(_USER_FILE)
    out = tmp_path / "net.loom"
    assert cli_main(["import", f"{src}:Net", "-o", str(out), "--input", "N,4,8,8"]) == 0
    text = capsys.readouterr().out
    assert "traced with the torch.export fallback: Net" in text
    assert "user_net.py:13: `if x.shape[1] > 3:`" in text
    assert [n.type for n in load(out).network("net").nodes] == [
        "io.input", "conv.conv2d", "activation.relu", "shape.flatten", "linear.linear",
        "io.output"]


class TiedBranch(nn.Module):
    """A weight read by the forward itself (``F.linear(x, wte.weight)``) is still the tied pair."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(11, 16)
        self.ln = nn.LayerNorm(16)

    def forward(self, idx: Tensor) -> Tensor:
        x = self.ln(self.wte(idx))
        if x.shape[-1] == 16:
            x = F.gelu(x)
        return F.linear(x, self.wte.weight)


@pytest.mark.timeout(60)
def test_tied_weights_through_the_fallback() -> None:
    r = import_model(TiedBranch, inputs=["N,T"], dtypes=["long"])
    assert _types(r) == ["io.input", "linear.tied_embedding", "norm.layer_norm",
                         "activation.gelu", "linear.tied_linear", "io.output"]
    assert r.report.params_imported == r.report.params_original
    assert r.report.max_difference <= 1e-5 and [q for q, _ in r.report.exported] == ["TiedBranch"]
    res = analyze(r.project).networks["net"]
    assert [o.ins["x"].dims for o in res.outputs()] == [("N", "T", 11)]
