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

register_helper("Graph", '''
class Graph(NamedTuple):
    """A batch of graphs: edge_index [2, E] (row 0 source, row 1 target, long), batch [V] (the
    graph each node belongs to, long) and num_graphs. Node features travel separately."""

    edge_index: Tensor
    batch: Tensor
    num_graphs: int
''')

register_helper("scatter_rows", '''
def scatter_rows(values: Tensor, index: Tensor, size: int, reduce: str = "sum") -> Tensor:
    """Reduce the rows of ``values`` into ``size`` rows: row i gets those whose index is i.

    reduce is "sum", "mean" or "max"; a row that receives nothing stays 0.
    """
    out = values.new_zeros((size,) + tuple(values.shape[1:]))
    index = index.view(-1, *([1] * (values.dim() - 1))).expand_as(values)
    if reduce == "sum":
        return out.scatter_add(0, index, values)
    return out.scatter_reduce(0, index, values, "amax" if reduce == "max" else reduce,
                              include_self=False)
''')

register_helper("GCNConv", '''
class GCNConv(nn.Module):
    """Graph convolution of Kipf & Welling (2017): X' = D^-1/2 (A + I) D^-1/2 X W + b.

    Self-loops are added here, so the edge index should not contain them.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        loops = torch.arange(x.size(0), device=x.device)
        source = torch.cat([graph.edge_index[0], loops])
        target = torch.cat([graph.edge_index[1], loops])
        degree = x.new_zeros(x.size(0)).index_add(0, target, x.new_ones(target.numel()))
        norm = degree.rsqrt()[source] * degree.rsqrt()[target]
        h = self.linear(x)  # under autocast h may be bf16/fp16: the norm follows its dtype
        out = torch.zeros_like(h).index_add(0, target, h[source] * norm.unsqueeze(1).to(h.dtype))
        return out if self.bias is None else out + self.bias
''', deps=("Graph",))

register_helper("GraphConv", '''
class GraphConv(nn.Module):
    """Message passing without an MLP: x_i' = W_root x_i + W_neighbour aggr_(j -> i) x_j."""

    def __init__(self, in_channels: int, out_channels: int, aggr: str = "sum",
                 bias: bool = True) -> None:
        super().__init__()
        self.aggr = aggr
        self.neighbour = nn.Linear(in_channels, out_channels, bias=bias)
        self.root = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        source, target = graph.edge_index
        messages = scatter_rows(x[source], target, x.size(0), self.aggr)
        return self.root(x) + self.neighbour(messages)
''', deps=("Graph", "scatter_rows"))

register_helper("GINConv", '''
class GINConv(nn.Module):
    """Graph isomorphism network layer (Xu et al. 2019): x_i' = MLP((1 + eps) x_i + sum_j x_j)."""

    def __init__(self, in_channels: int, out_channels: int, eps: float = 0.0,
                 train_eps: bool = False) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.tensor(eps)) if train_eps else eps
        self.mlp = nn.Sequential(nn.Linear(in_channels, out_channels), nn.ReLU(),
                                 nn.Linear(out_channels, out_channels))

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        source, target = graph.edge_index
        neighbours = scatter_rows(x[source], target, x.size(0), "sum")
        return self.mlp((1 + self.eps) * x + neighbours)
''', deps=("Graph", "scatter_rows"))

register_helper("SAGEConv", '''
class SAGEConv(nn.Module):
    """GraphSAGE layer (Hamilton et al. 2017): x_i' = W_root x_i + W_neighbour mean_(j -> i) x_j,
    optionally scaled to unit length."""

    def __init__(self, in_channels: int, out_channels: int, aggr: str = "mean",
                 normalize: bool = False, bias: bool = True) -> None:
        super().__init__()
        self.aggr = aggr
        self.normalize = normalize
        self.neighbour = nn.Linear(in_channels, out_channels, bias=bias)
        self.root = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        source, target = graph.edge_index
        messages = scatter_rows(x[source], target, x.size(0), self.aggr)
        out = self.root(x) + self.neighbour(messages)
        return F.normalize(out, dim=-1) if self.normalize else out
''', deps=("Graph", "scatter_rows"))

register_helper("pool_per_graph", '''
def pool_per_graph(x: Tensor, graph: Graph, reduce: str = "mean") -> Tensor:
    """One row per graph: the mean, sum or max of its nodes' features, [num_graphs, F]."""
    return scatter_rows(x, graph.batch, graph.num_graphs, reduce)
''', deps=("Graph", "scatter_rows"))


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
