"""ONNX out: each network of a project as ``model.onnx``, checked in onnxruntime before it is done.

The module exported is the one :func:`compiler.build.build` makes from the generated source (the
one path: no second model is written for ONNX). ``torch.export`` traces it with the batch and
sequence dims dynamic, as the graph's Input nodes declare them (``N``, ``T``, ``S``, ``V``,
``E``), ``torch.onnx`` (the dynamo exporter, opset >= 18) turns the program into ONNX, the file is
checked with ``onnx.checker`` and run in onnxruntime on inputs of *other* sizes than the trace's,
so a dim that was silently baked in shows up as a failure, not as a surprise in deployment.

onnx, onnxscript and onnxruntime are an optional extra (``pip install 'layerloom[onnx]'``):
:func:`missing_packages` says which are absent, and :func:`export_onnx` refuses with that hint.
When a network cannot be exported, :class:`OnnxExportError` names the node whose code stopped
the exporter (read from the traced program's stack traces and module paths) and why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import re
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from nodes.base import SYMBOL_SIZES, GraphSpec, TensorSpec

from .build import BuiltModule, build
from .codegen import PythonSource, generate
from .project import Project
from .shapes import Analysis, NetworkResult, analyze

#: The lowest opset the dynamo exporter writes well (and the one we test).
OPSET = 18
PACKAGES = ("onnx", "onnxscript", "onnxruntime")
INSTALL_HINT = ("install the ONNX extra: pip install 'layerloom[onnx]' "
                "(onnx, onnxscript, onnxruntime)")
#: Sizes of the symbolic dims in the onnxruntime check: all differ from the trace's
#: (SYMBOL_SIZES), so a dim the trace baked in makes the check fail.
CHECK_SIZES: dict[str, int] = {"N": 3, "T": 7, "S": 4, "V": 9, "E": 15, "B": 1}
#: |onnxruntime - torch| allowed, relative to the largest |torch| output (at least 1): float32
#: kernels differ in summation order, never by more than this on our networks.
RTOL = 1e-4
#: Weights above this many bytes go to a ``.onnx.data`` file beside the model (protobuf's 2 GiB).
EXTERNAL_DATA_BYTES = 1_500_000_000
_SYMBOL = re.compile(r"^[A-Za-z_]\w*$")


class OnnxUnavailable(RuntimeError):
    """onnx, onnxscript or onnxruntime is not installed."""


class OnnxExportError(RuntimeError):
    """A network that did not export, naming the node that stopped it (when known) and why."""

    def __init__(self, network: str, reason: str, hint: str, node: str | None = None,
                 node_type: str | None = None) -> None:
        self.network, self.reason, self.hint = network, reason, hint
        self.node, self.node_type = node, node_type
        where = f"network '{network}'"
        if node:
            where += f", node '{node}'" + (f" ({node_type})" if node_type else "")
        super().__init__(f"{where}: {reason}" + (f"; {hint}" if hint else ""))


@dataclass
class OnnxResult:
    """One written and checked ``.onnx`` file."""

    network: str
    path: Path
    opset: int
    inputs: list[tuple[str, list[int | str]]]
    outputs: list[tuple[str, list[int | str]]]
    max_abs_diff: float
    tolerance: float
    check_sizes: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def line(self) -> str:
        """One line for the CLI and the app: where, which dims are dynamic, how close."""
        ins = ", ".join(f"{n}[{', '.join(map(str, d))}]" for n, d in self.inputs)
        sizes = ", ".join(f"{k}={v}" for k, v in self.check_sizes.items())
        return (f"{self.path}: network '{self.network}', opset {self.opset}, inputs {ins}; "
                f"onnxruntime vs torch at {sizes or 'the fixed sizes'}: max |diff| "
                f"{self.max_abs_diff:.2e} (tolerance {self.tolerance:.1e})")


def missing_packages() -> list[str]:
    """The packages of the ONNX extra that cannot be imported here (found without importing)."""
    return [name for name in PACKAGES if importlib.util.find_spec(name) is None]


def export_onnx(project: Project | Analysis, out_dir: str | Path,
                networks: Sequence[str] | None = None, *, opset: int = OPSET,
                weights: Mapping[str, Mapping[str, Tensor]] | None = None,
                seed: int = 0) -> list[OnnxResult]:
    """Export each network (all by default) to ``out_dir`` and check it; the written files.

    One network is written as ``model.onnx``, several as ``<network>.onnx``. ``weights`` maps a
    network name to a state_dict loaded before export (``compiler.weights.load_into``: a partial
    load is refused); otherwise the weights are the initial ones drawn with ``seed``. Raises
    :class:`OnnxUnavailable` without the extra, :class:`OnnxExportError` for a network that
    cannot be exported or whose onnxruntime output differs from torch's beyond the tolerance
    (nothing is left behind for that network).
    """
    missing = missing_packages()
    if missing:
        raise OnnxUnavailable(f"ONNX export needs {', '.join(missing)}: {INSTALL_HINT}")
    if opset < OPSET:
        raise ValueError(f"opset {opset} is below {OPSET}, the lowest the exporter supports")
    analysis = project if isinstance(project, Analysis) else analyze(project)
    if analysis.errors:
        first = analysis.errors[0]
        raise OnnxExportError(first.network or "?", f"the project has errors: {first.message}",
                              "fix the problems listed in the Problems panel first",
                              first.node_name or None)
    source = generate(analysis)
    built = build(source)
    names = list(networks) if networks is not None else list(analysis.networks)
    unknown = [n for n in names if n not in analysis.networks]
    if unknown:
        raise KeyError(f"no network named {unknown[0]!r}; the project has "
                       f"{', '.join(analysis.networks)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        stem = "model" if len(analysis.networks) == 1 else _file_stem(name)
        state = weights.get(name) if weights else None
        results.append(_export_network(built, source, analysis.networks[name], name,
                                       out / f"{stem}.onnx", opset, state, seed))
    return results


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "network"


# -- one network ------------------------------------------------------------------------------


class _Wrapped(nn.Module):
    """Holds a network whose layer name is also an attribute of ``torch.fx.GraphModule`` (a layer
    called ``code`` or ``graph``): the exporter rebuilds the program as a GraphModule, where such a
    name would resolve to the GraphModule's own attribute. One level down the names are free."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, *args: Any) -> Any:
        return self.net(*args)


