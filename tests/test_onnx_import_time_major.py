"""ONNX out of an imported time-major LSTM or GRU (``batch_first=False``, input [T, N, F]).

The importer draws it as a Transpose ahead of the (batch-first) recurrent node. The ONNX file must
keep T dynamic: onnxruntime runs it at a sequence length and batch size the trace never saw,
and its output is compared with the original torch module, not the generated one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import reference_import_models as M
import torch
from torch import Tensor, nn

from compiler.importing import import_model
from compiler.onnx_export import export_onnx

pytest.importorskip("onnxruntime", reason="the ONNX extra: pip install 'layerloom[onnx]'")


class SeqFirstGRU(nn.Module):
    """A one-layer GRU in torch's default layout; the last step and the final state."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(8, 16)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: Tensor) -> Tensor:
        out, h = self.rnn(x)
        return self.fc(out[-1] + h[-1])


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("cls, node_type", [(M.SeqFirstLSTM, "recurrent.lstm"),
                                            (SeqFirstGRU, "recurrent.gru")],
                         ids=["lstm", "gru"])
def test_imported_time_major_rnn_exports_with_a_dynamic_sequence(cls: type[nn.Module],
                                                                 node_type: str,
                                                                 tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    original = cls().eval()
    r = import_model(original, inputs=["T,N,8"])
    assert {n.type for n in r.project.network("net").nodes} >= {"shape.transpose", node_type}
    (result,) = export_onnx(r.project, tmp_path, weights=r.weights)
    assert result.ok, result.line()
    assert result.inputs == [("x", ["T", "N", 8])]
    # the file itself declares T, not only the result's summary of it
    dims = onnx.load(str(result.path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["T", "N", 8]
    x = torch.randn(11, 4, 8, generator=torch.Generator().manual_seed(3))  # T=11, N=4: unseen
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        want = original(x).numpy()
    assert got.shape == want.shape == (4, 3)
    assert np.abs(got - want).max() <= result.tolerance
