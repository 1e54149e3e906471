"""Import an existing PyTorch module as an editable project (``layerloom import``).

``pipeline.import_model`` is the entry point; the steps live in small modules: ``source`` (load
the user's class, which runs their code), ``trace`` (torch.fx), ``exported`` (torch.export where
fx stops), ``leaves`` (modules -> node types), ``convert`` (one forward -> nodes), ``ops``
(functions and ATen ops -> nodes), ``assemble`` (blocks, repeats, the project),
``verify`` (weights into the generated module, outputs compared).
"""

from .pipeline import ImportFailure, ImportReport, ImportResult, import_model, parse_shape

__all__ = ["ImportFailure", "ImportReport", "ImportResult", "import_model", "parse_shape"]
