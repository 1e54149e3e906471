"""A project file is data: no string in it runs code in load, analysis, codegen, build or export.

Every string field of the file model is set to every break-out below, bypassing the loader (fields
are assigned on built Project objects), so codegen is tested on its own: a stricter loader is a
second defence, not the one these tests rely on. Each payload tries to create a sentinel file; the
tests assert it never appears, that generated source parses and passes the last gate, and that it
says what the graph says (docstrings and the NETWORKS keys read back as the project's text).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch

import templates
from compiler import CodegenError, Project, add_network, analyze, build, generate
from compiler.codegen import verify_source
from compiler.export import export_model
from compiler.graph import add_block, ref
from compiler.loading import loads
from compiler.project import EdgeModel, NodeModel, ProjectLoadError

SENTINEL_NAME = "PWNED"


def breakouts(sentinel: Path) -> dict[str, str]:
    """Named payload strings; each, if it ever ran as code, would create ``sentinel``."""
    code = f"open(r'{sentinel}', 'w').close()"
    imp = f"__import__('pathlib').Path(r'{sentinel}').touch()"
    return {
        "docstring-close": f'"""\n{code}\n"""',
        "docstring-close-2": f'x"""\n{imp}\n#',
        "newline-code": f"\n{imp}\n",
        "tag-newline": f"a:b\n{code}\n",
        "lone-cr": f"\r{code}\r",
        "docstring-close-cr": f'"""\r{code}\r"""',
        "u2028": f"\u2028{code}\u2028",
        "u2029": f"\u2029{code}",
        "vt": f"\x0b{code}",
        "ff": f"\x0c{code}",
        "fs": f"\x1c{code}",
        "gs": f"\x1d{code}",
        "rs": f"\x1e{code}",
        "nel": f"\x85{code}",
        "nul": f"a\x00b\n{code}",
        "backslash-end": "C:\\Users\\",
        "continuation": f"x\\\n{code}",
        "quote-end": 'the "best" net"',
        "tag-end": "text  # @x:y",
        "nested-single": f"'''\n{code}\n'''",
        "nested-escaped": f'\\"\\"\\"\n{code}',
        "bidi": f"\u202e{code}\u202c",
        "long": "x" * 100_000,
    }


# -- projects and fields ----------------------------------------------------------------------


def block_project() -> Project:
    """A network using one block twice (a lifted width): every block field reaches the source.

    Two branches, so the block is a class (a plain chain would be an nn.Sequential)."""
    p = Project(name="with-block", description="uses a block")
    b = add_block(p, "Layer", {"width": 8})
    x = b.add("io.block_input", "x")
    fc = b.chain(x, ("linear.linear", {"out_features": ref("width")}, "fc"))[-1]
    fc_b = b.chain(x, ("linear.linear", {"out_features": ref("width")}, "fc_b"))[-1]
    add = b.add("merge.add", "sum")
    b.connect(fc, add)
    b.connect(fc_b, add)
    b.chain(add, ("activation.relu", {}, "act"), ("io.block_output", {}, "y"))
    g = add_network(p, "net")
    g.chain(g.add("io.input", "features", shape=["N", 6]),
            g.add("block.block", "stage1", block="Layer", args={"width": 5}),
            g.add("block.block", "stage2", block="Layer", args={"width": 4}),
            ("io.output", {}, "out"))
    return p


def _rename_node(graph, node, new_id: str) -> None:
    old = node.id
    node.id = new_id
    for e in graph.edges:
        if e.src == old:
            e.src = new_id
        if e.dst == old:
            e.dst = new_id


def _rename_block(p: Project, value: str) -> None:
    old = p.blocks[0].name
    p.blocks[0].name = value
    for g in [*p.networks, *p.blocks]:
        for n in g.nodes:
            if n.type == "block.block" and n.params.get("block") == old:
                n.params["block"] = value


