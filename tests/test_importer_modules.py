"""Common torch.nn modules import as their catalogue nodes, with params read from the module.

Each case is a tiny ``nn.Sequential`` around the module; the import must be verified (the
generated model, with the copied weights, gives the original's outputs), keep no opaque node,
and draw the module as the expected node type with the expected params. Modules with no node
type stay opaque (by design), and say so.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
from torch import nn

from compiler.importing import ImportFailure, import_model

S = nn.Sequential

#: id -> (factory, input shape, dtype, node type the module becomes, params that node must have)
CASES: dict[str, tuple[Callable[[], nn.Module], str, str, str, dict[str, Any]]] = {
    "flatten": (lambda: S(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)),
                "N,3,8,8", "float", "shape.flatten", {"start_dim": 1, "end_dim": -1}),
    "flatten-2": (lambda: S(nn.Conv2d(3, 4, 3), nn.Flatten(2)), "N,3,8,8", "float",
                  "shape.flatten", {"start_dim": 2, "end_dim": -1}),
    "flatten-1-2": (lambda: S(nn.Conv2d(3, 4, 3), nn.Flatten(1, 2)), "N,3,8,8", "float",
                    "shape.flatten", {"start_dim": 1, "end_dim": 2}),
    "flatten-batch-and-time": (lambda: S(nn.Linear(4, 4), nn.Flatten(0, 1)), "N,T,4", "float",
                               "shape.flatten", {"start_dim": 0, "end_dim": 1}),
    "unflatten": (lambda: S(nn.Linear(8, 24), nn.Unflatten(1, (4, 6))), "N,8", "float",
                  "shape.reshape", {"shape": [4, 6]}),
    "unflatten-last-of-sequence": (lambda: S(nn.Linear(8, 6), nn.Unflatten(-1, (2, 3))),
                                   "N,T,8", "float", "shape.reshape", {"shape": [-1, 2, 3]}),
    "unflatten-channels-of-sequence": (lambda: S(nn.Conv1d(3, 6, 1), nn.Unflatten(1, (2, -1))),
                                       "N,3,T", "float", "shape.reshape", {"shape": [2, 3, -1]}),
    "identity": (lambda: S(nn.Linear(4, 4), nn.Identity()), "N,4", "float",
                 "linear.identity", {}),
    "relu": (lambda: S(nn.Linear(4, 4), nn.ReLU(inplace=True)), "N,4", "float",
             "activation.relu", {}),
    "leaky-relu": (lambda: S(nn.Linear(4, 4), nn.LeakyReLU(0.2)), "N,4", "float",
                   "activation.leaky_relu", {"negative_slope": 0.2}),
    "gelu-tanh": (lambda: S(nn.Linear(4, 4), nn.GELU(approximate="tanh")), "N,4", "float",
                  "activation.gelu", {"approximate": "tanh"}),
    "silu": (lambda: S(nn.Linear(4, 4), nn.SiLU()), "N,4", "float", "activation.silu", {}),
    "elu": (lambda: S(nn.Linear(4, 4), nn.ELU(0.5)), "N,4", "float",
            "activation.elu", {"alpha": 0.5}),
    "sigmoid": (lambda: S(nn.Linear(4, 4), nn.Sigmoid()), "N,4", "float",
                "activation.sigmoid", {}),
    "tanh": (lambda: S(nn.Linear(4, 4), nn.Tanh()), "N,4", "float", "activation.tanh", {}),
    "softmax": (lambda: S(nn.Linear(4, 4), nn.Softmax(dim=1)), "N,T,4", "float",
                "activation.softmax", {"dim": 1}),
    "log-softmax": (lambda: S(nn.Linear(4, 4), nn.LogSoftmax(dim=-1)), "N,4", "float",
                    "activation.log_softmax", {"dim": -1}),
    "dropout": (lambda: S(nn.Linear(4, 4), nn.Dropout(0.3)), "N,4", "float",
                "norm.dropout", {"p": 0.3}),
    "dropout2d": (lambda: S(nn.Conv2d(3, 4, 3), nn.Dropout2d(0.3)), "N,3,8,8", "float",
                  "norm.dropout2d", {"p": 0.3}),
    "batch-norm1d": (lambda: S(nn.Linear(4, 4), nn.BatchNorm1d(4, momentum=0.2)), "N,4",
                     "float", "norm.batch_norm1d", {"momentum": 0.2, "affine": True}),
    # no tensors of its own (weight and running stats registered as None): nothing to copy
    "batch-norm1d-bare": (lambda: S(nn.Linear(4, 4), nn.BatchNorm1d(
        4, affine=False, track_running_stats=False)), "N,4", "float", "norm.batch_norm1d",
        {"affine": False, "track_running_stats": False}),
    "batch-norm2d": (lambda: S(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, eps=1e-3)), "N,3,8,8",
                     "float", "norm.batch_norm2d", {"eps": 1e-3}),
    "layer-norm": (lambda: S(nn.Linear(4, 4), nn.LayerNorm(4)), "N,T,4", "float",
                   "norm.layer_norm", {"dims": 1, "elementwise_affine": True}),
    "layer-norm-bare": (lambda: S(nn.Linear(4, 4), nn.LayerNorm(4, elementwise_affine=False)),
                        "N,T,4", "float", "norm.layer_norm", {"elementwise_affine": False}),
    "group-norm": (lambda: S(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4)), "N,3,8,8", "float",
                   "norm.group_norm", {"num_groups": 2}),
    "instance-norm2d": (lambda: S(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4)), "N,3,8,8",
                        "float", "norm.instance_norm2d", {"affine": False}),
    "instance-norm2d-affine": (lambda: S(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4, affine=True)),
                               "N,3,8,8", "float", "norm.instance_norm2d", {"affine": True}),
    "conv1d": (lambda: S(nn.Conv1d(3, 4, 3, padding=1)), "N,3,T", "float", "conv.conv1d",
               {"out_channels": 4, "kernel_size": 3, "padding": 1}),
    "conv2d": (lambda: S(nn.Conv2d(3, 4, (3, 5), stride=2, padding=1)), "N,3,8,8", "float",
               "conv.conv2d", {"kernel_size": [3, 5], "stride": 2, "padding": 1}),
    "conv-transpose2d": (lambda: S(nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1,
                                                      output_padding=1)), "N,3,8,8", "float",
                         "conv.conv_transpose2d", {"stride": 2, "output_padding": 1}),
    "max-pool1d": (lambda: S(nn.Conv1d(3, 4, 3), nn.MaxPool1d(2)), "N,3,10", "float",
                   "pool.max_pool1d", {"kernel_size": 2}),
    "max-pool2d": (lambda: S(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2, ceil_mode=True)), "N,3,9,9",
                   "float", "pool.max_pool2d", {"kernel_size": 2, "ceil_mode": True}),
    "avg-pool1d": (lambda: S(nn.Conv1d(3, 4, 3), nn.AvgPool1d(2)), "N,3,10", "float",
                   "pool.avg_pool1d", {"kernel_size": 2}),
    "avg-pool2d": (lambda: S(nn.Conv2d(3, 4, 3), nn.AvgPool2d(3, stride=1, padding=1)),
                   "N,3,8,8", "float", "pool.avg_pool2d", {"kernel_size": 3, "padding": 1}),
    "adaptive-avg-pool1d": (lambda: S(nn.Conv1d(3, 4, 3), nn.AdaptiveAvgPool1d(1)), "N,3,10",
                            "float", "pool.adaptive_avg_pool1d", {"output_size": 1}),
    "adaptive-avg-pool2d": (lambda: S(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d((1, 1))),
                            "N,3,8,8", "float", "pool.adaptive_avg_pool2d", {"output_size": 1}),
    "adaptive-max-pool2d": (lambda: S(nn.Conv2d(3, 4, 3), nn.AdaptiveMaxPool2d(2)), "N,3,8,8",
                            "float", "pool.adaptive_max_pool2d", {"output_size": 2}),
    "embedding": (lambda: S(nn.Embedding(10, 4, padding_idx=0)), "N,T", "long",
                  "linear.embedding", {"num_embeddings": 10, "embedding_dim": 4,
                                       "padding_idx": 0}),
}


def _node_of(result, type_id: str):
    found = [n for n in result.project.network("net").nodes if n.type == type_id]
    assert len(found) == 1, [n.type for n in result.project.network("net").nodes]
    return found[0]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", list(CASES))
def test_module_imports_as_its_node(case: str) -> None:
    factory, shape, dtype, type_id, params = CASES[case]
    r = import_model(factory, inputs=[shape], dtypes=[dtype])
    assert r.report.opaque == []
    assert r.report.max_difference <= 1e-5
    assert r.report.params_imported == r.report.params_original
    node = _node_of(r, type_id)
    assert {k: node.params.get(k) for k in params} == params


@pytest.mark.timeout(30)
@pytest.mark.parametrize("cls", [nn.ReLU6, nn.Mish, nn.Hardswish, nn.PReLU, nn.Softplus],
                         ids=lambda c: c.__name__)
def test_a_module_without_a_node_type_stays_opaque_and_says_so(cls: type[nn.Module]) -> None:
    r = import_model(lambda: S(nn.Linear(4, 4), cls()), inputs=["N,4"])
    assert [(q, why) for q, _, why in r.report.opaque] == [
        ("1", f"Layerloom has no node type for torch's {cls.__name__}")]
    assert r.report.max_difference <= 1e-5


@pytest.mark.timeout(30)
def test_an_unflatten_of_the_batch_dim_is_refused_naming_the_module() -> None:
    with pytest.raises(ImportFailure, match=r"'1' unflattens the batch dim.*unflatten a later dim"):
        import_model(lambda: S(nn.Linear(8, 6), nn.Unflatten(0, (1, -1))), inputs=["N,8"])
