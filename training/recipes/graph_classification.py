"""Graph classification: batches of small graphs collated into one disconnected graph; the network
pools per graph and returns logits [graphs, classes]."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# layerloom: local imports (train.py defines these names above)
from training.engine import Recipe, TrainingFault, first

# layerloom: end local imports


class GraphClassificationRecipe(Recipe):
    name = "graph_classification"
    networks = {"net": "takes node features x [V, F] and the graph batch, returns logits "
                       "[graphs, classes]"}
    defaults = {"optimizer": "adam", "lr": 5e-3, "batch_size": 32, "epochs": 20}
    metric = ("accuracy", "max")

    def adapt(self, input_specs):
        if self.data.kind != "graphs":
            raise TrainingFault("graph classification needs a dataset of graphs",
                                "choose graphs-synth", "data")

    def _logits(self, x, edge_index, batch, num_graphs):
        with self.autocast():
            return first(self.nets["net"](x, self.graph(edge_index, batch, num_graphs))).float()

    def train_step(self, batch, step):
        x, edge_index, b, num_graphs, y = batch
        logits = self._logits(x, edge_index, b, num_graphs)
        loss = F.cross_entropy(logits, y)
        self.opt.step(loss)
        return {"loss": loss, "accuracy": (logits.detach().argmax(-1) == y).float().mean()}

    @torch.no_grad()
    def evaluate(self):
        n, correct, tl = 0, 0, 0.0
        for x, edge_index, b, num_graphs, y in self.val_batches(128):
            logits = self._logits(x, edge_index, b, num_graphs)
            tl += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            n += len(y)
        return {"loss": tl / max(1, n), "accuracy": correct / max(1, n)}


RECIPE = GraphClassificationRecipe