def _set_training(p: Project, field: str, value: str) -> None:
    if field == "options":
        p.training.dataset_options = {value: value}
    elif field == "hyper":
        p.training.hyper = {"note": value}
    else:
        setattr(p.training, field, value)


Setter = Callable[[Project, str], None]
FIELDS: dict[str, tuple[Callable[[], Project], Setter]] = {
    "project.name": (lambda: templates.build("mlp-digits"), lambda p, v: setattr(p, "name", v)),
    "project.description": (lambda: templates.build("mlp-digits"),
                            lambda p, v: setattr(p, "description", v)),
    "network.name": (lambda: templates.build("mlp-digits"),
                     lambda p, v: setattr(p.networks[0], "name", v)),
    "network.description": (lambda: templates.build("mlp-digits"),
                            lambda p, v: setattr(p.networks[0], "description", v)),
    "node.id": (lambda: templates.build("mlp-digits"),
                lambda p, v: _rename_node(p.networks[0], p.networks[0].nodes[1], v)),
    "node.name": (lambda: templates.build("mlp-digits"),
                  lambda p, v: setattr(p.networks[0].nodes[1], "name", v)),
    "input.name": (lambda: templates.build("mlp-digits"),
                   lambda p, v: setattr(p.networks[0].nodes[0], "name", v)),
    "edge.src_port": (lambda: templates.build("mlp-digits"),
                      lambda p, v: setattr(p.networks[0].edges[0], "src_port", v)),
    "edge.dst_port": (lambda: templates.build("mlp-digits"),
                      lambda p, v: setattr(p.networks[0].edges[0], "dst_port", v)),
    "training.recipe": (lambda: templates.build("mlp-digits"),
                        lambda p, v: _set_training(p, "recipe", v)),
    "training.dataset": (lambda: templates.build("mlp-digits"),
                         lambda p, v: _set_training(p, "dataset", v)),
    "training.options": (lambda: templates.build("mlp-digits"),
                         lambda p, v: _set_training(p, "options", v)),
    "training.hyper": (lambda: templates.build("mlp-digits"),
                       lambda p, v: _set_training(p, "hyper", v)),
    "ui.key": (lambda: templates.build("mlp-digits"), lambda p, v: p.ui.update({v: {v: v}})),
    "block.name": (block_project, _rename_block),
    "block.description": (block_project, lambda p, v: setattr(p.blocks[0], "description", v)),
    "block.param.description": (block_project,
                                lambda p, v: setattr(p.blocks[0].params[0], "description", v)),
    "block.node.id": (block_project,
                      lambda p, v: _rename_node(p.blocks[0], p.blocks[0].nodes[1], v)),
    "block.node.name": (block_project, lambda p, v: setattr(p.blocks[0].nodes[1], "name", v)),
    "block.output.name": (block_project,
                          lambda p, v: setattr(p.blocks[0].nodes[-1], "name", v)),
}

COUNTS = {"tried": 0, "built": 0, "refused": 0}


def _expected_doc(text: str) -> str:
    """What a class docstring must read back as: the text, stripped at both ends and of trailing
    spaces, continuation lines indented as the class body."""
    lines = [line.rstrip(" ") for line in text.strip().split("\n")]
    while len(lines) > 1 and not lines[-1]:
        lines.pop()
    return "\n".join([lines[0]] + ["    " + line if line else "" for line in lines[1:]])


def _class_docs(tree: ast.Module) -> list[str | None]:
    return [ast.get_docstring(s, clean=False) for s in tree.body if isinstance(s, ast.ClassDef)]


def _networks_keys(tree: ast.Module) -> list[str]:
    for s in tree.body:
        if isinstance(s, ast.AnnAssign) and getattr(s.target, "id", "") == "NETWORKS":
            return [ast.literal_eval(k) for k in s.value.keys]  # type: ignore[union-attr]
    raise AssertionError("no NETWORKS table")


