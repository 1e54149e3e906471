"""One traced forward -> one :class:`Scope` of catalogue nodes.

Leaves become their node types (:mod:`.leaves`); functional ops and tensor methods become the
matching nodes (:mod:`.ops`). A call of a user submodule is
converted on its own, recursively, into a child scope (a block later); one that cannot be
converted, or that the user marked as a leaf, is kept as an opaque node.
"""

from __future__ import annotations

import inspect
import operator
from typing import Any, Sequence

import torch.fx as fx
from torch import nn

from .exported import export_graph
from .leaves import is_catalogue_leaf, leaf_of
from .ops import OpsMixin, _kind, _target_name
from .patterns import AttentionMatch, attention_of
from .scopes import FNode, Scope, Unsupported
from .source import call_ctor, class_ref
from .trace import Untraceable, forward_params, is_container, trace
from .values import (
    Arange,
    Causal,
    LastLayer,
    Out,
    PosEmb,
    Recorded,
    Result,
    SeqFirst,
    Shape,
    Size,
)


class Converter:
    """Walks traced graphs; ``leaf_classes`` are class names the user wants kept as their code."""

    def __init__(self, root: nn.Module, ctor: dict[int, dict[str, Any]], recorded: Recorded,
                 leaf_classes: set[str], example: Sequence[Any] = ()) -> None:
        self.root = root
        self.ctor = ctor
        self.recorded = recorded
        self.leaf_classes = leaf_classes
        self.seen: dict[int, int] = {}
        #: the root's example inputs: what torch.export runs a forward fx cannot follow on
        self.example = list(example)
        #: (qualname, why fx stopped) of every forward converted through torch.export
        self.exported: list[tuple[str, str]] = []

    # -- scopes ---------------------------------------------------------------------------
    def scope(self, module: nn.Module, qualname: str, concrete: dict[str, Any],
              inputs: list[tuple[str, dict[str, Any]]]) -> Scope:
        """Convert ``module.forward``; ``inputs``: (name, params of its input node) per tensor."""
        try:
            graph = trace(module, qualname, concrete)
            fallback = None
        except Untraceable as err:
            if not self.example:
                raise
            graph = export_graph(self.root, module, self.example, self.recorded, err)
            fallback = err
        sc = Scope(module, qualname, ctor=self.ctor.get(id(module)))
        walk = _Walk(self, sc, graph, inputs)
        if fallback is None:
            walk.run()
            return sc
        try:
            walk.run()
        except Unsupported as err:  # keep fx's message (module and line) first
            raise Untraceable(f"{fallback.message}; torch.export traced it, but {err}",
                              fallback.where) from err
        self.exported.append((qualname or type(module).__name__, fallback.message))
        return sc

    def child(self, sc: Scope, fxn: fx.Node, m: nn.Module, qual: str, args: list[Any],
              kwargs: dict[str, Any]) -> FNode:
        """A user submodule's call: a block node (its converted scope) or an opaque node."""
        start, exported = dict(self.seen), len(self.exported)
        reason = ""
        if type(m).__name__ not in self.leaf_classes and not _torch_class(m):
            match = attention_of(m, self.recorded.calls.get(id(m), []), kwargs) \
                if len(args) == 1 and isinstance(args[0], Out) else None
            if match is not None:
                return self._attention_block(sc, m, qual, args[0], match)
            try:
                return self._block(sc, fxn, m, qual, args, kwargs)
            except Unsupported as err:
                reason = err.message + (f" ({err.where})" if err.where else "")
                self.seen = start  # the opaque node replays these calls as one
                del self.exported[exported:]  # and nothing inside it is drawn
        elif type(m).__name__ in self.leaf_classes:
            reason = "marked as a leaf"
        else:
            reason = f"Layerloom has no node type for torch's {type(m).__name__}"
        return self._opaque(sc, fxn, m, qual, args, kwargs, reason)

    def _block(self, sc: Scope, fxn: fx.Node, m: nn.Module, qual: str, args: list[Any],
               kwargs: dict[str, Any]) -> FNode:
        params = [p for p in forward_params(m) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        bound: dict[str, Any] = {}
        for p, a in zip(params, args, strict=False):
            bound[p.name] = a
        bound.update(kwargs)
        concrete: dict[str, Any] = {}
        tensors: list[tuple[str, Out]] = []
        for p in params:
            if p.name in bound and isinstance(bound[p.name], Out):
                tensors.append((p.name, bound[p.name]))
            elif p.name in bound:
                value = bound[p.name]
                if isinstance(value, (Size, Shape, Causal, Arange, PosEmb, Result)):
                    raise Unsupported(f"argument '{p.name}' is not a tensor or a constant", qual)
                concrete[p.name] = value
            elif p.default is not inspect.Parameter.empty:
                concrete[p.name] = p.default
            else:
                raise Unsupported(f"argument '{p.name}' is not given", qual)
        if len(args) > len(params):
            raise Unsupported("takes *args", qual)
        child = self.scope(m, qual, concrete, [(n, {"kind": "graph" if _is_graph(sc, v) else
                                                    "tensor"}) for n, v in tensors])
        node = sc.add("block.block", _local(sc, qual),
                      {"block": type(m).__name__, "repeat": 1, "args": {}}, qualname=qual)
        node.children = [child]
        for (name, value) in tensors:
            node.inputs.append((name, value.node, value.port))
        return node

    def _attention_block(self, sc: Scope, m: nn.Module, qual: str, x: Out,
                         match: AttentionMatch) -> FNode:
        """A hand-written self-attention module (:mod:`.patterns`): a block of its class holding
        one Multi-head Attention node (and the Dropout after its output projection)."""
        child = Scope(m, qual, ctor=self.ctor.get(id(m)))
        name = forward_params(m)[0].name
        inp = child.add("io.block_input", name, {"kind": "tensor"})
        child.inputs.append(inp.name)
        attn = child.add("attention.multihead_attention", match.projection, match.params,
                         module=match.module, qualname=_join(qual, match.projection))
        attn.inputs.append(("query", inp.name, "y"))
        last = attn
        if match.dropout_after is not None:
            attr, drop = match.dropout_after
            last = child.add("norm.dropout", attr, {"p": drop.p}, qualname=_join(qual, attr))
            last.inputs.append(("x", attn.name, "y"))
        out = child.add("io.block_output", "y", {})
        out.inputs.append(("x", last.name, "y"))
        child.outputs.append(out.name)
        node = sc.add("block.block", _local(sc, qual),
                      {"block": type(m).__name__, "repeat": 1, "args": {}}, qualname=qual)
        node.children = [child]
        node.inputs.append((name, x.node, x.port))
        return node

    def _opaque(self, sc: Scope, fxn: fx.Node, m: nn.Module, qual: str, args: list[Any],
                kwargs: dict[str, Any], reason: str) -> FNode:
        ref = class_ref(type(m))
        if ref is None:
            raise Unsupported(f"module '{qual}' ({type(m).__name__}) cannot be kept as your code: "
                              f"its class has no importable home (defined in __main__ or inside "
                              f"a function); {reason}", qual)
        values = self.ctor.get(id(m))
        ctor = call_ctor(values, type(m)) if values is not None else None
        if ctor is None:
            raise Unsupported(f"module '{qual}' ({type(m).__name__}) cannot be kept as your code: "
                              "its constructor arguments are not plain values (numbers, strings, "
                              f"booleans) or were not seen; {reason}", qual)
        tensors = [a for a in args if isinstance(a, Out)]
        if len(tensors) != len(args) or not all(isinstance(v, (Out,)) or _plain(v)
                                                for v in kwargs.values()):
            raise Unsupported(f"module '{qual}' is called with values other than tensors and "
                              f"constants; {reason}", qual)
        call_kwargs = {k: v for k, v in kwargs.items() if not isinstance(v, Out)}
        if any(isinstance(v, Out) for v in kwargs.values()):
            raise Unsupported(f"module '{qual}' takes a tensor by keyword; {reason}", qual)
        ins, out = self.shapes_of(m, qual)
        if len(ins) != len(tensors):
            raise Unsupported(f"module '{qual}' was called with non-tensor inputs; {reason}", qual)
        params = {"module": ref, "args": ctor[0], "kwargs": ctor[1], "call_kwargs": call_kwargs,
                  "inputs": ins, "output": out,
                  "parameters": sum(p.numel() for p in m.parameters())}
        node = sc.add("opaque.module", _local(sc, qual), params,
                      module=m, qualname=qual, reason=reason)
        for t in tensors:
            node.inputs.append(("x", t.node, t.port))
        return node

    # -- shapes of opaque modules ------------------------------------------------------------
    def shapes_of(self, m: nn.Module, qual: str) -> tuple[list[dict], dict]:
        k = self.seen.get(id(m), 0)
        self.seen[id(m)] = k + 1
        calls = self.recorded.calls.get(id(m), [])
        if len(calls) < 2 * (k + 1):
            raise Unsupported(f"module '{qual}' was not called with tensors in the example run",
                              qual)
        n = len(calls) // 2
        (ins1, out1), (ins2, out2) = calls[k], calls[n + k]
        if out1 is None or out2 is None:
            raise Unsupported(f"module '{qual}' does not return one tensor", qual)
        ins = [self._sym(a, b, qual) for a, b in zip(ins1, ins2, strict=True)]
        return ins, self._sym(out1, out2, qual)

    def _sym(self, a: tuple, b: tuple, qual: str) -> dict[str, Any]:
        (shape1, dtype), (shape2, _) = a, b
        s1, s2 = self.recorded.sizes
        dims: list[Any] = []
        for d1, d2 in zip(shape1, shape2, strict=True):
            if d1 == d2:
                dims.append(d1)
                continue
            sym = next((s for s in s1 if s1[s] == d1 and s2[s] == d2), None)
            if sym is None:
                raise Unsupported(f"module '{qual}' gives a size ({d1} / {d2}) that follows the "
                                  "input's symbolic sizes in a way a shape cannot state", qual)
            dims.append(sym)
        return {"dims": dims, "dtype": dtype}

    def count(self, m: nn.Module) -> None:
        """A leaf module is converted: step past its recorded call."""
        self.seen[id(m)] = self.seen.get(id(m), 0) + 1


def _is_graph(sc: Scope, v: Out) -> bool:
    """A graph structure: a Graph Input's graph port, or a block input of the graph kind."""
    src = sc.node(v.node)
    return (src.type == "io.graph_input" and v.port == "graph") or (
        src.type == "io.block_input" and src.params.get("kind") == "graph")


def _torch_class(m: nn.Module) -> bool:
    return type(m).__module__.startswith("torch.") and not is_container(m)


def _plain(v: Any) -> bool:
    return v is None or type(v) in (bool, int, float, str)


class _Walk(OpsMixin):
    def __init__(self, conv: Converter, sc: Scope, graph: fx.Graph,
                 inputs: list[tuple[str, dict[str, Any]]]) -> None:
        self.conv = conv
        self.sc = sc
        self.graph = graph
        self.inputs = list(inputs)
        self.env: dict[fx.Node, Any] = {}
        self.fx_of: dict[str, fx.Node] = {}
        self.is_root = sc.qualname == ""
        #: the node made for a lazy value (a time-major output, one direction of h_n) on first use
        self.made: dict[Any, Out] = {}

    def where(self, n: fx.Node) -> str:
        stack = (n.stack_trace or "").strip().splitlines()
        loc = next((s.strip() for s in reversed(stack) if s.strip().startswith("File ")), "")
        name = self.sc.qualname or type(self.sc.module).__name__
        return f"in '{name}'" + (f", {loc}" if loc else "")

    def value(self, a: Any) -> Any:
        if isinstance(a, fx.Node):
            return self.env[a]
        if isinstance(a, (list, tuple)):
            return type(a)(self.value(x) for x in a)
        if isinstance(a, dict):
            return {k: self.value(v) for k, v in a.items()}
        return a

    def tensor(self, v: Any, n: fx.Node) -> Out:
        if isinstance(v, Out):
            return v
        if isinstance(v, (SeqFirst, LastLayer)):
            if v not in self.made:
                self.made[v] = self._materialise(v, n)
            return self.made[v]
        raise Unsupported(f"'{_target_name(n)}' needs a tensor here, got {_kind(v)}",
                          self.where(n))

    def _materialise(self, v: SeqFirst | LastLayer, n: fx.Node) -> Out:
        if isinstance(v, SeqFirst):
            return self._transpose(n, v.of, f"{v.of.node}_time_major")
        h = v.state.hidden_size
        node = self.node(n, "shape.slice", {"dim": 1, "start": v.direction * h,
                                            "end": (v.direction + 1) * h, "step": 1},
                         [("x", Out(v.state.node, "hidden"))],
                         f"{v.state.node}_{'backward' if v.direction else 'forward'}")
        return Out(node.name)

    def node(self, n: fx.Node, type_id: str, params: dict[str, Any], ins: list[tuple[str, Out]],
             base: str | None = None, **kw: Any) -> FNode:
        node = self.sc.add(type_id, base or n.name, params, **kw)
        for port, v in ins:
            node.inputs.append((port, v.node, v.port))
        self.fx_of[node.name] = n
        return node

    def run(self) -> None:
        for n in self.graph.nodes:
            if n.op == "call_function" and n.target is operator.getitem and not n.users:
                continue  # an unpacked value the forward never reads (``out, _ = self.lstm(x)``)
            try:
                self.env[n] = self.step(n)
            except Unsupported:
                raise
            except (KeyError, TypeError, ValueError, IndexError) as err:
                raise Unsupported(f"'{_target_name(n)}' cannot be read ({type(err).__name__}: "
                                  f"{err})", self.where(n)) from err

    def step(self, n: fx.Node) -> Any:
        if n.op == "placeholder":
            if not n.users:
                return None
            if not self.inputs:
                raise Unsupported(f"input '{n.target}' has no example shape", self.where(n))
            name, params = self.inputs.pop(0)
            if self.is_root and params.get("kind") in ("graph", "graph_features"):
                return self._graph_input(name, params)
            kind = "io.input" if self.is_root else "io.block_input"
            node = self.sc.add(kind, name, params)
            self.sc.inputs.append(node.name)
            return Out(node.name)
        if n.op == "get_attr":
            return self.get_attr(n)
        if n.op == "call_module":
            return self.call_module(n)
        if n.op == "call_function":
            return self.call_function(n)
        if n.op == "call_method":
            return self.call_method(n)
        if n.op == "output":
            return self.output(n)
        raise Unsupported(f"fx node kind {n.op}", self.where(n))

    def _graph_input(self, name: str, params: dict[str, Any]) -> Out:
        """Node features and the graph structure: the two ports of one Graph Input node."""
        node = next((x for x in self.sc.nodes if x.type == "io.graph_input"), None)
        if node is None:
            node = self.sc.add("io.graph_input", name, {"features": params["features"]})
            self.sc.inputs.append(node.name)
        return Out(node.name, "graph" if params["kind"] == "graph" else "x")

    def output(self, n: fx.Node) -> None:
        v = self.value(n.args[0])
        values = list(v) if isinstance(v, tuple) else [v]
        kind = "io.output" if self.is_root else "io.block_output"
        for i, item in enumerate(values):
            t = self.tensor(item, n)
            name = ("y" if len(values) == 1 else f"y{i}") if not self.is_root else (
                "output" if len(values) == 1 else f"output_{i}")
            node = self.sc.add(kind, name, {})
            node.inputs.append(("x", t.node, t.port))
            self.sc.outputs.append(node.name)

    # -- attributes and modules -----------------------------------------------------------
    def get_attr(self, n: fx.Node) -> Any:
        owner, _, attr = str(n.target).rpartition(".")
        if attr == "weight" and owner:
            for node in self.sc.nodes:
                if node.qualname == _join(self.sc.qualname, owner) and node.type in (
                        "linear.embedding", "linear.tied_embedding"):
                    node.type = "linear.tied_embedding"
                    return Out(node.name, "weight")
        raise Unsupported(f"forward reads the tensor attribute '{n.target}' directly (only the "
                          "weight of an Embedding, for tying, can be drawn)", self.where(n))

    def call_module(self, n: fx.Node) -> Any:
        target = str(n.target)
        m = self.sc.module.get_submodule(target)
        qual = _join(self.sc.qualname, target)
        args = [self.value(a) for a in n.args]
        kwargs = {k: self.value(v) for k, v in n.kwargs.items()}
        leaf = leaf_of(m) if type(m).__name__ not in self.conv.leaf_classes else None
        if type(m) is nn.TransformerEncoder and type(m).__name__ not in self.conv.leaf_classes:
            self.conv.count(m)
            return self._encoder(n, m, qual, args, kwargs)
        if type(m) is nn.Unflatten and type(m).__name__ not in self.conv.leaf_classes:
            return self._unflatten(n, m, qual, args, kwargs)
        if leaf is None:
            if is_catalogue_leaf(m) and type(m).__name__ not in self.conv.leaf_classes:
                reason = f"its settings have no node ({type(m).__name__})"
                return Out(self.conv._opaque(self.sc, n, m, qual, args, kwargs, reason).name)
            node = self.conv.child(self.sc, n, m, qual, args, kwargs)
            self.fx_of[node.name] = n
            outs = _block_outputs(node)
            return outs[0] if len(outs) == 1 else tuple(outs)
        self.conv.count(m)
        base = target.replace(".", "_")
        if leaf.type == "linear.embedding" and args and isinstance(args[0], Arange):
            return PosEmb(m, qual)
        if leaf.type == "linear.linear":
            tied = self._tied(m)
            if tied is not None:
                if m.bias is not None:
                    raise Unsupported("a Linear with a bias shares an Embedding's weight",
                                      self.where(n))
                x = self.tensor(args[0], n)
                node = self.node(n, "linear.tied_linear", {}, [("x", x), ("weight", tied)], base)
                node.qualname = qual
                return Out(node.name)
        return self._leaf(n, m, qual, leaf, args, kwargs, base)

    def _unflatten(self, n: fx.Node, m: nn.Unflatten, qual: str, args: list[Any],
                   kwargs: dict[str, Any]) -> Out:
        """``nn.Unflatten(dim, sizes)`` is a Reshape. Its node needs every size after the batch
        dim, which the module's attributes do not hold: they are read from the two recorded
        runs, and the one size that differs between them (follows a symbol) becomes -1."""
        self._no_more(dict(kwargs), n)
        k, calls = self.conv.seen.get(id(m), 0), self.conv.recorded.calls.get(id(m), [])
        self.conv.count(m)
        half = len(calls) // 2
        if len(args) != 1 or len(calls) < 2 * (k + 1) or calls[k][1] is None:
            raise Unsupported(f"'{qual}' (Unflatten) was not called with one tensor in the "
                              "example run", self.where(n))
        (ins, (out1, _)), (_, (out2, _)) = calls[k], calls[half + k]
        rank = len(ins[0][0])
        if rank == 0 or m.dim % rank == 0:
            raise Unsupported(f"'{qual}' unflattens the batch dim; a Reshape keeps it: unflatten "
                              "a later dim", self.where(n))
        shape = [d1 if d1 == d2 else -1 for d1, d2 in zip(out1[1:], out2[1:], strict=True)]
        if shape.count(-1) > 1:
            raise Unsupported(f"'{qual}' (Unflatten) gives more than one size that follows the "
                              "input's symbolic sizes; a Reshape can leave only one open",
                              self.where(n))
        node = self.node(n, "shape.reshape", {"shape": shape}, [("x", self.tensor(args[0], n))],
                         str(n.target).replace(".", "_"), qualname=qual)
        return Out(node.name)

    def _tied(self, m: nn.Module) -> Out | None:
        for node in self.sc.nodes:
            embedding = node.type in ("linear.embedding", "linear.tied_embedding")
            if embedding and node.module is not None and node.module.weight is m.weight:
                node.type = "linear.tied_embedding"
                return Out(node.name, "weight")
        return None

    def _leaf(self, n: fx.Node, m: nn.Module, qual: str, leaf: Any, args: list[Any],
              kwargs: dict[str, Any], base: str) -> Any:
        params = dict(leaf.params)
        kw = dict(kwargs)
        if leaf.type == "attention.multihead_attention":
            return self._attention(n, m, qual, leaf, args, kw, base)
        if leaf.type in ("attention.transformer_encoder_layer",
                         "attention.transformer_decoder_layer"):
            return Out(self._layer(n, m, qual, leaf, args, kw, base).name)
        if leaf.type.startswith("recurrent."):
            hx = kw.pop("hx", None)
            self._no_more(kw, n)
            if len(args) != 1 or hx is not None:
                raise Unsupported("an RNN called with an initial state", self.where(n))
            x = self.tensor(args[0], n)
            if leaf.seq_first:
                x = self._transpose(n, x, f"{base}_batch_first")
            node = self.node(n, leaf.type, params, [("x", x)], base, module=m, qualname=qual)
            return Result(node.name, "rnn")
        self._no_more(kw, n)
        from nodes import registry

        ports = [p.name for p in registry.get(leaf.type).inputs]
        if len(args) > len(ports):
            raise Unsupported(f"'{qual}' called with {len(args)} inputs", self.where(n))
        ins = [(p, self.tensor(a, n)) for p, a in zip(ports, args, strict=False)]
        node = self.node(n, leaf.type, params, ins, base, module=m, qualname=qual)
        return Out(node.name, registry.get(leaf.type).outputs[0].name)

    def _attention(self, n: fx.Node, m: nn.Module, qual: str, leaf: Any, args: list[Any],
                   kw: dict[str, Any], base: str) -> Result:
        """``nn.MultiheadAttention(q, k, v, attn_mask=causal)``: the node's ports; a time-major
        module (``batch_first=False``) gets Transposes around it. A padding mask is refused
        (by ``_no_more``): an Input node cannot be bool, and a mask from ids needs ``==``."""
        params = dict(leaf.params)
        kw = {k: v for k, v in kw.items() if v is not None}  # torch's defaults, said out loud
        q, k, v = (list(args) + [kw.pop("key", None), kw.pop("value", None)])[:3] \
            if len(args) < 3 else args[:3]
        mask = kw.pop("attn_mask", None)
        kw.pop("need_weights", None)  # the node returns no weights; a read of them is refused
        if kw.get("is_causal") is False or (isinstance(mask, Causal) and "is_causal" in kw):
            kw.pop("is_causal")  # torch's hint that attn_mask is the causal one
        if kw.get("average_attn_weights") in (True, False):
            kw.pop("average_attn_weights")
        if mask is not None and not isinstance(mask, Causal):
            raise Unsupported("attention with a mask other than the causal one", self.where(n))
        params["causal"] = isinstance(mask, Causal)
        self._no_more(kw, n)
        batch_first: dict[Any, Out] = {}

        def arrive(a: Any, port: str) -> Out:
            t = self.tensor(a, n)
            if not leaf.seq_first:
                return t
            if t not in batch_first:
                batch_first[t] = self._transpose(n, t, f"{base}_{port}_batch_first")
            return batch_first[t]

        ins = [("query", arrive(q, "query"))]
        if k is not None and k != q:
            ins.append(("key", arrive(k, "key")))
        if v is not None and v != (k if k is not None else q):
            ins.append(("value", arrive(v, "value")))
        node = self.node(n, leaf.type, params, ins, base, module=m, qualname=qual)
        return Result(node.name, "attention")

    def _layer(self, n: fx.Node, m: nn.Module, qual: str, leaf: Any, args: list[Any],
               kw: dict[str, Any], base: str) -> FNode:
        """A Transformer encoder/decoder layer with its causal flag (padding masks are refused,
        as for attention)."""
        params = dict(leaf.params)
        kw = {k: v for k, v in kw.items() if v is not None}
        decoder = "decoder" in leaf.type
        mask = kw.pop("tgt_mask" if decoder else "src_mask", None)
        if isinstance(mask, Causal) or mask is None:
            causal = kw.pop("tgt_is_causal" if decoder else "is_causal", None)
            if causal and mask is None:
                raise Unsupported("is_causal=True without the mask it describes", self.where(n))
        if mask is not None and not isinstance(mask, Causal):
            raise Unsupported("a transformer layer with a mask other than the causal one",
                              self.where(n))
        params["causal"] = isinstance(mask, Causal)
        if decoder and kw.get("memory_is_causal") is False:
            kw.pop("memory_is_causal")
        self._no_more(kw, n)
        ports = ["x", "memory"] if decoder else ["x"]
        ins = [(p, self.tensor(a, n)) for p, a in zip(ports, args, strict=False)]
        return self.node(n, leaf.type, params, ins, base, module=m, qualname=qual)

    def _encoder(self, n: fx.Node, m: nn.TransformerEncoder, qual: str, args: list[Any],
                 kwargs: dict[str, Any]) -> Out:
        """``nn.TransformerEncoder``: its (deep-copied, equal) layers as a chain of Transformer
        Encoder Layer nodes, then its final norm; the mask reaches every layer, as in torch."""
        kw = dict(kwargs)
        if args[1:]:
            kw["mask"] = args[1]
        if args[2:]:
            kw["src_key_padding_mask"] = args[2]
        if len(args) > 3 or not args:
            raise Unsupported(f"'{qual}' called with {len(args)} positional arguments",
                              self.where(n))
        layer_kw = {"src_mask": kw.pop("mask", None),
                    "src_key_padding_mask": kw.pop("src_key_padding_mask", None),
                    "is_causal": kw.pop("is_causal", None)}
        self._no_more(kw, n)
        x = args[0]
        base = _local(self.sc, qual)
        for i, layer in enumerate(m.layers):
            leaf = leaf_of(layer)
            if leaf is None or type(layer) is not nn.TransformerEncoderLayer:
                raise Unsupported(f"layer {i} of '{qual}' has settings no node expresses",
                                  self.where(n))
            self.conv.count(layer)
            node = self._layer(n, layer, f"{qual}.layers.{i}", leaf, [x],
                               {k: v for k, v in layer_kw.items() if v is not None},
                               f"{base}_layers_{i}")
            x = Out(node.name)
        if m.norm is not None:
            leaf = leaf_of(m.norm)
            if leaf is None:
                raise Unsupported(f"the norm of '{qual}' has no node type", self.where(n))
            self.conv.count(m.norm)
            node = self.node(n, leaf.type, dict(leaf.params), [("x", self.tensor(x, n))],
                             f"{base}_norm", module=m.norm, qualname=f"{qual}.norm")
            x = Out(node.name)
        return self.tensor(x, n)

    def _transpose(self, n: fx.Node, x: Out, base: str) -> Out:
        """[T, N, ...] <-> [N, T, ...] around a node built for a time-major torch module."""
        node = self.node(n, "shape.transpose", {"dim0": 0, "dim1": 1}, [("x", x)], base)
        return Out(node.name)

    def _no_more(self, kw: dict[str, Any], n: fx.Node) -> None:
        if kw:
            raise Unsupported(f"'{_target_name(n)}' is called with keywords "
                              f"{', '.join(sorted(kw))} that no node expresses", self.where(n))

    # -- functions and methods --------------------------------------------------------------

def _block_outputs(node: FNode) -> list[Out]:
    if node.type != "block.block":
        return [Out(node.name)]
    return [Out(node.name, o) for o in node.children[0].outputs]


def _local(sc: Scope, qual: str) -> str:
    """A submodule's name inside its scope: ``layer1.0`` in the root, ``conv1`` in a block."""
    local = qual[len(sc.qualname) + 1:] if sc.qualname else qual
    return local.replace(".", "_") or "module"




def _join(a: str, b: str) -> str:
    return f"{a}.{b}" if a else b





