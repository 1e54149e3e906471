"""Message passing on graphs with plain torch index/scatter ops (no torch_geometric needed).

A batch of graphs travels as node features ``x`` [V, F] plus a ``Graph`` (edge_index [2, E] with
row 0 the source and row 1 the target of each edge, ``batch`` [V] mapping nodes to their graph,
``num_graphs``), the layout PyTorch Geometric made familiar. Messages flow source -> target, so
an undirected graph lists each edge in both directions. The layers are emitted into the generated
module as short classes, so an exported model still needs only torch.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import Field

from . import helpers
from .base import (
    Call,
    Emission,
    Example,
    GraphSpec,
    NodeType,
    Params,
    Port,
    ShapeError,
    TensorSpec,
    concrete_dim,
    register_helper,
    tensor_in,
)
from .registry import register

register_helper("Graph", helpers.Graph)

register_helper("scatter_rows", helpers.scatter_rows)

register_helper("GCNConv", helpers.GCNConv, deps=("Graph",))

register_helper("GraphConv", helpers.GraphConv, deps=("Graph", "scatter_rows"))

register_helper("GINConv", helpers.GINConv, deps=("Graph", "scatter_rows"))

register_helper("SAGEConv", helpers.SAGEConv, deps=("Graph", "scatter_rows"))

register_helper("pool_per_graph", helpers.pool_per_graph, deps=("Graph", "scatter_rows"))


def _graph_inputs(cls: type[NodeType], ins: Mapping[str, Any]) -> TensorSpec:
    """The node features [V, F], checked against the graph they come with."""
    x = tensor_in(ins, "x")
    if x.dtype != "float":
        raise ShapeError(f"{cls.name} needs float node features, got {x.dtype} {x.label()}",
                         "put an Embedding before it to turn node ids into vectors", "x")
    if x.rank != 2:
        raise ShapeError(f"{cls.name} needs node features [V, features]; got {x.label()}",
                         "wire the 'x' output of a Graph Input (or of another graph layer)", "x")
    g = ins.get("graph")
    if not isinstance(g, GraphSpec):
        raise ShapeError("input 'graph' needs the graph structure",
                         "wire the 'graph' output of a Graph Input into it", "graph")
    if x.dims[0] != g.nodes:
        raise ShapeError(f"x has {x.dims[0]} rows but the graph has {g.nodes} nodes",
                         "wire per-node features (before any Global Pool) into 'x'", "x")
    concrete_dim(x, -1, "in_channels")
    return x


_GRAPH_PORTS = (Port("x", doc="Node features [V, F]"),
                Port("graph", kind="graph", doc="Edges and node-to-graph map"))


class ConvParams(Params):
    out_channels: int = Field(64, ge=1, le=1_000_000, description="Features per node out")
    bias: bool = Field(True, description="Learn an additive bias")


class MessagePassingParams(ConvParams):
    aggr: Literal["sum", "mean", "max"] = Field("sum", description="How a node combines its "
                                                "neighbours' features")


class GINParams(Params):
    out_channels: int = Field(64, ge=1, le=1_000_000, description="Features per node out "
                              "(width of the MLP)")
    eps: float = Field(0.0, ge=-1.0, le=100.0, description="Extra weight of a node's own "
                       "features: (1 + eps) x_i")
    train_eps: bool = Field(False, description="Learn eps instead of keeping it fixed")


class SAGEParams(ConvParams):
    aggr: Literal["mean", "sum", "max"] = Field("mean", description="How a node combines its "
                                                "neighbours' features")
    normalize: bool = Field(False, description="Scale each node's output to unit length")


class _GraphConv(NodeType):
    category = "Graph"
    inputs = _GRAPH_PORTS
    outputs = (Port("y", doc="New node features [V, out_channels]"),)
    key_params = ("out_channels",)
    helper = ""

    @classmethod
    def infer(cls, p: Any, ins: Mapping[str, Any]) -> dict:
        x = _graph_inputs(cls, ins)
        return {"y": TensorSpec((x.dims[0], p.out_channels))}

    @classmethod
    def emit(cls, p: Any, ins: Mapping[str, Any]) -> Emission:
        defaults = type(p)()
        extra = {k: v for k, v in p.model_dump().items()
                 if k != "out_channels" and v != getattr(defaults, k)}
        # Keywords so that a block lifting a differing width names it in_channels, not arg0.
        init = Call.of(cls.helper, in_channels=ins["x"].dims[-1], out_channels=p.out_channels,
                       **extra)
        return Emission("{self}({x}, {graph})", init, helpers=(cls.helper,))

    @classmethod
    def examples(cls) -> list[Example]:
        g = GraphSpec()
        return [Example({"out_channels": 4}, {"x": TensorSpec(("V", 3)), "graph": g}),
                Example({"out_channels": 2, "bias": False},
                        {"x": TensorSpec(("V", 5)), "graph": g})]


@register
class GCNConv(_GraphConv):
    id = "graph.gcn_conv"
    name = "GCN Conv"
    helper = "GCNConv"
    Params = ConvParams
    description = ("Graph convolution (Kipf & Welling): each node averages itself and its "
                   "neighbours, weighted by 1/sqrt(degree) at both ends, then a linear map.")


@register
class MessagePassing(_GraphConv):
    id = "graph.message_passing"
    name = "Message Passing"
    helper = "GraphConv"
    Params = MessagePassingParams
    key_params = ("out_channels", "aggr")
    description = ("The basic message-passing layer: a linear map of the node's own features "
                   "plus one of its neighbours' sum, mean or max.")

    @classmethod
    def examples(cls) -> list[Example]:
        g = GraphSpec()
        return super().examples() + [
            Example({"out_channels": 3, "aggr": "mean"}, {"x": TensorSpec(("V", 2)), "graph": g}),
            Example({"out_channels": 3, "aggr": "max"}, {"x": TensorSpec(("V", 4)), "graph": g})]


@register
class GINConv(_GraphConv):
    id = "graph.gin_conv"
    name = "GIN Conv"
    helper = "GINConv"
    Params = GINParams
    description = ("Graph isomorphism layer: sums neighbours (as powerful as the WL test at "
                   "telling graphs apart) and passes (1 + eps)·self + sum through a 2-layer MLP.")

    @classmethod
    def examples(cls) -> list[Example]:
        g = GraphSpec()
        return [Example({"out_channels": 4}, {"x": TensorSpec(("V", 3)), "graph": g}),
                Example({"out_channels": 2, "eps": 0.5, "train_eps": True},
                        {"x": TensorSpec(("V", 5)), "graph": g})]


@register
class SAGEConv(_GraphConv):
    id = "graph.sage_conv"
    name = "SAGE Conv"
    helper = "SAGEConv"
    Params = SAGEParams
    key_params = ("out_channels", "aggr")
    description = ("GraphSAGE: the node's own features and the mean (or sum/max) of its "
                   "neighbours', each through its own linear map.")

    @classmethod
    def examples(cls) -> list[Example]:
        g = GraphSpec()
        return super().examples() + [
            Example({"out_channels": 3, "aggr": "max", "normalize": True},
                    {"x": TensorSpec(("V", 4)), "graph": g})]


class GlobalPoolParams(Params):
    reduce: Literal["mean", "sum", "max"] = Field("mean", description="How a graph's node "
                                                  "features combine into one vector")


@register
class GlobalPool(NodeType):
    id = "graph.global_pool"
    name = "Global Pool"
    category = "Graph"
    description = ("One vector per graph from its nodes' features (mean, sum or max): the "
                   "read-out before a graph classifier's Linear. B is the number of graphs.")
    Params = GlobalPoolParams
    inputs = _GRAPH_PORTS
    outputs = (Port("y", doc="[B, F], B = graphs in the batch"),)
    key_params = ("reduce",)

    @classmethod
    def infer(cls, p: GlobalPoolParams, ins: Mapping[str, Any]) -> dict:
        x = _graph_inputs(cls, ins)
        return {"y": TensorSpec(("B", x.dims[-1]))}

    @classmethod
    def emit(cls, p: GlobalPoolParams, ins: Mapping[str, Any]) -> Emission:
        return Emission(f'pool_per_graph({{x}}, {{graph}}, reduce="{p.reduce}")',
                        helpers=("pool_per_graph",))

    @classmethod
    def examples(cls) -> list[Example]:
        g = GraphSpec()
        return [Example({"reduce": r}, {"x": TensorSpec(("V", 3)), "graph": g})
                for r in ("mean", "sum", "max")]
