"""Import a PyTorch module as a project: load, trace, convert, assemble, build, copy weights,
verify. Nothing is called done before the generated module, with the imported weights, gives the
original's outputs on a random input within the tolerance."""

from __future__ import annotations

import inspect
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Sequence

import torch
from torch import nn

from compiler.build import build
from compiler.codegen import generate
from compiler.project import Project, save
from compiler.project_weights import save_project_weights
from compiler.shapes import analyze
from nodes.helpers import Graph

from . import source as src
from .assemble import all_scopes, assign_blocks, build_project
from .convert import Converter
from .leaves import leaf_of
from .scopes import FNode, Scope, Unsupported
from .trace import forward_params
from .values import Recorded
from .verify import copy_weights, max_difference, scale

SIZES = ({"N": 2, "T": 5, "S": 6, "L": 10, "V": 7, "E": 12},
         {"N": 3, "T": 7, "S": 9, "L": 14, "V": 11, "E": 18})
TOLERANCE = 1e-4


class ImportFailure(Exception):
    """The module cannot be imported; the message says what stopped it and what to do."""


@dataclass
class ImportReport:
    source: str
    nodes: int = 0
    blocks: list[tuple[str, int, str]] = field(default_factory=list)  # name, uses, class
    opaque: list[tuple[str, str, str]] = field(default_factory=list)  # qualname, ref, reason
    params_original: int = 0
    params_imported: int = 0
    max_difference: float = float("nan")
    tolerance: float = TOLERANCE
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    #: (qualname, why fx stopped) of each forward converted through the torch.export fallback
    exported: list[tuple[str, str]] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"Imported {self.source}: {self.nodes} nodes, {len(self.blocks)} block(s), "
                 f"{len(self.opaque)} opaque node(s); parameters {self.params_imported:,} "
                 f"(original {self.params_original:,}); max |difference| of the outputs "
                 f"{self.max_difference:.3g} (tolerance {self.tolerance:.3g}); "
                 f"{self.seconds:.2f} s"]
        for name, uses, cls in self.blocks:
            lines.append(f"  block {name} (from {cls}), used {uses}×")
        for qual, ref, reason in self.opaque:
            lines.append(f"  opaque {qual}: imports {ref} ({reason})")
        for qual, why in self.exported:
            at = re.search(r" at (.+?:\d+): (`.*`)\.", why)
            stop = f"at {at[1]}: {at[2]}" if at else why[:200]
            lines.append(f"  traced with the torch.export fallback: {qual} (fx stopped {stop})")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass
