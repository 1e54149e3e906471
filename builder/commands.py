"""Undoable edits. Each command changes the project only through ``compiler.graph`` (``Graph`` for
one network, ``ProjectEdits`` for project-wide state) and keeps what its undo needs (the values the
API returned). The API announces every change it makes; the views follow ``Document.changed``.

A command whose first ``redo`` is refused by the Graph API raises ``GraphEditError`` out of
:func:`push`, and nothing lands on the stack, so a refused edit never leaves a no-op undo step.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

from PySide6.QtGui import QUndoCommand

from compiler.graph import EdgeModel, GraphEditError, NodeModel, expand_block, make_block

from .document import Document
from .layout import layered_positions

MOVE_ID = 1001
PARAMS_ID = 1002
TRAINING_ID = 1003


class _Command(QUndoCommand):
    def __init__(self, doc: Document, network: str, text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.network = network

    @property
    def graph(self):
        return self.doc.graph(self.network)


def push(doc: Document, command: QUndoCommand) -> QUndoCommand:
    """Run ``command`` once to see whether the Graph API accepts it, then put it on the stack.

    QUndoStack.push calls redo itself; a refusal raised inside it would leave the command on the
    stack, so the first run happens here and the stack is told to skip it.
    """
    command.redo()  # raises GraphEditError when refused; nothing has changed then
    command._done_once = True  # type: ignore[attr-defined]
    doc.undo_stack.push(command)
    return command


class _Once:
    """Mixin: the first redo that QUndoStack.push triggers is skipped (push already ran it)."""

    def redo(self) -> None:  # type: ignore[override]
        if getattr(self, "_done_once", False):
            self._done_once = False
            return
        self._redo()  # type: ignore[attr-defined]


class AddNodeCommand(_Once, _Command):
    def __init__(self, doc: Document, network: str, type_id: str, pos: tuple[float, float],
                 name: str | None = None, params: dict[str, Any] | None = None) -> None:
        super().__init__(doc, network, "Add node")
        self.type_id, self.pos, self.name, self.params = type_id, pos, name, dict(params or {})
        self.node_id: str | None = None
        self.saved: tuple | None = None

    def _redo(self) -> None:
        g = self.graph
        if self.saved is None:
            self.node_id = g.add(self.type_id, self.name, **self.params)
        else:
            g.restore(*self.saved)
        g.set_positions({self.node_id: self.pos})
        self.setText(f"Add {g.node(self.node_id).name}")

    def undo(self) -> None:
        g = self.graph
        self.saved = g.remove(self.node_id)
        g.set_positions({self.node_id: None})


class RemoveNodesCommand(_Once, _Command):
    def __init__(self, doc: Document, network: str, node_ids: Iterable[str]) -> None:
        super().__init__(doc, network, "Delete")
        self.node_ids = list(node_ids)
        self.saved: list[tuple] = []
        self.pos: dict[str, Any] = {}

    def _redo(self) -> None:
        g = self.graph
        if not self.node_ids:
            raise GraphEditError("nothing selected to delete")
        self.saved = []
        for nid in self.node_ids:
            self.saved.append(g.remove(nid))
        self.pos = g.set_positions({nid: None for nid in self.node_ids})
        n = len(self.node_ids)
        self.setText(f"Delete {n} node{'s' if n > 1 else ''}")

    def undo(self) -> None:
        g = self.graph
        for saved in reversed(self.saved):
            g.restore(*saved)
        g.set_positions({nid: p for nid, p in self.pos.items() if p is not None})


class ConnectCommand(_Once, _Command):
    """A wire; into a single input that already has one, the old wire is replaced (one step)."""

    def __init__(self, doc: Document, network: str, src: str, src_port: str, dst: str,
                 dst_port: str) -> None:
        super().__init__(doc, network, "Connect")
        self.args = (src, dst, src_port, dst_port)
        self.edge: EdgeModel | None = None
        self.replaced: list[tuple[int, EdgeModel]] = []

    def _redo(self) -> None:
        g = self.graph
        src, dst, sp, dp = self.args
        before = [(i, e) for i, e in enumerate(g.net.edges) if e.dst == dst and e.dst_port == dp]
        self.edge = g.connect(src, dst, sp, dp, replace=True)
        self.replaced = [(i, e) for i, e in before if e not in g.net.edges]
        self.setText(("Rewire " if self.replaced else "Connect ")
                     + f"{g.node(src).name} → {g.node(dst).name}")

    def undo(self) -> None:
        g = self.graph
        g.disconnect(self.edge)
        for i, e in sorted(self.replaced, key=lambda t: t[0]):
            g.insert_edge(e, i)


class DisconnectCommand(_Once, _Command):
    def __init__(self, doc: Document, network: str, edge: EdgeModel) -> None:
        super().__init__(doc, network, "Delete wire")
        self.edge = edge
        self.index = -1

    def _redo(self) -> None:
        self.index = self.graph.disconnect(self.edge)

    def undo(self) -> None:
        self.graph.insert_edge(self.edge, self.index)


class SetParamsCommand(_Once, _Command):
    """Param edits; successive edits of the same params of one node merge into one step."""

    def __init__(self, doc: Document, network: str, node_id: str, params: dict[str, Any]) -> None:
        super().__init__(doc, network, "Change params")
        self.node_id, self.new = node_id, dict(params)
        self.old: dict[str, Any] = {}

    def id(self) -> int:  # noqa: A003 - Qt's name
        return PARAMS_ID

    def _redo(self) -> None:
        g = self.graph
        old = g.set_params(self.node_id, **self.new)
        if not self.old:
            self.old = old
        self.setText(f"Set {', '.join(self.new)} of {g.node(self.node_id).name}")

    def undo(self) -> None:
        self.graph.set_params(self.node_id, **self.old)

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt's name
        if not isinstance(other, SetParamsCommand):
            return False
        if (other.network, other.node_id, set(other.new)) != (self.network, self.node_id,
                                                             set(self.new)):
            return False
        self.new = other.new
        return True


class RenameCommand(_Once, _Command):
    def __init__(self, doc: Document, network: str, node_id: str, name: str) -> None:
        super().__init__(doc, network, f"Rename to {name}")
        self.node_id, self.name, self.old = node_id, name, ""

    def _redo(self) -> None:
        g = self.graph
        self.old = g.node(self.node_id).name
        g.rename(self.node_id, self.name)

    def undo(self) -> None:
        self.graph.rename(self.node_id, self.old)


class MoveCommand(_Once, _Command):
    """Node positions; successive moves of the same nodes merge (a drag is one step)."""

    def __init__(self, doc: Document, network: str, new: dict[str, list[float]],
                 old: dict[str, list[float] | None] | None = None, text: str = "Move") -> None:
        super().__init__(doc, network, text)
        pos = doc.graph(network).positions()
        self.new = {k: list(v) for k, v in new.items()}
        self.old = old if old is not None else {k: copy.copy(pos.get(k)) for k in new}

    def id(self) -> int:  # noqa: A003
        return MOVE_ID

    def _redo(self) -> None:
        self.graph.set_positions(self.new)

    def undo(self) -> None:
        self.graph.set_positions(self.old)

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802
        if (not isinstance(other, MoveCommand) or other.network != self.network
                or set(other.new) != set(self.new) or other.text() != self.text()):
            return False
        self.new = other.new
        return True


class SnapshotCommand(_Once, _Command):
    """Edits that reshape networks and blocks (make/expand block, paste, layout of many nodes):
    the before and after states are kept whole, which is simple and exactly reversible."""

    def __init__(self, doc: Document, network: str, text: str) -> None:
        super().__init__(doc, network, text)
        self.before: dict | None = None
        self.after: dict | None = None
        self.result: Any = None

    def apply(self) -> Any:  # overridden
        raise NotImplementedError

    def _redo(self) -> None:
        edits = self.doc.edits()
        if self.after is None:
            self.before = edits.snapshot()
            try:
                self.result = self.apply()
            except Exception:
                edits.restore(self.before, self.network)
                raise
            self.after = edits.snapshot()
            edits.reshaped(self.network)
        else:
            edits.restore(self.after, self.network)

    def undo(self) -> None:
        assert self.before is not None
        self.doc.edits().restore(self.before, self.network)


class MakeBlockCommand(SnapshotCommand):
    def __init__(self, doc: Document, network: str, node_ids: Iterable[str], name: str) -> None:
        super().__init__(doc, network, f"Make block {name}")
        self.node_ids, self.name = list(node_ids), name

    def apply(self) -> str:
        pos = self.doc.graph(self.network).positions()
        xs = [p for p in (pos.get(k) for k in self.node_ids) if p]
        node_id = make_block(self.doc.project, self.network, self.node_ids, self.name)
        moves: dict[str, list[float] | None] = {k: None for k in self.node_ids}
        if xs:
            moves[node_id] = [sum(p[0] for p in xs) / len(xs), sum(p[1] for p in xs) / len(xs)]
        self.doc.graph(self.network).set_positions(moves)
        block = self.doc.graph(self.name)
        block.set_positions(layered_positions(block.net, self.doc.layout_direction()))
        return node_id


class ExpandBlockCommand(SnapshotCommand):
    def __init__(self, doc: Document, network: str, node_id: str) -> None:
        super().__init__(doc, network, "Expand block")
        self.node_id = node_id

    def apply(self) -> list[str]:
        created = expand_block(self.doc.project, self.network, self.node_id)
        g = self.doc.graph(self.network)
        layout = layered_positions(g.net, self.doc.layout_direction())
        g.set_positions({self.node_id: None, **layout})
        return created


class PasteCommand(SnapshotCommand):
    """Adds copies of nodes (with the wires among them); ``offset`` shifts their positions."""

    def __init__(self, doc: Document, network: str, nodes: list[dict], edges: list[dict],
                 positions: dict[str, list[float]], offset: tuple[float, float]) -> None:
        super().__init__(doc, network, f"Paste {len(nodes)} node{'s' if len(nodes) != 1 else ''}")
        self.nodes, self.edges, self.pos, self.offset = nodes, edges, positions, offset

    def apply(self) -> list[str]:
        g = self.doc.graph(self.network)
        id_map: dict[str, str] = {}
        moves: dict[str, list[float]] = {}
        for n in self.nodes:
            node = NodeModel.model_validate(n)
            new_id = g.add(node.type, g.unique_name(node.name), **copy.deepcopy(node.params))
            id_map[node.id] = new_id
            p = self.pos.get(node.id, [0.0, 0.0])
            moves[new_id] = [p[0] + self.offset[0], p[1] + self.offset[1]]
        g.set_positions(moves)
        for e in self.edges:
            if e["src"] in id_map and e["dst"] in id_map:
                g.connect(id_map[e["src"]], id_map[e["dst"]], e["src_port"], e["dst_port"])
        return list(id_map.values())


class LayoutCommand(MoveCommand):
    def __init__(self, doc: Document, network: str, new: dict[str, list[float]]) -> None:
        super().__init__(doc, network, new, text="Auto-layout")

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802
        return False


class AdaptToDataCommand(SnapshotCommand):
    """The Train panel's "Adapt the model to the data": the Input's shape and the width of the
    layer before the Output set to what the dataset gives, as one undo step."""

    def __init__(self, doc: Document, network: str, changes: list[tuple[str, dict[str, Any]]]
                 ) -> None:
        super().__init__(doc, network, "Adapt the model to the data")
        self.changes = [(node_id, dict(params)) for node_id, params in changes]

    def apply(self) -> None:
        g = self.graph
        for node_id, params in self.changes:
            g.set_params(node_id, **params)


class SetTrainingCommand(_Once, QUndoCommand):
    """The train panel's settings (recipe, dataset, hyperparameters) as one undoable edit;
    successive edits merge, so typing a learning rate is one undo step."""

    def __init__(self, doc: Document, new: Any) -> None:
        super().__init__("Change training settings")
        self.doc = doc
        self.old = doc.project.training.model_copy(deep=True)
        self.new = new.model_copy(deep=True)

    def id(self) -> int:  # noqa: A003 - Qt's name
        return TRAINING_ID

    def _redo(self) -> None:
        self.doc.edits().set_training(self.new)

    def undo(self) -> None:
        self.doc.edits().set_training(self.old)

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802
        if not isinstance(other, SetTrainingCommand):
            return False
        self.new = other.new
        return True

