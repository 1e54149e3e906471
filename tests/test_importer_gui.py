"""File ▸ Import ▸ PyTorch module… and the Training panel's "start from imported weights"."""

from __future__ import annotations

from helpers import make_window
from PySide6.QtWidgets import QMessageBox

from builder.import_dialog import WARNING, ImportDialog, run_import
from compiler.imported_weights import weights_path
from compiler.loading import load


def test_import_menu_dialog_warns_and_imports(qtbot, tmp_path, monkeypatch) -> None:
    w = make_window(qtbot)
    titles = [a.text() for a in w.import_menu.actions()]
    assert "&PyTorch module…" in titles
    src = tmp_path / "tiny.py"
    src.write_text("import torch\nclass Tiny(torch.nn.Module):\n"
                   "    def __init__(self):\n        super().__init__()\n"
                   "        self.fc = torch.nn.Linear(3, 2)\n"
                   "    def forward(self, x):\n        return self.fc(x)\n")
    d = ImportDialog(w)
    qtbot.addWidget(d)
    assert "runs your own code" in WARNING and "runs the code" in d.ok.text()
    d.file.setText(str(src))
    d.name.setText("Tiny")
    d.out.setText(str(tmp_path / "tiny.loom"))
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a: shown.append(a[2]))
    path = run_import(w, d)
    assert path == tmp_path / "tiny.loom" and weights_path(path).exists()
    assert "max |difference|" in shown[0]
    assert [n.type for n in load(path).network("net").nodes] == [
        "io.input", "linear.linear", "io.output"]
    assert w.open_path(path)
    form = w.training.form  # opened beside its weights: "start from imported weights" is on
    assert not form.init_weights.isHidden() and form.start_weights() == weights_path(path)
    form.init_weights.setChecked(False)
    assert form.start_weights() is None
    form.set_imported_weights(None)
    assert form.init_weights.isHidden() and form.start_weights() is None


def test_failed_import_shows_the_reason(qtbot, tmp_path, monkeypatch) -> None:
    w = make_window(qtbot)
    d = ImportDialog(w)
    qtbot.addWidget(d)
    d.file.setText(str(tmp_path / "missing.py"))
    d.name.setText("Net")
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: shown.append(a[2]))
    assert run_import(w, d) is None
    assert "no file" in shown[0]


def test_opening_an_opaque_project_in_the_app_runs_nothing(qtbot, tmp_path) -> None:
    """The editor analyses, draws and summarises (or says it cannot) without importing."""
    from test_importer_security import EVIL, _crafted

    evil = tmp_path / "evil.py"
    evil.write_text(EVIL)
    path = tmp_path / "crafted.loom"
    path.write_text(_crafted(f"{evil}:Evil"))
    w = make_window(qtbot)
    assert w.open_path(path)
    w.document.analyze_now()
    analysis = w.document.analysis
    assert analysis is not None and analysis.ok, [str(d) for d in analysis.diagnostics]
    qtbot.wait(300)  # the summary worker has had its go
    assert not (tmp_path / "ran.txt").exists() and not (tmp_path / "built.txt").exists()
