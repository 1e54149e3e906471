"""Small builders shared by the core tests (real graph API, no mocks)."""

from __future__ import annotations

from compiler import Project, add_network


def mlp_project(hidden: int = 32, classes: int = 10) -> Project:
    p = Project(name="mlp test")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 64]}, "x"),
            ("linear.linear", {"out_features": hidden}, "fc1"),
            ("activation.relu", {}, "act1"),
            ("linear.linear", {"out_features": classes}, "fc2"),
            ("io.output", {}, "logits"))
    return p


def isolated_app(tmp_path, monkeypatch) -> None:
    """The QApplication, with settings, recovery files and the data folder kept in tmp_path, so a
    test never reads or writes the user's own (and tests never see each other's)."""
    import uuid

    from PySide6.QtCore import QCoreApplication, QSettings

    monkeypatch.setenv("LAYERLOOM_DATA_DIR", str(tmp_path / "data"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "ini"))
    QCoreApplication.setOrganizationName(f"LayerloomTest{uuid.uuid4().hex[:6]}")
    from builder.app import make_app

    make_app()


def make_window(qtbot, project: Project | None = None):
    """A shown main window whose dialogs answer yes and whose messages are recorded."""
    from builder.file_actions import lay_out_all
    from builder.main_window import MainWindow

    if project is not None:
        lay_out_all(project)
    w = MainWindow(project)
    w.messages = []
    w.ask = lambda title, text: True
    w.inform = lambda title, text: w.messages.append((title, text))
    qtbot.addWidget(w)
    w.resize(1300, 820)
    w.show()
    return w