def _export_network(built: BuiltModule, source: PythonSource, res: NetworkResult, name: str,
                    path: Path, opset: int, state: Mapping[str, Tensor] | None,
                    seed: int) -> OnnxResult:
    import onnx

    torch.manual_seed(seed)
    model = built.instantiate(name)
    if state is not None:  # matched by name, then order and shape; refused unless complete
        from .weights import load_into

        load_into(model, name, state)
    model.eval()  # dropout off, batch norm on its running statistics: what deployment runs
    notes: list[str] = []
    clashes = sorted(n for n, _ in model.named_children() if hasattr(torch.fx.GraphModule, n))
    target: nn.Module = model
    if clashes:
        target = _Wrapped(model).eval()
        notes.append(f"layer name(s) {', '.join(clashes)} clash with torch.fx; weights are "
                     "named 'net.<layer>' in the ONNX file")
    specs = _input_specs(res)
    symbols = _symbols(specs)
    args = _make_inputs(built, specs, SYMBOL_SIZES, seed)
    graph_cls = getattr(built.module, "Graph", None)

    def make_dynamic(dims: dict[str, Any]) -> Any:
        dynamic = tuple(_dynamic(spec, dims, graph_cls) for _, spec in specs)
        return (dynamic,) if clashes else dynamic  # the wrapper takes them as one *args tuple

    if any(isinstance(spec, GraphSpec) for _, spec in specs):
        notes.append("the graph input's num_graphs is a Python int: the ONNX model is fixed at "
                     "one graph per call")
    try:
        program = _trace(target, args, make_dynamic, symbols, notes)
    except OnnxExportError as err:
        found = _node_of_type(res, UNROLLED) if "cannot stay dynamic" in err.reason else None
        if found is None:
            raise OnnxExportError(name, err.reason, err.hint) from None
        raise OnnxExportError(name, f"{err.reason}: {UNROLLED[found.node.type]}", err.hint,
                              found.node.name, found.node.type) from None
    except Exception as err:  # noqa: BLE001 - every failure is explained, naming the node
        raise _explain(err, source, res, name, _static_program(target, args)) from err
    try:
        # the converter runs the program's decompositions again, and torch's own LSTM/GRU
        # kernel there steps through the sequence in Python, fixing T to the trace's size (a
        # time-major input was then written with T = 5); the loop form keeps T a symbol
        with warnings.catch_warnings(), _rnn_loops():
            warnings.simplefilter("ignore")
            onnx_program = torch.onnx.export(program, tuple(args), dynamo=True,
                                             opset_version=opset, verbose=False)
    except Exception as err:  # noqa: BLE001
        raise _explain(err, source, res, name, program) from err
    proto = onnx_program.model_proto
    _name_dims(proto, specs, symbols, res)
    _name_values(proto, _flat_input_names(specs), [o.node.name for o in res.outputs()])
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > EXTERNAL_DATA_BYTES
    tmp = path.with_name(path.name + ".partial")
    onnx.save_model(proto, str(tmp), save_as_external_data=big,
                    location=path.name + ".data" if big else None)
    try:
        onnx.checker.check_model(str(tmp), full_check=True)
        diff, tol, checked = _compare(target, built, specs, str(tmp), seed + 1)
    except OnnxExportError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as err:  # noqa: BLE001 - a checker or runtime refusal, said plainly
        tmp.unlink(missing_ok=True)
        raise OnnxExportError(name, f"the exported file does not check: {type(err).__name__}: "
                              f"{_first_line(err)}", "this is an exporter bug; export to "
                              "PyTorch code instead") from err
    if diff > tol:
        tmp.unlink(missing_ok=True)
        raise _mismatch(source, res, name, _static_program(target, args), diff, tol)
    tmp.replace(path)
    return OnnxResult(name, path, opset, _value_dims(proto.graph.input),
                      _value_dims(proto.graph.output), diff, tol, checked, notes)