class ImportResult:
    project: Project
    weights: dict[str, dict[str, torch.Tensor]]
    report: ImportReport

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write the project and, beside it, its weights folder (``<project>.weights/``, one
        safetensors per network); returns both paths."""
        p = Path(path)
        save(self.project, p)
        w = save_project_weights(p, self.weights, {"source": self.report.source})
        return p, w


def parse_shape(text: str) -> list[int | str]:
    """``N,3,224,224`` -> ["N", 3, 224, 224]."""
    dims: list[int | str] = []
    for part in text.replace("x", ",").split(",") if "," in text else text.split():
        part = part.strip()
        if not part:
            continue
        if part.isdigit():
            dims.append(int(part))
        elif part.isidentifier() and len(part) <= 8:
            dims.append(part)
        else:
            raise ImportFailure(f"input shape '{text}': '{part}' is not a size or a symbol "
                                "(write e.g. N,3,224,224)")
    if not dims:
        raise ImportFailure(f"input shape '{text}' is empty")
    return dims


GRAPH_FIELDS = ("edge_index", "batch", "num_graphs")


def graph_class(model: nn.Module, param: inspect.Parameter) -> type | None:
    """The class of a forward argument that is a batch of graphs (a NamedTuple with Layerloom's
    ``Graph`` fields, as an exported ``model.py`` takes), or None for a tensor argument."""
    ann = param.annotation
    if isinstance(ann, str):
        ann = getattr(type(model).forward, "__globals__", {}).get(ann.rpartition(".")[2])
    if isinstance(ann, type) and tuple(getattr(ann, "_fields", ()))[:3] == GRAPH_FIELDS:
        return ann
    if param.name == "graph" and ann is inspect.Parameter.empty:
        return Graph
    return None


def default_inputs(model: nn.Module) -> list[tuple[list[int | str], str]]:
    """What the first layer implies: [N, C, 64, 64] for a Conv2d, [N, F] for a Linear ...;
    node features [V, F] (F: the first Linear's inputs) and the structure for a graph model."""
    tensors = [p for p in forward_params(model) if p.default is p.empty
               and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    graphs = [p for p in tensors if graph_class(model, p) is not None]
    if len(graphs) == 1 and len(tensors) == 2:
        first = next((m for m in model.modules() if isinstance(m, nn.Linear)), None)
        if first is None:
            raise ImportFailure(f"cannot tell the node features {type(model).__name__} takes; "
                                "give --input V,F --input graph")
        return [([], "graph") if p in graphs else (["V", first.in_features], "float")
                for p in tensors]
    if len(tensors) != 1:
        raise ImportFailure(f"{type(model).__name__}.forward takes {len(tensors)} inputs; give "
                            "each one's shape with --input (e.g. --input N,3,224,224)")
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return [(["N", m.in_channels, 64, 64], "float")]
        if isinstance(m, nn.Conv1d):
            return [(["N", m.in_channels, 64], "float")]
        if isinstance(m, nn.Linear):
            return [(["N", m.in_features], "float")]
        if isinstance(m, nn.Embedding):
            return [(["N", "T"], "long")]
        if isinstance(m, (nn.LSTM, nn.GRU, nn.RNN)):
            return [(["N", "T", m.input_size], "float")]
    raise ImportFailure(f"cannot tell what {type(model).__name__} takes; give --input SHAPE")


def _vocab(model: nn.Module) -> int:
    sizes = [m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding)]
    return max(2, min(sizes)) if sizes else 10


def example(specs: Sequence[tuple[list[int | str], str]], sizes: dict[str, int], vocab: int,
            seed: int, graph_cls: type = Graph) -> list[Any]:
    """Random inputs of ``specs``' shapes; a graph: ``sizes['E']`` random edges between
    ``sizes['V']`` nodes, split in order into ``sizes['N']`` graphs."""
    gen = torch.Generator().manual_seed(seed)
    out: list[Any] = []
    for dims, dtype in specs:
        shape = [d if isinstance(d, int) else sizes.get(d, 4) for d in dims]
        if dtype == "graph":
            v, graphs = sizes.get("V", 7), sizes.get("N", 2)
            edges = torch.randint(0, v, (2, sizes.get("E", 12)), generator=gen)
            out.append(graph_cls(edges, torch.arange(v) * graphs // v, graphs))
        elif dtype == "long":
            out.append(torch.randint(0, vocab, shape, generator=gen))
        else:
            out.append(torch.randn(shape, generator=gen))
    return out


def _input_nodes(names: Sequence[str], specs: Sequence[tuple[list[int | str], str]]
                 ) -> list[tuple[str, dict[str, Any]]]:
    """(name, params) of the root's input per forward argument; with a graph, the node features
    and the structure are the two ports of one Graph Input node."""
    if len(names) != len(specs):
        raise ImportFailure(f"{len(specs)} input shape(s) given for a forward of {len(names)} "
                            "argument(s)")
    graphs = [i for i, (_, k) in enumerate(specs) if k == "graph"]
    if not graphs:
        return [(n, {"shape": d, "dtype": k}) for n, (d, k) in zip(names, specs, strict=True)]
    features = [i for i, (d, k) in enumerate(specs) if k == "float" and len(d) == 2]
    if len(graphs) != 1 or len(features) != 1 or len(specs) != 2 \
            or not isinstance(specs[features[0]][0][1], int):
        raise ImportFailure("a graph model is imported with two inputs: node features V,F and "
                            "the graph (--input V,F --input graph)")
    f = specs[features[0]][0][1]
    return [(n, {"kind": "graph", "features": f} if k == "graph" else
             {"kind": "graph_features", "features": f})
            for n, (_, k) in zip(names, specs, strict=True)]


def _record(model: nn.Module, runs: list[list[torch.Tensor]]) -> Recorded:
    calls: dict[int, list[tuple[list[Any], Any]]] = {}

    def hook(mod: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        ins = [(tuple(a.shape), _dtype(a)) for a in args if isinstance(a, torch.Tensor)]
        out = (tuple(output.shape), _dtype(output)) if isinstance(output, torch.Tensor) else None
        calls.setdefault(id(mod), []).append((ins, out))

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in model.modules()]
    try:
        with torch.no_grad():
            for inputs in runs:
                model(*inputs)
    except Exception as err:
        raise ImportFailure(f"running {type(model).__name__} on the example input failed: "
                            f"{type(err).__name__}: {err}; check --input") from err
    finally:
        for h in handles:
            h.remove()
    return Recorded(calls, SIZES)


def _dtype(t: torch.Tensor) -> str:
    if t.dtype == torch.bool:
        return "bool"
    return "float" if t.is_floating_point() else "long"


def import_model(source: str | nn.Module | Callable[[], nn.Module],
                 inputs: Sequence[str] | None = None, dtypes: Sequence[str] = (),
                 leaves: Sequence[str] = (),
                 tolerance: float = TOLERANCE, name: str | None = None) -> ImportResult:
    """Import ``source``: a reference (loading it runs the user's code), a class or factory (its
    constructor arguments are recorded, so opaque nodes can rebuild submodules), or an instance."""
    t0 = time.perf_counter()
    label = source if isinstance(source, str) else getattr(source, "__name__",
                                                           type(source).__name__)
    try:
        if isinstance(source, str):
            model, ctor = src.instantiate(src.load_object(source), source)
        elif isinstance(source, nn.Module):
            model, ctor = source, {}
        else:  # a class or factory: built here, so constructor arguments are seen
            model, ctor = src.instantiate(source, label)
    except src.SourceError as err:
        raise ImportFailure(str(err)) from err
    model.eval()
    if inputs:
        kinds = list(dtypes) or ["float"]
        specs = [([], "graph") if s.strip().lower() == "graph" else
                 (parse_shape(s), kinds[min(i, len(kinds) - 1)]) for i, s in enumerate(inputs)]
    else:
        specs = default_inputs(model)
    params = forward_params(model)[:len(specs)]
    graph_cls = next((c for c in (graph_class(model, p) for p in params) if c), Graph)
    root_inputs = _input_nodes([p.name for p in params], specs)
    vocab = _vocab(model)
    runs = [example(specs, SIZES[0], vocab, 1, graph_cls),
            example(specs, SIZES[1], vocab, 2, graph_cls)]
    recorded = _record(model, runs)
    conv = Converter(model, ctor, recorded, set(leaves), example=runs[0])
    try:
        root = conv.scope(model, "", {}, root_inputs)
        blocks = assign_blocks(root)
        project = build_project(root, name or type(model).__name__,
                                f"Imported from {label}.", blocks)
    except Unsupported as err:
        raise ImportFailure(f"cannot import {label}: {err}") from err
    report = ImportReport(label, tolerance=tolerance, exported=list(conv.exported))
    weights = _verify(project, root, model, runs, report, tolerance, set(recorded.calls))
    _describe(project, root, report)
    report.params_original = sum(p.numel() for p in model.parameters())
    report.seconds = time.perf_counter() - t0
    return ImportResult(project, weights, report)


def _verify(project: Project, root: Scope, model: nn.Module, runs: list[list[torch.Tensor]],
            report: ImportReport, tolerance: float, ran: Collection[int] = ()
            ) -> dict[str, dict[str, torch.Tensor]]:
    """Build, copy the weights, compare the outputs; ``ran``: ids of the modules the example
    runs called (to name the others where the parameter counts differ)."""
    analysis = analyze(project)
    if analysis.errors:
        first = analysis.errors[0]
        raise ImportFailure(f"the imported graph does not check: {first}; this is a Layerloom "
                            "bug, please report it with the module")
    source = generate(analysis)
    from compiler.usercode import code_sources

    built = build(source, trust=code_sources(project))  # the import already ran this code
    gen = built.instantiate("net")
    gen.eval()
    try:
        classes = set(source.network_classes.values()) | set(source.block_classes.values())
        skip = {nn.Sequential, nn.ModuleList, nn.ModuleDict} | {
            v for k, v in vars(built.module).items() if k in classes and isinstance(v, type)}
        copy_weights(root, gen, built.module.__file__, source.node_lines, runs[0], skip)
    except Unsupported as err:
        raise ImportFailure(str(err)) from err
    fresh = iter(example([(list(t.shape), _dtype(t)) for t in runs[0]
                          if isinstance(t, torch.Tensor)], {}, _vocab(model), 3))
    probe = [next(fresh) if isinstance(t, torch.Tensor) else t  # a graph: the same structure
             for t in runs[0]]
    with torch.no_grad():
        want, got = model(*probe), gen(*probe)
    diff = max_difference(want, got)
    report.max_difference = diff
    report.params_imported = sum(p.numel() for p in gen.parameters())
    limit = tolerance * max(1.0, scale(want))
    if not diff <= limit:
        raise ImportFailure(f"the imported model's outputs differ from the original's by up to "
                            f"{diff:.3g} (tolerance {limit:.3g}); refusing the import. Mark the "
                            "modules that differ as leaves (--leaf CLASS) to keep them as your "
                            "code")
    if report.params_imported != sum(p.numel() for p in model.parameters()):
        idle = [name for name, m in model.named_modules() if name and id(m) not in ran
                and any(True for _ in m.parameters(recurse=False))]
        report.warnings.append(
            f"parameter counts differ: {', '.join(idle[:5])} never ran on the example input "
            "(a branch not taken), so not in the graph" if idle else
            "parameter counts differ (a module used twice, or weights shared across blocks, "
            "became separate copies)")
    return {"net": {k: v.detach().clone() for k, v in gen.state_dict().items()}}


def _describe(project: Project, root: Scope, report: ImportReport) -> None:
    report.nodes = sum(len(n.nodes) for n in [*project.networks, *project.blocks])
    uses: dict[str, int] = {}
    classes: dict[str, str] = {}
    for sc in all_scopes(root):
        if sc.block:
            uses[sc.block] = uses.get(sc.block, 0) + 1
            classes[sc.block] = type(sc.module).__qualname__
    report.blocks = [(b.name, uses.get(b.name, 0), classes.get(b.name, "")) for b in
                     project.blocks]
    seen: set[str] = set()
    for node in _opaque_nodes(root):
        key = node.qualname
        if key not in seen:
            seen.add(key)
            report.opaque.append((node.qualname, node.params["module"], node.reason))


def _opaque_nodes(root: Scope) -> list[FNode]:
    out = [n for n in root.nodes if n.type == "opaque.module"]
    for sc in all_scopes(root):
        out += [n for n in sc.nodes if n.type == "opaque.module"]
    return out


__all__ = ["ImportFailure", "ImportReport", "ImportResult", "import_model", "parse_shape",
           "leaf_of"]
