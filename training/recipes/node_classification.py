"""Node classification on one graph: cross-entropy on the training nodes; accuracy on the
validation nodes (and over all nodes)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, TrainingFault, first

# layerloom: end local imports


class NodeClassificationRecipe(Recipe):
    name = "node_classification"
    networks = {"net": "takes node features x [V, F] and the graph, returns logits [V, classes]"}
    defaults = {"optimizer": "adam", "lr": 1e-2, "weight_decay": 5e-4, "steps": 200,
                "log_every": 5}
    metric = ("accuracy", "max")

    def adapt(self, input_specs):
        if self.data.kind != "graph":
            raise TrainingFault("node classification needs a graph dataset",
                                "choose karate or graph-csv", "data")
        specs = input_specs.get("net") or []
        feats = self.data.train[0].shape[1]
        if specs and isinstance(specs[0][0][-1], int) and specs[0][0][-1] != feats:
            raise TrainingFault(f"the graph's nodes have {feats} features but the network's "
                                f"Graph Input has {specs[0][0][-1]}",
                                f"set the Graph Input's features to {feats}", "data")

    def _logits(self, x, edge_index):
        g = self.graph(edge_index, torch.zeros(len(x), dtype=torch.long, device=x.device), 1)
        with self.autocast():
            return first(self.nets["net"](x, g)).float()

    def train_step(self, batch, step):
        x, edge_index, y, mask = batch
        logits = self._logits(x, edge_index)
        loss = F.cross_entropy(logits[mask], y[mask])
        self.opt.step(loss)
        return {"loss": loss, "accuracy": (logits[mask].argmax(-1) == y[mask]).float().mean()}

    @torch.no_grad()
    def evaluate(self):
        x, edge_index, y, mask = self.data.batch("val", torch.arange(1), self.device)
        logits = self._logits(x, edge_index)
        pred = logits.argmax(-1)
        return {"loss": float(F.cross_entropy(logits[mask], y[mask])),
                "accuracy": float((pred[mask] == y[mask]).float().mean()),
                "node_accuracy": float((pred == y).float().mean())}


RECIPE = NodeClassificationRecipe