def _check_says_what_graph_says(field: str, p: Project, payload: str, tree: ast.Module) -> None:
    if field == "network.name":
        assert _networks_keys(tree) == [payload]
    docs = _class_docs(tree)
    if field == "network.description" and payload.strip():
        assert _expected_doc(payload) in docs
    if field == "block.description" and payload.strip():
        assert _expected_doc(payload) in docs


def run_pipeline(field: str, name: str, payload: str, tmp: Path) -> None:
    make, setter = FIELDS[field]
    p = make()
    setter(p, payload)
    sentinel = tmp / SENTINEL_NAME
    COUNTS["tried"] += 1
    # load: the stricter loader may refuse the file, but only with a ProjectLoadError
    try:
        text = p.model_dump_json()
    except Exception:  # a lone surrogate cannot even be serialised: nothing to load
        text = None
    if text is not None:
        try:
            loads(text)
        except ProjectLoadError:
            pass
    analysis = analyze(p)
    try:
        src = generate(analysis)
    except CodegenError as err:
        assert not analysis.ok, f"{field}/{name}: codegen refused a project analysis passed: {err}"
        COUNTS["refused"] += 1
        assert not sentinel.exists()
        return
    tree = ast.parse(src.text)
    verify_source(src.text, src.node_lines)
    _check_says_what_graph_says(field, p, payload, tree)
    built = build(src)
    for net_cls in built.networks.values():
        net_cls()
    COUNTS["built"] += 1
    assert not sentinel.exists(), f"{field}/{name}: the payload ran"


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_no_payload_runs_in_any_field(field, tmp_path):
    for name, payload in breakouts(tmp_path / SENTINEL_NAME).items():
        run_pipeline(field, name, payload, tmp_path)
    assert not (tmp_path / SENTINEL_NAME).exists()


def test_payload_counts_cover_every_field_and_breakout():
    """Runs after the field tests (same module, file order): every combination was tried."""
    n = len(FIELDS) * len(breakouts(Path("/x")))
    if COUNTS["tried"] < n:
        pytest.skip("run with the per-field tests to count")
    print(f"\ninjection payloads tried: {COUNTS['tried']}, built and executed: {COUNTS['built']}, "
          f"refused as invalid graphs: {COUNTS['refused']}, payloads that ran: 0")
    assert COUNTS["built"] > n // 2  # most payloads must reach exec, not just be refused


TRAIN_CASES = {"docstring-close", "lone-cr", "u2028", "nul", "backslash-end", "quote-end"}


def test_training_strings_become_literals_in_train_script(tmp_path):
    """dataset options and hyper values (free text) land in CONFIG as literals that read back."""
    from training.export import train_script

    for name, payload in breakouts(tmp_path / SENTINEL_NAME).items():
        if name not in TRAIN_CASES:  # train_script prepares the data plan: ~0.3 s a case
            continue
        p = templates.build("mlp-digits")
        p.name = payload
        p.training.dataset = "csv"  # a loader that reads its options: they stay in CONFIG
        p.training.dataset_options = {payload: [payload, 1.5, None, True]}
        try:
            script = train_script(p)
        except CodegenError:
            continue
        except (ValueError, KeyError):  # the dataset rejects an unknown option: fine, not run
            continue
        tree = ast.parse(script)
        config = next(s for s in tree.body if isinstance(s, ast.Assign)
                      and getattr(s.targets[0], "id", "") == "CONFIG")
        value = ast.literal_eval(config.value)
        assert value["project"] == payload
        assert value["dataset_options"] == {payload: [payload, 1.5, None, True]}
        assert ast.get_docstring(tree) is not None
        assert not (tmp_path / SENTINEL_NAME).exists()


def test_json_words_inside_names_survive_train_script():
    """The old JSON->Python string surgery exported `untrue-nullable` as `unTrue-Noneable`."""
    from training.export import train_script

    p = templates.build("mlp-digits")
    p.name = "untrue-nullable falsehood"
    script = train_script(p)
    tree = ast.parse(script)
    config = next(s for s in tree.body if isinstance(s, ast.Assign))
    assert ast.literal_eval(config.value)["project"] == "untrue-nullable falsehood"  # type: ignore