@contextlib.contextmanager
def _rnn_loops() -> Iterator[None]:
    """LSTM and GRU as while loops over the sequence (torch's own patch, the one torch.onnx
    applies), so their sequence length stays dynamic; a no-op on a torch without it."""
    try:
        from torch.export._patches import (
            register_gru_while_loop_decomposition,
            register_lstm_while_loop_decomposition,
        )
    except ImportError:
        yield
        return
    ops = (torch.ops.aten.lstm.input, torch.ops.aten.gru.input)

    def forget() -> None:  # the patch swaps py_kernels but leaves the op's dispatch cache, so
        for op in ops:     # a second export in one process would take the cached kernel
            cache = getattr(op, "_dispatch_cache", None)
            if isinstance(cache, dict):
                cache.clear()

    forget()
    torch._dynamo.reset()  # the loop bodies are compiled and cached: a trace must not reuse
    try:                   # another network's (its sizes would come along as guards)
        with register_lstm_while_loop_decomposition(), register_gru_while_loop_decomposition():
            yield
    finally:
        forget()


def _trace(model: nn.Module, args: Sequence[Any], make_dynamic: Callable[[dict], Any],
           symbols: Sequence[str], notes: list[str]) -> Any:
    """torch.export with the graph's dims dynamic. Where the code needs a dim of at least 2 (an
    RNN squeezes a size-1 axis) or at most some size (a table of positions), the dim gets that
    bound, said in ``notes``; where it would fix a dim to one size, the export is refused,
    naming the dim and the code's condition."""
    bounds: dict[str, dict[str, int]] = {s: {} for s in symbols}
    for _ in range(4):
        dims = {s: torch.export.Dim(s, **bounds[s]) for s in symbols}
        try:
            with _rnn_loops(), torch.fx.experimental._config.patch(backed_size_oblivious=True):
                return torch.export.export(model, tuple(args), dynamic_shapes=make_dynamic(dims),
                                           strict=False)
        except torch._dynamo.exc.UserError as exc:
            special = _SPECIALIZED.search(str(exc))
            if special is not None:
                sym, size = special.groups()
                raise OnnxExportError("?", f"the {sym} dim cannot stay dynamic: the code fixes "
                                      f"it to {size}", "give the Input node a fixed size there, "
                                      "or export PyTorch code instead") from None
            found = _GUARD.findall(str(exc))
            if "Constraints violated" not in str(exc) or not found:
                raise
            changed = False
            for sym, guard in found:
                if sym not in bounds:
                    raise
                op, value = _guard_bound(guard)
                if op == "!=" and bounds[sym].get("min", 0) < 2:
                    bounds[sym]["min"] = 2
                    notes.append(f"{sym} >= 2 in the ONNX file (the traced code treats a size "
                                 "of 1 apart)")
                elif op == "<=" and "max" not in bounds[sym]:
                    bounds[sym]["max"] = value
                    notes.append(f"{sym} <= {value} in the ONNX file (the code needs at most "
                                 "that many, e.g. a table of positions)")
                else:
                    raise OnnxExportError("?", f"the {sym} dim cannot stay dynamic: the code "
                                          f"needs {guard.strip()}", "give the Input node a fixed "
                                          "size there, or export PyTorch code instead") from None
                changed = True
            if not changed:
                raise
    raise RuntimeError("torch.export kept refusing the dynamic dims")


