"""Trust in the window: a save that cannot happen is reported and loses nothing; a crafted file
opened in the app never runs code; a corrupt file is refused and the open document is untouched.

Every test drives the real window and its menu actions; only the file dialogs and message boxes
are answered by the window's own hooks (``choose_file``, ``ask``, ``inform``)."""

from __future__ import annotations

import errno
import json
import os

import pytest
from helpers import isolated_app, make_window
from pydantic import ValidationError
from PySide6.QtGui import QAction

from builder.file_actions import lay_out_all
from builder.main_window import MainWindow
from compiler import Project, add_network, load


@pytest.fixture
def env(tmp_path, monkeypatch):
    isolated_app(tmp_path, monkeypatch)
    return tmp_path


def _mlp() -> Project:
    p = Project(name="mlp")
    g = add_network(p, "net")
    g.chain(("io.input", {"shape": ["N", 16]}, "x"), ("linear.linear", {"out_features": 8}, "fc"),
            ("activation.relu", {}, "act"), ("io.output", {}, "logits"))
    return p


def _menu_action(w: MainWindow, text: str) -> QAction:
    """The window's own menu action, so a test goes through exactly what a click does."""
    found = [a for a in w.findChildren(QAction) if a.text().replace("&", "") == text]
    assert found, f"no menu action {text!r}"
    return found[0]


def _edit(w: MainWindow, value: int) -> None:
    """A real, undoable edit through the inspector: fc's width."""
    w.scene.select([w.scene.graph.find("fc")])
    w.inspector.editors["out_features"].setValue(value)


def _state(w: MainWindow) -> tuple:
    """Everything a failed save or open must leave exactly as it was."""
    doc = w.document
    return (doc.project.model_dump(), doc.path, doc.dirty, w.isWindowModified(),
            doc.undo_stack.count(), doc.undo_stack.index(), w.windowTitle(),
            sorted(w.scene.nodes))


def _force(model, field: str, value) -> None:
    """Put a value on the model as a bug or a plugin could, past any assignment validation."""
    try:
        setattr(model, field, value)
    except ValidationError:
        model.__dict__[field] = value


def _undo_still_works(w: MainWindow, before: int) -> None:
    w.document.undo_stack.undo()
    assert w.document.project.network("net").node_by_name("fc").params["out_features"] == before


# -- 1. saves that cannot happen ---------------------------------------------------------------
def test_save_into_a_folder_that_cannot_exist_is_refused_and_keeps_the_edits(env, qtbot):
    w = make_window(qtbot, _mlp())
    _edit(w, 5)
    blocker = env / "not-a-folder"
    blocker.write_text("a regular file where a folder would have to be")
    before = _state(w)
    w.choose_file = lambda caption, filt, save: str(blocker / "model.loom")
    _menu_action(w, "Save As…").trigger()
    assert w.messages and w.messages[-1][0] == "Cannot save"
    assert f"{blocker} is not a folder" in w.messages[-1][1]
    assert "still open and unsaved" in w.messages[-1][1]
    assert "Traceback" not in w.messages[-1][1]
    assert _state(w) == before and w.document.dirty and w.document.path is None
    assert blocker.read_text().startswith("a regular file")
    # Then a good place works, and the history survived the failure.
    w.choose_file = lambda caption, filt, save: str(env / "ok.loom")
    _menu_action(w, "Save As…").trigger()
    assert not w.document.dirty and load(env / "ok.loom").network("net") \
        .node_by_name("fc").params["out_features"] == 5
    _undo_still_works(w, 8)


def test_disk_full_on_save_keeps_the_old_file_and_the_document(env, qtbot, monkeypatch):
    w = make_window(qtbot, _mlp())
    _edit(w, 5)
    w.choose_file = lambda caption, filt, save: str(env / "model.loom")
    assert w.save_as()
    saved_bytes = (env / "model.loom").read_bytes()
    _edit(w, 6)
    before = _state(w)

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", full)
        _menu_action(w, "Save").trigger()
    assert w.messages[-1][0] == "Cannot save"
    assert os.strerror(errno.ENOSPC) in w.messages[-1][1]
    assert _state(w) == before and w.document.dirty
    assert (env / "model.loom").read_bytes() == saved_bytes  # the old file is intact
    assert not list(env.glob(".model.loom.*.tmp"))  # and no temp file was left behind
    _menu_action(w, "Save").trigger()
    assert not w.document.dirty
    assert load(env / "model.loom").network("net").node_by_name("fc").params["out_features"] == 6
    _undo_still_works(w, 5)