SUBPROCESS_CASES = ["docstring-close", "lone-cr", "tag-newline"]  # a subprocess is ~3 s

#: One fresh interpreter imports every case's exported model.py in turn (each from its own folder,
#: under the plain name ``model``) and prints one JSON line per case: the output shape or the error.
_FRESH_IMPORTS = """\
import json, sys, traceback
import torch
for case, folder, network in json.loads(sys.argv[1]):
    sys.path.insert(0, folder)
    sys.modules.pop("model", None)
    try:
        import model
        shape, error = list(model.NETWORKS[network]()(torch.ones(2, 6)).shape), None
    except Exception:
        shape, error = None, traceback.format_exc()
    sys.path.remove(folder)
    print(json.dumps({"case": case, "shape": shape, "error": error}))
"""


@pytest.fixture(scope="module")
def fresh_imports(tmp_path_factory) -> dict[str, dict]:
    """Each subprocess case exported to its own folder (its own sentinel beside it), then all
    imported by one fresh interpreter: one torch start-up instead of one per case."""
    root = tmp_path_factory.mktemp("fresh-imports")
    jobs, cases = [], {}
    for case in SUBPROCESS_CASES:
        sentinel = root / case / SENTINEL_NAME
        payload = breakouts(sentinel)[case]
        p = block_project()
        p.networks[0].description = payload
        p.blocks[0].description = payload
        _rename_node(p.networks[0], p.networks[0].nodes[1], payload)
        p.networks[0].nodes[2].name = payload
        _rename_block(p, "Layer" + payload[:60])  # a block node's param is at most 100 chars
        out = root / case / "out"
        out.mkdir(parents=True)
        path = export_model(p, out)
        jobs.append((case, str(out), p.networks[0].name))
        cases[case] = {"text": path.read_text(), "sentinel": sentinel}
    res = subprocess.run([sys.executable, "-c", _FRESH_IMPORTS, json.dumps(jobs)],
                         capture_output=True, text=True, cwd=root, timeout=120)
    for line in res.stdout.splitlines():
        record = json.loads(line)
        cases[record["case"]]["result"] = record
    for case in cases.values():
        case["process"] = res
    return cases


@pytest.mark.timeout(180)
@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_export_then_fresh_import_runs_nothing(case, fresh_imports):
    exported = fresh_imports[case]
    text = exported["text"]
    assert "\r" not in text and "\u2028" not in text
    res = exported["process"]
    assert res.returncode == 0, res.stderr
    assert exported["result"]["error"] is None, exported["result"]["error"]
    assert tuple(exported["result"]["shape"]) == (2, 4)
    assert not exported["sentinel"].exists()


def test_gate_refuses_foreign_statements():
    good = generate(templates.build("mlp-digits"))
    verify_source(good.text, good.node_lines)
    for bad in [good.text + "\nprint(1)\n",
                good.text + "\nimport os\n",
                good.text.replace('"""The', '"""The\x0b', 1),
                good.text.replace("    def __init__", "    __import__('os')\n    def __init__", 1),
                good.text + "\nclass X(nn.Module):\n    open('f')\n",
                good.text + "\n@staticmethod\ndef f():\n    pass\n",
                good.text + "\ndef g(x=open('f')):\n    pass\n",
                good.text + "\nx = (\n"]:
        with pytest.raises(CodegenError, match="bug in Layerloom"):
            verify_source(bad, good.node_lines)
    with pytest.raises(CodegenError, match="bug"):
        build(type(good)(good.text + "\nprint(1)\n", good.network_classes, good.block_classes))


def test_gate_names_the_node_of_a_refused_line():
    src = generate(templates.build("mlp-digits"))
    (scope, node_id), lines = next(iter(src.node_lines.items()))
    text = src.text.split("\n")
    text[lines[0] - 1] += "\x0c"
    with pytest.raises(CodegenError, match=f"node '{node_id}'"):
        verify_source("\n".join(text), src.node_lines)


