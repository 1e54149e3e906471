"""What an opened trial window shows besides its graph: which trial it is, its figures and every
param that differs from the searched project (``training.search.space.describe``)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from compiler.summary import human


def differences_text(number: int, ev: dict[str, Any], lines: list[str]) -> str:
    metric = ev.get("metric")
    head = [f"<b>Trial {number}</b> of the search ({ev.get('state', '?')})",
            "validation metric: " + ("—" if metric is None else f"<b>{metric:.4f}</b>"),
            "parameters: " + ("—" if ev.get("params") is None else human(ev["params"])),
            "FLOPs: " + ("—" if ev.get("flops") is None else human(ev["flops"]))]
    diff = [f"• {line}" for line in lines] or ["• the same as the searched project's values"]
    return "<br>".join(head + ["", "<b>Differences from the base</b>"] + diff +
                       ["", "Train it longer (F5) or export it (File ▸ Export)."])


def attach_differences(window: Any, number: int, ev: dict[str, Any], lines: list[str]) -> QLabel:
    """A "Trial N" dock on the new window listing the differences, and the same in its status."""
    label = QLabel(differences_text(number, ev, lines))
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignTop)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setObjectName("trial_differences")
    window.add_dock(label, f"Trial {number}", Qt.DockWidgetArea.RightDockWidgetArea)
    window.show_status(f"Trial {number}: " + ("; ".join(lines) or "no differences"))
    window.trial_differences = lines
    return label