_SPECIALIZED = re.compile(r"You marked (\w+) as dynamic but your code specialized it to be a "
                          r"constant \((\d+)\)")
#: Node types whose torch code torch.export unrolls over the sequence, fixing T (torch 2.13: the
#: plain RNN; LSTM and GRU have a loop form that keeps it dynamic): said when T cannot stay so.
UNROLLED = {"recurrent.rnn": "torch.export unrolls nn.RNN over the sequence, one step per "
                             "position (LSTM and GRU keep a loop)"}
_GUARD = re.compile(r"Not all values of (\w+) = .*? satisfy the generated guard (.+?)\.?$", re.M)


def _guard_bound(guard: str) -> tuple[str, int]:
    """("!=", c) for ``expr != c``, ("<=", c) for ``expr <= c``; ("?", 0) for anything else."""
    m = re.search(r"(!=|<=|<)\s*(\d+)\s*$", guard.strip().rstrip(")"))
    if m is None or not re.fullmatch(r"\(?(\d+\*)?L\[.+?\]\.size\(\)\[\d+\]\)?",
                                     guard.strip()[:m.start()].strip()):
        return "?", 0
    coeff = re.match(r"\(?(\d+)\*", guard.strip())
    value = int(m.group(2)) // (int(coeff.group(1)) if coeff else 1)
    return ("<=", value - 1) if m.group(1) == "<" else (m.group(1), value)


def _node_of_type(res: NetworkResult, types: Mapping[str, str]) -> Any:
    """The first node (in a block instance too) whose type is one of ``types``."""
    for nr in res.nodes.values():
        if nr.node.type in types:
            return nr
        for inst in nr.instances:
            found = _node_of_type(inst, types)
            if found is not None:
                return found
    return None


def _static_program(model: nn.Module, args: Sequence[Any]) -> Any:
    """The model traced with every size fixed, only to find the node a failure came from (its
    FX nodes carry the generated lines); None when even that does not trace."""
    try:
        return torch.export.export(model, tuple(args), strict=False)
    except Exception:  # noqa: BLE001 - the trace failure is reported from its own traceback
        return None


def _input_specs(res: NetworkResult) -> list[tuple[str, TensorSpec | GraphSpec]]:
    """(forward argument, spec) per input, in the order of the generated ``forward``."""
    out = []
    for inp in res.inputs():
        several = len(inp.outs) > 1  # a Graph Input: its features and its graph, by port
        for port, spec in inp.outs.items():
            out.append((port if several else inp.node.name, spec))
    return out


def _symbols(specs: Sequence[tuple[str, Any]]) -> list[str]:
    found: list[str] = []
    for _, spec in specs:
        dims = ((spec.nodes, spec.edges) if isinstance(spec, GraphSpec)
                else tuple(d for d in spec.dims if isinstance(d, str)))
        for d in dims:
            if isinstance(d, str) and _SYMBOL.match(d) and d in SYMBOL_SIZES and d not in found:
                found.append(d)
    return found


def _dynamic(spec: TensorSpec | GraphSpec, dims: dict[str, Any], graph_cls: Any) -> Any:
    """torch.export's dynamic_shapes entry for one argument: {axis: Dim} per symbolic axis (a
    graph: the same NamedTuple, with the edge and node dims of its index tensors)."""
    if isinstance(spec, GraphSpec):
        return graph_cls(edge_index={1: dims[spec.edges]} if spec.edges in dims else None,
                         batch={0: dims[spec.nodes]} if spec.nodes in dims else None,
                         num_graphs=None)
    return {i: dims[d] for i, d in enumerate(spec.dims) if isinstance(d, str) and d in dims} or None


