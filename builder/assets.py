"""The one way into the top-level ``assets/`` folder: icons and stylesheets, cached.

The folder sits beside the packages in a source checkout and is installed as the data package
``assets`` in a wheel; both are found here, so nothing else in the app knows a path.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from string import Template

from PySide6.QtGui import QIcon


@lru_cache(maxsize=1)
def root() -> Path:
    """The assets folder: the checkout's (editable installs) or the installed package's."""
    here = Path(__file__).resolve().parents[1] / "assets"
    if (here / "style" / "app.qss").is_file():
        return here
    from importlib import resources

    return Path(str(resources.files("assets")))


def path(*parts: str) -> Path:
    return root().joinpath(*parts)


def slug(category: str) -> str:
    """'Input / Output' -> 'input-output': the file name of a category's icon."""
    return re.sub(r"[^a-z0-9]+", "-", category.lower()).strip("-")


@lru_cache(maxsize=None)
def icon(*parts: str) -> QIcon:
    """An icon from the folder; a null icon (never an error) when the file is missing."""
    p = path(*parts)
    return QIcon(str(p)) if p.is_file() else QIcon()


def app_icon() -> QIcon:
    return icon("icons", "app.svg")


def category_icon(category: str) -> QIcon:
    return icon("icons", "category", f"{slug(category)}.svg")


def stylesheet(colours: dict[str, str]) -> str:
    """The widget stylesheet with the theme's colours filled in."""
    text = path("style", "app.qss").read_text(encoding="utf-8")
    return Template(text).safe_substitute(colours)
