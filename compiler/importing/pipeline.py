"""Import a PyTorch module as a project: load, trace, convert, assemble, build, copy weights,
verify. Nothing is called done before the generated module, with the imported weights, gives the
original's outputs on a random input within the tolerance."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from compiler.build import build
from compiler.codegen import generate
from compiler.imported_weights import save_weights, weights_path
from compiler.project import Project, save
from compiler.shapes import analyze

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
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass
class ImportResult:
    project: Project
    weights: dict[str, dict[str, torch.Tensor]]
    report: ImportReport

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write the project and, beside it, its weights (safetensors)."""
        p = Path(path)
        save(self.project, p)
        w = save_weights(weights_path(p), self.weights, {"source": self.report.source})
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


def default_inputs(model: nn.Module) -> list[tuple[list[int | str], str]]:
    """What the first layer implies: [N, C, 64, 64] for a Conv2d, [N, F] for a Linear ..."""
    tensors = [p for p in forward_params(model) if p.default is p.empty
               and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
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
            seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for dims, dtype in specs:
        shape = [d if isinstance(d, int) else sizes.get(d, 4) for d in dims]
        if dtype == "long":
            out.append(torch.randint(0, vocab, shape, generator=gen))
        else:
            out.append(torch.randn(shape, generator=gen))
    return out


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
        specs = [(parse_shape(s), kinds[min(i, len(kinds) - 1)]) for i, s in enumerate(inputs)]
    else:
        specs = default_inputs(model)
    vocab = _vocab(model)
    runs = [example(specs, SIZES[0], vocab, 1), example(specs, SIZES[1], vocab, 2)]
    recorded = _record(model, runs)
    names = [p.name for p in forward_params(model)][:len(specs)]
    conv = Converter(model, ctor, recorded, set(leaves))
    try:
        root = conv.scope(model, "", {}, [(n, {"shape": d, "dtype": k})
                                          for n, (d, k) in zip(names, specs, strict=True)])
        blocks = assign_blocks(root)
        project = build_project(root, name or type(model).__name__,
                                f"Imported from {label}.", blocks)
    except Unsupported as err:
        raise ImportFailure(f"cannot import {label}: {err}") from err
    report = ImportReport(label, tolerance=tolerance)
    weights = _verify(project, root, model, runs, report, tolerance)
    _describe(project, root, report)
    report.params_original = sum(p.numel() for p in model.parameters())
    report.seconds = time.perf_counter() - t0
    return ImportResult(project, weights, report)


def _verify(project: Project, root: Scope, model: nn.Module, runs: list[list[torch.Tensor]],
            report: ImportReport, tolerance: float) -> dict[str, dict[str, torch.Tensor]]:
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
    probe = example([(list(t.shape), _dtype(t)) for t in runs[0]], {}, _vocab(model), 3)
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
        report.warnings.append("parameter counts differ (a module used twice, or weights shared "
                               "across blocks, became separate copies)")
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