def _make_inputs(built: BuiltModule, specs: Sequence[tuple[str, Any]], sizes: Mapping[str, int],
                 seed: int) -> list[Any]:
    """Random inputs at ``sizes``: floats from N(0, 1), ids and masks in {0, 1} (every vocabulary
    has them), graphs with random edges among their nodes."""
    gen = torch.Generator().manual_seed(seed)
    args: list[Any] = []
    for _, spec in specs:
        if isinstance(spec, GraphSpec):
            v, e = _size(spec.nodes, sizes), _size(spec.edges, sizes)
            graph_cls = built.module.Graph
            args.append(graph_cls(edge_index=torch.randint(0, v, (2, e), generator=gen),
                                  batch=torch.zeros(v, dtype=torch.long), num_graphs=1))
            continue
        shape = spec.concrete({**SYMBOL_SIZES, **sizes})
        if spec.dtype == "long":
            args.append(torch.randint(0, 2, shape, generator=gen))
        elif spec.dtype == "bool":
            args.append(torch.randint(0, 2, shape, generator=gen).bool())
        else:
            args.append(torch.randn(shape, generator=gen))
    return args


def _size(dim: int | str, sizes: Mapping[str, int]) -> int:
    return dim if isinstance(dim, int) else {**SYMBOL_SIZES, **sizes}[dim]


def _tensors(value: Any) -> list[Tensor]:
    from torch.utils import _pytree

    return [v for v in _pytree.tree_leaves(value) if isinstance(v, Tensor)]


def _compare(model: nn.Module, built: BuiltModule, specs: Sequence[tuple[str, Any]], path: str,
             seed: int) -> tuple[float, float, dict[str, int]]:
    """Max |onnxruntime - torch| over every output at CHECK_SIZES, and the tolerance."""
    import onnxruntime as ort

    used = {s: CHECK_SIZES[s] for s in _symbols(specs)}
    args = _make_inputs(built, specs, CHECK_SIZES, seed)
    with torch.no_grad():
        expected = _tensors(model(*args))
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, min(4, torch.get_num_threads()))
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = _tensors(args)
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(feeds):
        raise RuntimeError(f"the ONNX model takes {len(names)} inputs, torch {len(feeds)}")
    got = session.run(None, {n: t.numpy() for n, t in zip(names, feeds, strict=True)})
    if len(got) != len(expected):
        raise RuntimeError(f"the ONNX model gives {len(got)} outputs, torch {len(expected)}")
    diff, scale = 0.0, 1.0
    for want, have in zip(expected, got, strict=True):
        have_t = torch.from_numpy(have)
        if tuple(have_t.shape) != tuple(want.shape):
            raise RuntimeError(f"output shape {tuple(have_t.shape)} in onnxruntime, "
                               f"{tuple(want.shape)} in torch")
        diff = max(diff, output_diff(want, have_t))
        finite = want[want.isfinite()].double()
        if finite.numel():
            scale = max(scale, finite.abs().max().item())
    return diff, RTOL * scale, used


def output_diff(want: Tensor, have: Tensor) -> float:
    """Max |have - want| where equal values (the same infinity, NaN beside NaN) agree and a
    non-finite value against any other is an infinite difference. Python's ``max`` keeps its
    first argument against a NaN, so a NaN from onnxruntime alone used to count as no difference.
    """
    if not want.numel():
        return 0.0
    w, h = want.double(), have.double()
    agree = (w == h) | (w.isnan() & h.isnan())
    d = torch.where(agree, torch.zeros_like(w), (h - w).abs())
    return math.inf if bool(d.isnan().any()) else float(d.max())


