"""The Train panel's notices: the data does not fit the model (with the one-click fix), the
graph changed during a run, the runner's warnings, and why a run failed or could not start."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .datafit import Misfit

WARN_STYLE = "background: #fff4ce; border: 1px solid #e0c060; padding: 4px; color: #5a4500"
FAIL_STYLE = "background: #fde7e9; border: 1px solid #d9534f; padding: 4px; color: #6b1016"


def esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Notices(QWidget):
    """A column of labels, each hidden until it has something to say."""

    adapt_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.misfit: Misfit | None = None
        self.fit = QLabel()
        self.fit.setWordWrap(True)
        self.fit.setStyleSheet(WARN_STYLE)
        self.adapt_btn = QPushButton("Adapt the model to the data")
        self.adapt_btn.setToolTip("Set the Input shape and the output width to what the dataset "
                                  "gives (one undoable edit)")
        self.adapt_btn.clicked.connect(self.adapt_clicked)
        self.fit_box = QWidget()
        fit_lay = QVBoxLayout(self.fit_box)
        fit_lay.setContentsMargins(0, 0, 0, 0)
        fit_lay.addWidget(self.fit)
        row = QHBoxLayout()
        row.addWidget(self.adapt_btn)
        row.addStretch(1)
        fit_lay.addLayout(row)
        self.fit_box.hide()

        self.banner = QLabel("The graph changed since this run started. The run keeps training "
                             "the model as it was; start a new run to train the edited graph.")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(WARN_STYLE)
        self.banner.hide()
        # The runner's warnings (a diverging loss): the run goes on, the user should know why.
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARN_STYLE)
        self.warning.hide()
        self.failure = QLabel()
        self.failure.setWordWrap(True)
        self.failure.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.failure.setStyleSheet(FAIL_STYLE)
        self.failure.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.fit_box, self.banner, self.warning, self.failure):
            lay.addWidget(w)

    def show_misfit(self, misfit: Misfit | None) -> None:
        self.misfit = misfit
        if misfit is None:
            self.fit_box.hide()
            return
        lead = "The data does not fit the model" if misfit.blocking else \
            "The data and the model differ"
        text = f"<b>{lead}:</b> {esc(misfit.reason)}."
        if misfit.changes:
            text += f"<br>Adapting sets {esc(misfit.summary)}."
        elif misfit.blocking:
            text += "<br>Change the Input shape or the last layer's width to match."
        self.fit.setText(text)
        self.adapt_btn.setVisible(bool(misfit.changes))
        self.fit_box.show()

    def show_warning(self, ev: dict) -> None:
        text = str(ev.get("message") or ev.get("reason") or "The run reported a problem.")
        hint = str(ev.get("hint") or "")
        self.warning.setText(f"Warning at step {ev.get('step', '?')}: {text}"
                             + (f" — {hint}" if hint else ""))
        self.warning.show()

    def show_failure(self, title: str, reason: str, hint: str, log: Path | None = None) -> None:
        text = f"<b>{esc(title)}:</b> {esc(reason)}"
        if hint:
            text += f"<br><b>What to try:</b> {esc(hint)}"
        if log is not None:
            text += f"<br><span style='color:#555'>Log kept in {esc(str(log.parent))}</span>"
        self.failure.setText(text)
        self.failure.show()

    def clear_run(self) -> None:
        """A new run (or another project): nothing said about the last one still applies."""
        for w in (self.banner, self.warning, self.failure):
            w.hide()
