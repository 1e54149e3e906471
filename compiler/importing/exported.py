"""The ``torch.export`` fallback for a forward torch.fx cannot follow.

fx traces symbolically, so a branch on a size (``if x.shape[1] > 3``) stops it; ``torch.export``
runs the forward on example inputs and specialises such branches. Its graph is in ATen ops and
does not keep modules as calls, but every op carries ``nn_module_stack``: the module calls it ran
inside. The ops of one call of a direct submodule (a catalogue leaf, a helper, a user block) are
collapsed back into one ``call_module`` node with that call's tensors as arguments, so the result
reads like an fx graph and :mod:`.convert` walks it unchanged: leaves become their nodes, user
submodules are converted on their own (fx first). The ops left at this scope's own level are ATen
ops, which :mod:`.ops` maps to nodes. The import is still verified against the original.
"""

from __future__ import annotations

import operator
import warnings
from typing import Any, Sequence

import torch
import torch.fx as fx
from torch import nn
from torch.export.graph_signature import InputKind

from .scopes import Unsupported
from .trace import Untraceable, is_container
from .values import Recorded


class ExportFailed(Unsupported):
    """torch.export could not follow the forward either (data-dependent values, ...)."""


def example_call(root: nn.Module, module: nn.Module, example: Sequence[Any]
                 ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of ``module``'s first call when ``root`` runs on ``example``."""
    if module is root:
        return tuple(example), {}
    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def hook(mod: nn.Module, args: tuple, kwargs: dict) -> None:
        if not seen:
            seen.append((tuple(args), dict(kwargs)))

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            root(*example)
    finally:
        handle.remove()
    if not seen:
        raise ExportFailed("it was not called in the example run")
    return seen[0]


def _dynamic(module: nn.Module, args: tuple[Any, ...], recorded: Recorded) -> tuple[Any, ...]:
    """Dims whose size differed between the two example runs are exported as dynamic (so a
    reshape keeps its batch dim); the rest are specialised, as the branch is."""
    calls = recorded.calls.get(id(module), [])
    half = len(calls) // 2
    ins1 = calls[0][0] if calls else []
    ins2 = calls[half][0] if half else []
    shapes: list[Any] = []
    i = 0
    for a in args:
        if isinstance(a, torch.Tensor):
            s1 = ins1[i][0] if i < len(ins1) else ()
            s2 = ins2[i][0] if i < len(ins2) else ()
            shapes.append({d: torch.export.Dim.AUTO for d, (p, q) in
                           enumerate(zip(s1, s2, strict=False)) if p != q} or None)
            i += 1
        else:
            shapes.append(None)
    return tuple(shapes)


def export_graph(root: nn.Module, module: nn.Module, example: Sequence[Any],
                 recorded: Recorded, why: Untraceable) -> fx.Graph:
    """``module.forward`` through torch.export, collapsed to calls of its direct submodules;
    raises ``why`` (fx's message: module and line), with export's reason added, if it fails."""
    try:
        args, kwargs = example_call(root, module, example)
        dynamic = _dynamic(module, args, recorded) if not kwargs else None
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # export's advice on the user's attributes
            ep = torch.export.export(module, args, kwargs or None, dynamic_shapes=dynamic,
                                     strict=False)
    except Exception as err:  # export raises many kinds (UserError, GuardOnDataDependent ...)
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise Untraceable(f"{why.message}; torch.export cannot follow it either "
                          f"({type(err).__name__}: {text[:300]})", why.where) from err
    try:
        return collapse(ep, module, recorded)
    except Unsupported as err:
        raise Untraceable(f"{why.message}; torch.export traced it, but {err}", why.where) from err


def _owner(n: fx.Node, module: nn.Module) -> tuple[str, str] | None:
    """(call key, submodule path) of the outermost non-container submodule ``n`` ran in."""
    stack = n.meta.get("nn_module_stack") or {}
    for key, entry in stack.items():
        path = entry[0] if isinstance(entry, tuple) else ""
        if not isinstance(path, str) or not path:
            continue
        try:
            sub = module.get_submodule(path)
        except AttributeError:
            return None
        if not is_container(sub):
            return key, path
    return None


def _tensor_valued(n: Any) -> bool:
    return isinstance(n, fx.Node) and isinstance(n.meta.get("val"), torch.Tensor)


def collapse(ep: torch.export.ExportedProgram, module: nn.Module,
             recorded: Recorded | None = None) -> fx.Graph:
    """An fx graph of ``call_module`` nodes (one per submodule call) and this scope's ATen ops;
    ``recorded`` tells which submodules return more than one tensor."""
    specs = {s.arg.name: s for s in ep.graph_signature.input_specs
             if hasattr(s.arg, "name")}
    nodes = list(ep.graph.nodes)
    groups: dict[str, list[fx.Node]] = {}
    path_of: dict[str, str] = {}
    group_of: dict[fx.Node, str] = {}
    for n in nodes:
        if n.op != "call_function":
            continue
        owner = _owner(n, module)
        if owner is not None:
            groups.setdefault(owner[0], []).append(n)
            path_of[owner[0]] = owner[1]
            group_of[n] = owner[0]
    last = {key: members[-1] for key, members in groups.items()}
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    #: parameter and buffer placeholders -> their attribute (a get_attr only where one is read
    #: at this scope's level, not inside a submodule call)
    attrs: dict[fx.Node, str] = {}

    def get(a: Any) -> Any:
        if isinstance(a, fx.Node):
            if a in attrs and a not in env:
                env[a] = graph.get_attr(attrs[a])
                env[a].meta = dict(a.meta)
            if a not in env and a.op == "placeholder":
                raise Unsupported(f"the forward itself uses the constant '{a.name}' (only the "
                                  "modules it calls may hold tensors)")
            if a not in env:
                raise Unsupported(f"torch.export's graph uses '{a.name}' before the module call "
                                  "that makes it ends")
            return env[a]
        if isinstance(a, (list, tuple)):
            return type(a)(get(x) for x in a)
        if isinstance(a, dict):
            return {k: get(v) for k, v in a.items()}
        return a

    for n in nodes:
        if n.op == "placeholder":
            spec = specs.get(n.name)
            kind = spec.kind if spec is not None else InputKind.USER_INPUT
            if kind == InputKind.USER_INPUT:
                env[n] = graph.placeholder(n.name)
                env[n].meta = dict(n.meta)
            elif kind in (InputKind.PARAMETER, InputKind.BUFFER) and spec is not None:
                attrs[n] = str(spec.target)
            # constants, tokens: only ops inside a module call may use them (checked by get)
        elif n.op == "call_function" and n in group_of:
            key = group_of[n]
            if n is last[key]:
                sub = module.get_submodule(path_of[key])
                calls = recorded.calls.get(id(sub), []) if recorded is not None else []
                _emit_call(graph, env, groups[key], path_of[key], get,
                           bool(calls) and calls[0][1] is None)
        elif n.op == "call_function":
            new = graph.create_node("call_function", n.target, get(n.args), get(n.kwargs),
                                    name=n.name)
            new.meta = dict(n.meta)
            env[n] = new
        elif n.op == "output":
            outs = get(n.args[0])
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            graph.output(outs[0] if len(outs) == 1 else tuple(outs))
        else:
            raise Unsupported(f"torch.export node kind {n.op}")
    return graph


def _emit_call(graph: fx.Graph, env: dict[fx.Node, fx.Node], members: list[fx.Node], path: str,
               get: Any, several: bool) -> None:
    """One call of submodule ``path``: its tensor inputs (in order of first use) in, the one
    value used outside it out; ``several``: the module returns more than one tensor."""
    inside = set(members)
    ins: list[fx.Node] = []
    for m in members:
        for a in m.all_input_nodes:
            user = a.op != "placeholder" or (a in env and env[a].op == "placeholder")
            if a not in inside and a not in ins and _tensor_valued(a) and user:
                ins.append(a)
    outs = [m for m in members if any(u not in inside for u in m.users)]
    if len(outs) != 1:
        raise Unsupported(f"the call of '{path}' gives {len(outs)} values to the rest of the "
                          "forward (only one can be drawn from torch.export's graph)")
    out = outs[0]
    call = graph.call_module(path, tuple(get(a) for a in ins))
    call.meta = dict(out.meta)
    src = out.args[0] if out.target is operator.getitem and out.args else None
    if src in inside and several:
        if out.args[1] != 0:
            raise Unsupported(f"only the first result of the call of '{path}' can be drawn "
                              "from torch.export's graph")
        # the first of several results (an RNN's output, before its state): the module's
        # first result too, read from its call as fx would
        call = graph.call_function(operator.getitem, (call, 0))
        call.meta = dict(out.meta)
    env[out] = call


__all__ = ["export_graph", "collapse", "example_call", "ExportFailed"]