def _name_dims(proto: Any, specs: Sequence[tuple[str, Any]], symbols: Sequence[str],
               res: NetworkResult) -> None:
    """Give the ONNX file's symbolic dims the graph's names (N, T, ...), wherever the exporter
    wrote its own (``s67``), in inputs, outputs and intermediate shapes alike."""
    flat: list[Sequence[Any]] = []
    for _, spec in specs:
        if isinstance(spec, GraphSpec):
            flat += [(2, spec.edges), (spec.nodes,)]
        else:
            flat.append(spec.dims)
    rename: dict[str, str] = {}
    for value, dims in zip(proto.graph.input, flat, strict=False):
        for dim, want in zip(value.type.tensor_type.shape.dim, dims, strict=False):
            if dim.dim_param and isinstance(want, str) and want in symbols:
                rename.setdefault(dim.dim_param, want)
    rename = {k: v for k, v in rename.items() if k != v}
    _output_dims(proto, res, symbols)
    if not rename:
        return
    token = re.compile(r"\b(" + "|".join(map(re.escape, rename)) + r")\b")
    values = list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info)
    for value in values:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = token.sub(lambda m: rename[m.group(1)], dim.dim_param)


def _output_dims(proto: Any, res: NetworkResult, symbols: Sequence[str]) -> None:
    """The outputs' symbolic dims as the graph's analysis has them: the exporter may write the
    trace's size where a loop over the sequence hid the symbol (an LSTM's [N, 5, 96])."""
    specs = [s for o in res.outputs() for s in o.ins.values() if isinstance(s, TensorSpec)]
    values = list(proto.graph.output)
    if len(specs) != len(values):
        return
    for value, spec in zip(values, specs, strict=True):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != spec.rank:
            continue
        for dim, want in zip(dims, spec.dims, strict=True):
            if isinstance(want, str) and want in symbols:
                dim.dim_param = want


def _flat_input_names(specs: Sequence[tuple[str, Any]]) -> list[str]:
    """The ONNX inputs in order: one per tensor argument, two per graph (its index tensors)."""
    out: list[str] = []
    for name, spec in specs:
        out += [f"{name}_edge_index", f"{name}_batch"] if isinstance(spec, GraphSpec) else [name]
    return out


def _name_values(proto: Any, inputs: Sequence[str], outputs: Sequence[str]) -> None:
    """Name the file's inputs after the Input nodes and its outputs after the Output nodes (the
    exporter writes ``args_0`` or ``linear_22``), wherever the counts agree and no name clashes."""
    graph = proto.graph
    taken = {v for node in graph.node for v in list(node.input) + list(node.output)}
    taken |= {v.name for v in list(graph.input) + list(graph.initializer)}
    for values, names in ((graph.input, inputs), (graph.output, outputs)):
        if len(values) != len(names) or len(set(names)) != len(names):
            continue
        for value, new in zip(values, names, strict=True):
            old = value.name
            if old == new or new in taken:
                continue
            value.name = new
            taken.add(new)
            for node in graph.node:
                node.input[:] = [new if v == old else v for v in node.input]
                node.output[:] = [new if v == old else v for v in node.output]
            for info in graph.value_info:
                if info.name == old:
                    info.name = new