def test_lone_surrogate_is_refused_by_every_save_path_and_names_the_value(env, qtbot):
    w = make_window(qtbot, _mlp())
    w.choose_file = lambda caption, filt, save: str(env / "first.loom")
    assert w.save_as()
    first = (env / "first.loom").read_bytes()
    _force(w.document.project.networks[0], "description", "pasted \ud800 text")
    _edit(w, 5)  # a real edit, which also restarts the debounced analysis
    # The debounced analysis, code and figures run on an unwritable project without an exception.
    w.docks["Code"].raise_()
    qtbot.wait(400)
    qtbot.waitUntil(lambda: not w.document.analysis_pending and not w.document.figures_pending,
                    timeout=15000)
    before = _state(w)

    _menu_action(w, "Save").trigger()
    assert w.messages[-1][0] == "Cannot save"
    assert "networks[0].description" in w.messages[-1][1]
    assert (env / "first.loom").read_bytes() == first
    w.choose_file = lambda caption, filt, save: str(env / "other.loom")
    _menu_action(w, "Save As…").trigger()
    assert w.messages[-1][0] == "Cannot save" and not (env / "other.loom").exists()
    _menu_action(w, "Project File…").trigger()
    assert w.messages[-1][0] == "Cannot export" and not (env / "other.loom").exists()
    n = len(w.messages)
    assert w.autosave() is None
    assert w.messages[-1][0] == "Autosave failed" and "networks[0].description" in \
        w.messages[-1][1]
    assert w.autosave() is None and len(w.messages) == n + 1  # told once, not every 30 s
    assert "Autosave failed" in w.statusBar().currentMessage()
    assert not w.recovery_file.path.exists()
    assert _state(w) == before
    assert not list(env.glob(".*.tmp"))
    # Fixing the text makes every path work again; the edit made before is in the file.
    w.document.project.networks[0].description = "pasted text"
    assert w.autosave() == w.recovery_file.path
    _menu_action(w, "Save").trigger()
    assert not w.document.dirty
    assert load(env / "first.loom").network("net").node_by_name("fc").params["out_features"] == 5
    _undo_still_works(w, 8)


def _deep(levels: int) -> dict:
    root = cur = {}
    for _ in range(levels):
        cur["a"] = {}
        cur = cur["a"]
    return root


FAILURES = [
    ValueError("cannot serialise"),
    UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
    RecursionError("maximum recursion depth exceeded"),
    OSError(errno.EACCES, "Permission denied"),
    OSError(errno.EROFS, "Read-only file system"),
]


def test_every_save_path_survives_a_writer_that_raises(env, qtbot, monkeypatch):
    w = make_window(qtbot, _mlp())
    w.document.path = env / "model.loom"  # as if opened from there; nothing on disk yet
    w.choose_file = lambda caption, filt, save: str(env / "as.loom")
    for i, failure in enumerate(FAILURES):
        _edit(w, 5 + i)
        before = _state(w)

        def boom(*_a, _f=failure, **_k):
            raise _f

        with monkeypatch.context() as patch:  # only the writer; the app's env stays set
            patch.setattr(Project, "to_json", boom)
            patch.setattr(Project, "model_dump_json", boom)
            for text in ("Save", "Save As…", "Project File…"):
                n = len(w.messages)
                _menu_action(w, text).trigger()
                assert len(w.messages) == n + 1, (failure, text)
                assert w.messages[-1][0] in ("Cannot save", "Cannot export"), w.messages[-1]
                assert "Traceback" not in w.messages[-1][1]
            assert w.autosave() is None and "Autosave failed" in w.statusBar().currentMessage()
        assert _state(w) == before and w.document.dirty, failure
        assert {p.name for p in env.iterdir()} <= {"data", "ini"}, failure
    assert [t for t, _ in w.messages].count("Autosave failed") == 1  # told once, not each time
    _menu_action(w, "Save").trigger()
    assert not w.document.dirty and (env / "model.loom").exists()
    _undo_still_works(w, 5 + len(FAILURES) - 2)


def test_too_deep_ui_nesting_is_refused_with_its_place(env, qtbot):
    w = make_window(qtbot, _mlp())
    _edit(w, 5)
    w.document.project.ui["notes"] = _deep(900)
    w.choose_file = lambda caption, filt, save: str(env / "deep.loom")
    _menu_action(w, "Save As…").trigger()
    assert w.messages[-1][0] == "Cannot save" and "ui.notes" in w.messages[-1][1]
    assert w.document.dirty and not (env / "deep.loom").exists()
    del w.document.project.ui["notes"]
    _menu_action(w, "Save As…").trigger()
    assert not w.document.dirty and (env / "deep.loom").exists()


# -- 2. a crafted file never runs code -----------------------------------------------------------
SENTINEL = "PWNED"
CALL = f"open(r'{SENTINEL}','w')"
#: Where the issue found text running as code, each with a payload indented to fit the spot it
#: lands in (generated class bodies are indented 4, method bodies 8), so that the source compiled
#: and ran before the fix. "as filed" is the issue's literal text.
PAYLOADS = {
    "network description": f'x"""\n    {CALL}\n    """',
    "network description as filed": f'"""\n{CALL}\n"""',
    "node id \\n": f"fc\n        {CALL}#",
    "node id \\r": f"fc\r        {CALL}#",
    "network name": f"net\n        {CALL}#",
}


