"""Undoable edits of the search section. Each calls ``ProjectEdits`` (compiler/graph.py) and keeps
what its undo needs: the choice or settings the API returned."""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from compiler.project import Choice, SearchModel

from ..commands import _Once
from ..document import Document


class SetChoiceCommand(_Once, QUndoCommand):
    """Search over one param (or change its domain): undo puts the previous choice back."""

    def __init__(self, doc: Document, choice: Choice) -> None:
        super().__init__(f"Search over {choice.param}")
        self.doc = doc
        self.choice = choice.model_copy(deep=True)
        self.previous: Choice | None = None

    def _redo(self) -> None:
        self.previous = self.doc.edits().set_choice(self.choice)

    def undo(self) -> None:
        edits = self.doc.edits()
        if self.previous is None:
            edits.remove_choice(self.choice.scope, self.choice.node, self.choice.param)
        else:
            edits.set_choice(self.previous)


class RemoveChoiceCommand(_Once, QUndoCommand):
    """Stop searching over one param: undo restores the choice as it was."""

    def __init__(self, doc: Document, scope: str, node: str, param: str) -> None:
        super().__init__(f"Stop searching {param}")
        self.doc = doc
        self.key = (scope, node, param)
        self.removed: Choice | None = None

    def _redo(self) -> None:
        from compiler.graph import GraphEditError

        self.removed = self.doc.edits().remove_choice(*self.key)
        if self.removed is None:
            raise GraphEditError(f"'{self.key[2]}' is not searched; nothing to remove")

    def undo(self) -> None:
        if self.removed is not None:
            self.doc.edits().set_choice(self.removed)


class SetSearchCommand(_Once, QUndoCommand):
    """The search settings (strategy, budgets, objective, constraints) as one undo step; the
    choices are those of the document at the time, so settings edits never drop a choice."""

    def __init__(self, doc: Document, settings: SearchModel) -> None:
        super().__init__("Change search settings")
        self.doc = doc
        self.new = settings.model_copy(deep=True)
        self.old: SearchModel | None = None

    def _redo(self) -> None:
        self.old = self.doc.edits().set_search(self.new)

    def undo(self) -> None:
        if self.old is not None:
            self.doc.edits().set_search(self.old)