def _value_dims(values: Any) -> list[tuple[str, list[int | str]]]:
    return [(v.name, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
            for v in values]


# -- saying which node stopped the exporter, and why ---------------------------------------------

_LINE = re.compile(r"layerloom [^\"'>]*model\.py>?\"?, line (\d+)")
_FX_NODE = re.compile(r"translating node %(\w+)")
_OP = re.compile(r"OpOverload\(op='([\w.]+)'")


_STEPS = {"step 1/3": "torch.export could not trace it",
          "step 2/3": "torch.export could not decompose it into core ops",
          "step 3/3": "ONNX has no translation"}


def _explain(err: BaseException, source: PythonSource, res: NetworkResult, network: str,
             program: Any) -> OnnxExportError:
    """An OnnxExportError naming the node: from the generated lines in the traceback (a trace
    failure), or from the failing FX node's stack trace and module path (a translation failure)."""
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    what = next((v for k, v in _STEPS.items() if k in text), "the exporter failed")
    lines = [int(m) for m in _LINE.findall(text)]
    fx_node = _FX_NODE.search(text)
    op = _OP.search(text)
    if program is not None and fx_node is not None:
        for node in program.graph.nodes:
            if node.name == fx_node.group(1) or (op and str(node.target).endswith(op.group(1))):
                lines = [int(m) for m in _LINE.findall(str(node.meta.get("stack_trace") or ""))]
                lines += _attr_lines(node, source, network)
                break
    found = _node_at(source, res, network, lines)
    summary = _summary(err)
    if op:
        reason = f"{what} for {op.group(1).replace('aten.', 'torch ')} ({summary})"
        hint = ("replace this node with one ONNX can express (the README lists what exports), "
                "or export PyTorch code instead")
    elif "specializ" in text or "Constraints violated" in text:
        reason = f"a dynamic dim is fixed by the code: {summary}"
        hint = "make the layer's size follow the input, or give that Input node fixed sizes"
    else:
        reason = f"{what}: {summary}"
        hint = "export PyTorch code instead, or report this with the project file"
    if found is None:
        return OnnxExportError(network, reason, hint)
    return OnnxExportError(network, reason, hint, found.node.name, found.node.type)


#: FX ops that torch.onnx translates without complaint but onnxruntime computes differently
#: (measured with torch 2.13, onnxscript 0.7): (op, test on the FX node, why).
_MISTRANSLATED: tuple[tuple[str, Any, str], ...] = (
    ("aten.scatter_reduce", lambda n: "mean" in n.args or n.kwargs.get("reduce") == "mean",
     "torch.onnx writes scatter_reduce(reduce='mean') as ONNX ScatterElements, which has no mean "
     "reduction"),
)


def _mismatch(source: PythonSource, res: NetworkResult, network: str, program: Any,
              diff: float, tol: float) -> OnnxExportError:
    """An OnnxExportError for a file that runs but computes something else, naming the node with
    an op the exporter is known to translate wrongly when there is one."""
    reason = f"onnxruntime's output differs from torch's by {diff:.3g} (tolerance {tol:.1e})"
    hint = "nothing was written; export PyTorch code instead, or report this with the project file"
    for node in (program.graph.nodes if program is not None else ()):
        for op, test, why in _MISTRANSLATED:
            if str(node.target).startswith(op) and test(node):
                lines = [int(m) for m in _LINE.findall(str(node.meta.get("stack_trace") or ""))]
                found = _node_at(source, res, network, lines + _attr_lines(node, source, network))
                return OnnxExportError(
                    network, f"{reason}: {why}", "use the 'sum' or 'max' reduction in this node "
                    "for ONNX, or export PyTorch code instead",
                    found.node.name if found else None, found.node.type if found else None)
    return OnnxExportError(network, reason, hint)


def _attr_lines(node: Any, source: PythonSource, network: str) -> list[int]:
    """Lines of the node whose submodule is on the FX node's module path (``amp`` in
    ``L__self__.amp``)."""
    stack = node.meta.get("nn_module_stack") or {}
    attrs = {attr: key for key, attr in source.attrs.items() if key[0] == network}
    out: list[int] = []
    for path, _cls in stack.values():
        head = str(path).split(".")
        for part in head:
            part = part.removeprefix("L__self___").removeprefix("L['self'].")
            if part in attrs:
                out += source.node_lines.get(attrs[part], [])
    return out


def _node_at(source: PythonSource, res: NetworkResult, network: str,
             lines: Sequence[int]) -> Any:
    """The deepest NodeResult whose generated code holds one of ``lines`` (the last frame is the
    innermost: a layer inside a block names the layer, and the block class's own node next)."""
    by_line: dict[int, tuple[str, str]] = {}
    for key, numbers in source.node_lines.items():
        for n in numbers:
            by_line.setdefault(n, key)
    analysis = source.analysis
    for line in reversed(lines):
        key = by_line.get(line)
        if key is None:
            continue
        scope, node_id = key
        if scope == network and node_id in res.nodes:
            return res.nodes[node_id]
        if analysis is not None:
            block = next((b for b in analysis.project.blocks if b.name == scope), None)
            node = next((n for n in (block.nodes if block else []) if n.id == node_id), None)
            if node is not None:
                return _Found(node)
    return None


@dataclass
class _Found:
    node: Any


def _summary(err: BaseException) -> str:
    """The innermost cause's first line, without the exporter's colour codes and advice."""
    inner = err
    while inner.__cause__ is not None:
        inner = inner.__cause__
    return _first_line(inner)


def _first_line(err: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    return (text.splitlines() or [type(err).__name__])[0][:300]


__all__ = ["CHECK_SIZES", "INSTALL_HINT", "OPSET", "OnnxExportError", "OnnxResult",
           "OnnxUnavailable", "export_onnx", "missing_packages"]