def _crafted(where: str) -> dict:
    """A valid project with one payload planted where the issue found code running."""
    p = _mlp()
    lay_out_all(p)
    raw = json.loads(p.to_json())
    net = raw["networks"][0]
    payload = PAYLOADS[where]
    if where.startswith("network description"):
        net["description"] = payload
    elif where.startswith("node id"):
        old = net["nodes"][1]["id"]
        net["nodes"][1]["id"] = payload
        for e in net["edges"]:
            e["src"] = payload if e["src"] == old else e["src"]
            e["dst"] = payload if e["dst"] == old else e["dst"]
        pos = raw["ui"]["positions"]["net"]
        pos[payload] = pos.pop(old)
    else:
        raw["ui"]["positions"][payload] = raw["ui"]["positions"].pop(net["name"])
        net["name"] = payload
    return raw


@pytest.mark.parametrize("where", list(PAYLOADS))
def test_opening_a_crafted_file_never_runs_its_text(env, qtbot, monkeypatch, where):
    monkeypatch.chdir(env)  # the payload's relative path lands here, if it ever runs
    w = make_window(qtbot, _mlp())
    w.docks["Code"].raise_()  # the code view asks for the generated module, as a user's would
    crafted = env / "crafted.loom"
    crafted.write_text(json.dumps(_crafted(where)), encoding="utf-8")
    w.choose_file = lambda caption, filt, save: str(crafted)
    _menu_action(w, "Open…").trigger()
    # Let the debounced analysis, the code view and the figures worker (which builds) all run.
    qtbot.wait(600)
    qtbot.waitUntil(lambda: not w.document.analysis_pending and not w.document.figures_pending,
                    timeout=20000)
    w.document.code()
    qtbot.wait(400)
    assert not (env / SENTINEL).exists(), f"the {where} payload ran"
    if w.document.path == crafted:  # opened: the window shows that project
        assert len(w.scene.nodes) == len(w.document.graph(w.scene.network).net.nodes) == 4
        if w.document.source is not None:  # what the code view shows is inert text
            assert _only_inert(w.document.source.text)
            assert w.code.toPlainText() == w.document.source.text
    else:  # refused: one clear reason, no traceback, the old project still there
        assert w.messages and w.messages[-1][0] == "Cannot open the file"
        assert "crafted.loom" in w.messages[-1][1] and "Traceback" not in w.messages[-1][1]
        assert w.document.project.name == "mlp"


def _only_inert(source: str) -> bool:
    """The payload may appear in the generated source only inside string literals (escaped),
    never as a statement: no top-level or nested call to ``open``."""
    import ast

    tree = ast.parse(source)
    return not any(isinstance(n, ast.Call) and getattr(n.func, "id", "") == "open"
                   for n in ast.walk(tree))


# -- 3. a corrupt file is refused; the open document is untouched -------------------------------
CORRUPT = {
    "truncated JSON": b'{"format": "layerloom", "networks": [ {"name": "net", "nodes": [',
    "empty file": b"",
    "binary garbage": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",
    "not UTF-8": b'{"name": "caf\xe9"}',
    "a JSON list": b"[1, 2, 3]",
    "unknown node type": b'{"networks": [{"name": "net", "nodes": [{"type": "no.such", '
                         b'"name": "a"}]}]}',
    "4301-digit integer": b'{"name": ' + b"9" * 4301 + b"}",
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "networks not objects": b'{"schema_version": 0, "networks": [1, "x"]}',
}


@pytest.mark.parametrize("dirty", [True, False], ids=["dirty", "clean"])
def test_a_corrupt_file_is_refused_and_the_open_document_is_untouched(env, qtbot, dirty):
    w = make_window(qtbot, _mlp())
    w.choose_file = lambda caption, filt, save: str(env / "mine.loom")
    assert w.save_as()
    if dirty:
        _edit(w, 5)
    before = _state(w)
    cases = dict(CORRUPT)
    folder = env / "folder.loom"
    folder.mkdir()
    tried = 0
    for name, data in list(cases.items()) + [("a folder", None), ("missing", None)]:
        target = folder if name == "a folder" else env / f"{name.replace(' ', '_')}.loom"
        if data is not None:
            target.write_bytes(data)
        w.choose_file = lambda caption, filt, save, t=target: str(t)
        n = len(w.messages)
        _menu_action(w, "Open…").trigger()
        assert len(w.messages) == n + 1, f"{name}: opened without a word"
        title, text = w.messages[-1]
        assert title == "Cannot open the file", name
        assert target.name in text and "Traceback" not in text, (name, text)
        assert len(text) < 400, (name, text)
        assert _state(w) == before, f"{name}: the open document changed"
        tried += 1
    assert tried == len(CORRUPT) + 2
    assert w.document.path == env / "mine.loom"