def test_module_attribute_names_and_keyword_params_still_run():
    """Nodes named after nn.Module attributes, block params named like keywords/builtins/classes."""
    p = Project(name="attrs")
    b = add_block(p, "Layer", {"lambda": 8, "range": 3, "Layer": 2})
    b.chain(b.add("io.block_input", "x"),
            ("linear.linear", {"out_features": ref("lambda")}, "training"),
            ("linear.linear", {"out_features": ref("range")}, "to"),
            ("linear.linear", {"out_features": ref("Layer")}, "match"),
            ("io.block_output", {}, "y"))
    g = add_network(p, "net")
    prev = g.add("io.input", "x", shape=["N", 4])
    for n in ["to", "training", "parameters", "train", "state_dict", "cuda", "zero_grad",
              "forward", "modules", "type", "Net", "Layer"]:
        node = g.add("linear.linear", n, out_features=4)
        g.connect(prev, node)
        prev = node
    for i, (lam, rng, lay) in enumerate([(5, 6, 7), (3, 2, 4)]):
        node = g.add("block.block", f"stage{i}", block="Layer",
                     args={"lambda": lam, "range": rng, "Layer": lay})
        g.connect(prev, node)
        prev = node
    g.chain(prev, ("io.output", {}, "out"))
    model = build(p).instantiate()
    model.train()
    model.to("cpu")
    assert model.training is True
    assert model(torch.ones(2, 4)).shape == (2, 4)
    assert len(model.state_dict()) == 2 * 12 + 2 * 2 * 3


def wide_merge_project(n: int) -> Project:
    """n ReLUs summed by an Add and averaged by a Mean, the two concatenated."""
    p = Project(name="wide")
    g = add_network(p, "net")
    inp = g.add("io.input", "x", shape=["N", 3])
    add = g.add("merge.add", "add")
    mean = g.add("merge.mean", "mean")
    for i in range(n):
        r = g.add("activation.relu", f"r{i}")
        g.connect(inp, r)
        g.connect(r, add)
        g.connect(r, mean)
    cat = g.add("merge.concat", "cat", dim=1)
    g.connect(add, cat)
    g.connect(mean, cat)
    g.chain(cat, ("io.output", {}, "out"))
    return p


def test_wide_merges_are_written_flat():
    src = generate(wide_merge_project(200))
    assert "add = sum([" in src.text and "mean = sum([" in src.text  # a wide merge keeps its name
    out = build(src).instantiate()(torch.ones(2, 3))
    assert out.shape == (2, 6)
    assert torch.equal(out[:, :3], torch.full((2, 3), 200.0))
    assert torch.allclose(out[:, 3:], torch.ones(2, 3))
    small = generate(templates.build("resnet18-small")).text
    assert "sum([" not in small and " + " in small  # small fan-in stays `a + b`


@pytest.mark.slow
def test_three_thousand_input_add_compiles_without_recursion():
    """3,000 terms: where a chained `a + b + ...` overflows Python's compiler (RecursionError)."""
    p = Project(name="wide")
    g = add_network(p, "net")
    inp = g.add("io.input", "x", shape=["N", 2])
    add = g.add("merge.add", "add")
    # Wires are appended directly: Graph.connect checks for cycles on every call, which is
    # quadratic at this size and would make the test about the API, not the compiler.
    for i in range(3000):
        g.net.nodes.append(NodeModel(id=f"r{i}", type="activation.relu", name=f"r{i}"))
        g.net.edges += [EdgeModel(src=inp, src_port="y", dst=f"r{i}", dst_port="x"),
                        EdgeModel(src=f"r{i}", src_port="y", dst=add, dst_port="x")]
    g.chain(add, ("io.output", {}, "out"))
    out = build(p).instantiate()(torch.ones(1, 2))
    assert torch.equal(out, torch.full((1, 2), 3000.0))
