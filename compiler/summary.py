"""Per-node and total figures: output shapes, parameter counts and FLOPs.

The model is built from the generated source on torch's meta device (no memory, no compute), and
run once under FlopCounterMode with symbolic dims set to SUMMARY_SIZES (batch 1), so a 138M-param
VGG is summarised in milliseconds. FLOPs count multiply-adds as 2, as FlopCounterMode does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from nodes.base import GraphSpec, TensorSpec

from .build import BuiltModule, build
from .codegen import PythonSource, generate
from .project import Project
from .shapes import MAX_FLOP_INSTANCES, Analysis, NetworkResult, analyze

SUMMARY_SIZES = {"N": 1, "T": 32, "S": 32, "V": 34, "E": 156, "B": 1}


@dataclass
class NodeFigures:
    node_id: str
    name: str
    type: str
    out_shapes: dict[str, str]
    params: int = 0
    flops: int | None = None


@dataclass
class NetworkSummary:
    name: str
    nodes: list[NodeFigures] = field(default_factory=list)
    params: int = 0
    trainable: int = 0
    flops: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params, "trainable": self.trainable,
                "flops": self.flops, "error": self.error,
                "nodes": [vars(n) for n in self.nodes]}


def example_inputs(res: NetworkResult, device: str | torch.device = "meta",
                   sizes: dict[str, int] = SUMMARY_SIZES) -> list[Any]:
    """One input per forward argument, in order, shaped from the Input nodes' specs."""
    args: list[Any] = []
    for inp in res.inputs():
        for spec in inp.outs.values():
            if isinstance(spec, GraphSpec):
                args.append(_example_graph(device, sizes))
            elif isinstance(spec, TensorSpec):
                shape = spec.concrete(sizes)
                if spec.dtype == "long":
                    args.append(torch.zeros(shape, dtype=torch.long, device=device))
                else:
                    args.append(torch.zeros(shape, device=device))
    return args


def _example_graph(device: Any, sizes: dict[str, int]) -> Any:
    from nodes.base import HELPERS

    ns: dict[str, Any] = {"torch": torch, "Tensor": torch.Tensor}
    exec("from __future__ import annotations\nfrom typing import NamedTuple\n"  # noqa: S102
         + HELPERS["Graph"], ns)
    v, e = sizes["V"], sizes["E"]
    edge_index = torch.zeros((2, e), dtype=torch.long, device=device)
    batch = torch.zeros((v,), dtype=torch.long, device=device)
    return ns["Graph"](edge_index=edge_index, batch=batch, num_graphs=1)


def summarize(project: Project, built: BuiltModule | None = None,
              analysis: Analysis | None = None) -> dict[str, NetworkSummary]:
    analysis = analysis or analyze(project)
    source: PythonSource = built.source if built else generate(analysis)
    built = built or build(source)
    out: dict[str, NetworkSummary] = {}
    for name, res in analysis.networks.items():
        out[name] = _summarize_network(name, res, built, source)
    return out


def _summarize_network(name: str, res: NetworkResult, built: BuiltModule,
                       source: PythonSource) -> NetworkSummary:
    summary = NetworkSummary(name)
    with torch.device("meta"):
        model = built.instantiate(name)
    model.eval()  # BatchNorm refuses a batch of 1 in training mode; FLOPs are the same
    summary.params = sum(p.numel() for p in model.parameters())
    summary.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    per_module: dict[str, int] = {}
    if res.instance_count > MAX_FLOP_INSTANCES:
        summary.error = (f"FLOPs not counted: {res.instance_count:,} node instances, over the "
                         f"limit of {MAX_FLOP_INSTANCES:,} for counting")
        return _per_node(summary, name, res, model, source, per_module)
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(*example_inputs(res))
        summary.flops = counter.get_total_flops()
        for fqn, ops in counter.get_flop_counts().items():
            per_module[fqn] = sum(ops.values())
    except Exception as err:  # an op without a meta kernel: figures stay partial, not fatal
        summary.error = f"FLOPs unavailable: {type(err).__name__}: {err}"
    return _per_node(summary, name, res, model, source, per_module)


def _per_node(summary: NetworkSummary, name: str, res: NetworkResult, model: Any,
              source: PythonSource, per_module: dict[str, int]) -> NetworkSummary:
    cls_name = type(model).__name__
    for node_id in res.order:
        nr = res.nodes[node_id]
        attr = source.attrs.get((name, node_id))
        params = 0
        flops = None
        if attr is not None:
            sub = getattr(model, attr)
            params = sum(p.numel() for p in sub.parameters())
            flops = per_module.get(f"{cls_name}.{attr}", 0 if summary.flops is not None else None)
        summary.nodes.append(NodeFigures(
            node_id, nr.node.name, nr.node.type,
            {port: spec.label() for port, spec in nr.outs.items()}, params, flops))
    return summary


def human(n: int | None) -> str:
    if n is None:
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)
