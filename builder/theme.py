"""Dark (default) and light themes: a QPalette for the widgets and a few canvas colours."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Theme:
    name: str
    window: str
    base: str
    alt: str
    text: str
    dim: str
    accent: str
    canvas: str
    grid: str
    node: str
    node_border: str
    wire: str
    label: str
    error: str
    warning: str


DARK = Theme("dark", window="#25272b", base="#1d1f22", alt="#2b2e33", text="#e3e5e8",
             dim="#9aa0a8", accent="#4f9cf7", canvas="#1b1c1f", grid="#26282c", node="#2e3137",
             node_border="#4a4e56", wire="#8a93a0", label="#c8d0da", error="#f0524f",
             warning="#f2b84b")
LIGHT = Theme("light", window="#f2f3f5", base="#ffffff", alt="#eceef1", text="#1e2024",
              dim="#5f6670", accent="#1f6fd1", canvas="#fafbfc", grid="#eceef1", node="#ffffff",
              node_border="#b5bcc6", wire="#6b7480", label="#2f3640", error="#d43632",
              warning="#b57a00")
THEMES = {"dark": DARK, "light": LIGHT}

#: Header stripe colour per node category (fallback: accent).
CATEGORY_COLORS = {
    "Input / Output": "#3aa675", "Linear": "#4f9cf7", "Convolution": "#8c6cf0",
    "Pooling": "#c46ce0",
    "Normalization": "#e08a3c", "Activation": "#d9b43a", "Recurrent": "#e0566c",
    "Attention": "#36b6c9", "Merge": "#7f8c9d", "Shape": "#8f9a6a", "Graph": "#5bbf9a",
    "Generative": "#e06c9f", "Blocks": "#6a8cff",
}

_current = DARK


def current() -> Theme:
    return _current


def category_color(category: str) -> QColor:
    return QColor(CATEGORY_COLORS.get(category, _current.accent))


def apply(app: QApplication, name: str = "dark") -> Theme:
    global _current
    theme = THEMES.get(name, DARK)
    _current = theme
    app.setStyle("Fusion")
    pal = QPalette()
    c = QColor
    pal.setColor(QPalette.ColorRole.Window, c(theme.window))
    pal.setColor(QPalette.ColorRole.WindowText, c(theme.text))
    pal.setColor(QPalette.ColorRole.Base, c(theme.base))
    pal.setColor(QPalette.ColorRole.AlternateBase, c(theme.alt))
    pal.setColor(QPalette.ColorRole.Text, c(theme.text))
    pal.setColor(QPalette.ColorRole.Button, c(theme.alt))
    pal.setColor(QPalette.ColorRole.ButtonText, c(theme.text))
    pal.setColor(QPalette.ColorRole.ToolTipBase, c(theme.base))
    pal.setColor(QPalette.ColorRole.ToolTipText, c(theme.text))
    pal.setColor(QPalette.ColorRole.Highlight, c(theme.accent))
    pal.setColor(QPalette.ColorRole.HighlightedText, c("#ffffff"))
    pal.setColor(QPalette.ColorRole.PlaceholderText, c(theme.dim))
    pal.setColor(QPalette.ColorRole.Link, c(theme.accent))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText,
                 QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, c(theme.dim))
    app.setPalette(pal)
    from . import assets

    app.setStyleSheet(assets.stylesheet(asdict(theme)))
    app.setWindowIcon(assets.app_icon())
    return theme
