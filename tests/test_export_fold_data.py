"""The data side of train.py is decided at export (training.fold's facts): dataset options become
their checked values, a fitting of the data that changes nothing is left out, and the one-line
docstrings; each is proven with the app's own code, and each falls back to the general code."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest

import templates
from compiler import build
from training.data import DataError, load
from training.export import TrainExportError, export_project, folded_script, train_script
from training.fold import NO_OP

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _script(name: str = "mlp-digits", dataset: str | None = None, **options) -> str:
    project = templates.build(name)
    if dataset:
        project.training.dataset = dataset
    project.training.dataset_options = options
    return train_script(project)


@pytest.mark.timeout(60)
def test_dataset_options_are_written_in_as_their_checked_values():
    text = _script(val_fraction=0.3)
    assert "split_rows((x, y), 0.3, seed)" in text
    for gone in ("option_number", "class DataError", "_val(", "importlib"):
        assert gone not in text, gone  # nothing else of the digits loader uses them
    assert "split_rows((x, y), 0.2, seed)" in _script(), "the loader's default when unset"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bad, said", [(2.0, "out of range"), ("lots", "'lots'")])
def test_a_bad_dataset_option_fails_the_export_with_the_loaders_message(bad, said, tmp_path):
    project = templates.build("mlp-digits")
    project.training.dataset_options = {"val_fraction": bad}
    with pytest.raises(DataError) as app:  # what the app says when it loads the data
        load("digits-flat", project.training.dataset_options)
    with pytest.raises(TrainExportError, match="val_fraction") as err:
        export_project(project, tmp_path)
    assert said in str(err.value) and "a number from 0 to 0.95" in str(err.value)
    assert app.value.message in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"], "no broken train.py"


@pytest.mark.timeout(60)
def test_a_fitting_that_changes_nothing_is_left_out_and_one_that_reshapes_stays():
    project = templates.build("mlp-digits")  # digits-flat gives [N, 64], the Input takes [N, 64]
    text, fixed = folded_script(project)
    assert fixed["recipe.adapt"] is NO_OP and fixed["data.kind"] == "tensors"
    for gone in ("def adapt", "def fit_input", "recipe.adapt(", 'kind == "tensors"', "INPUTS"):
        assert gone not in text, gone
    # digits gives [N, 1, 8, 8]: the app reshapes it for the [N, 64] Input, and so does train.py
    reshaped = _script(dataset="digits")
    assert "def fit_input" in reshaped and "recipe.adapt(INPUTS)" in reshaped
    assert "which the recipe fits the data to" in reshaped


@pytest.mark.timeout(60)
def test_graph_data_keep_their_kind_test_and_the_recipes_own_adapt():
    text, fixed = folded_script(templates.build("gcn-karate"))
    assert "data.kind" not in fixed and "recipe.adapt" not in fixed
    assert 'data.kind == "tensors"' in text and "class OneGraph" in text


@pytest.mark.timeout(60)
def test_file_datasets_keep_their_options_in_config(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("a,b,label\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(20)))
    text = _script(dataset="csv", path=str(f))
    config = ast.literal_eval(next(s for s in ast.parse(text).body
                                   if isinstance(s, ast.Assign)).value)
    assert config["dataset_options"] == {"path": str(f)}
    assert "split_rows((x, y), 0.2, seed)" in text, "the checked options are folded even so"


@pytest.mark.timeout(60)
def test_every_docstring_of_the_export_is_one_line():
    tree = ast.parse(_script())
    docs = [(n.name, ast.get_docstring(n, clean=False)) for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(n)]
    assert len(docs) > 15 and all("\n" not in d for _, d in docs), [n for n, d in docs if "\n" in d]
    assert ("autocast", "Mixed precision when asked, else one shared no-op.") in docs


SHIPPED = ("digits", "iris", "wine", "breast_cancer", "diabetes")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_data_files_equal_scikit_learns_copies(name):
    """assets/data holds scikit-learn's arrays as they are (saved once), read without pickle."""
    datasets = pytest.importorskip("sklearn.datasets")
    import numpy as np

    from training.data.builtin import shipped

    ref, ours = getattr(datasets, f"load_{name}")(), shipped(name)
    assert np.array_equal(ours["images" if name == "digits" else "data"],
                          ref.images if name == "digits" else ref.data)
    assert np.array_equal(ours["target"], ref.target)
    if name not in ("digits", "diabetes"):  # the tables with class names
        assert list(ours["target_names"]) == list(ref.target_names)


@pytest.mark.timeout(60)
def test_the_shipped_sets_load_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # an import of it would fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    for name in (*SHIPPED, "digits-flat"):
        data = load(name, {})
        assert data.size("train") + data.size("val") in (1797, 150, 178, 569, 442), name
    assert load("iris").info["labels"] == ["setosa", "versicolor", "virginica"]


@pytest.mark.timeout(60)
def test_a_missing_data_file_is_a_data_error_naming_it(monkeypatch, tmp_path):
    from training.data import builtin

    monkeypatch.setattr(builtin, "DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="digits.npz") as err:
        load("digits-flat", {})
    assert "reinstall" in err.value.expected


@pytest.mark.timeout(120)
def test_train_py_of_digits_trains_with_torch_and_numpy_alone(tmp_path):
    """The export writes digits.npz beside train.py (and only the files it reads), and the
    script trains with scikit-learn unimportable, from another working folder."""
    written = export_project(templates.build("mlp-digits"), tmp_path / "out")
    assert sorted(p.name for p in written if p.suffix == ".npz") == ["digits.npz"]
    assert "DATA_DIR = os.path.dirname(os.path.abspath(__file__))" in \
        (tmp_path / "out" / "train.py").read_text()
    hide = ("import runpy, sys; sys.modules['sklearn'] = None; sys.path.insert(0, 'out'); "
            "sys.argv = ['train.py', '--steps', '20', '--out', 'ck']; "
            "runpy.run_path('out/train.py', run_name='__main__')")
    run = subprocess.run([sys.executable, "-I", "-c", hide], cwd=tmp_path, capture_output=True,
                         text=True, env=ENV, timeout=100)
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"finished": 20' in run.stdout
    iris = templates.build("mlp-digits")
    iris.training.dataset = "iris"
    assert "iris.npz" in {p.name for p in export_project(iris, tmp_path / "iris")}
    named = templates.build("mlp-digits")
    named.name = "iris"  # the project's name in CONFIG and the docstring names no data file
    assert [p.name for p in export_project(named, tmp_path / "named") if p.suffix == ".npz"] \
        == ["digits.npz"]
    shapes = templates.build("mlp-digits")
    shapes.training.dataset = "shapes32"  # generated: no data file
    assert not [p for p in export_project(shapes, tmp_path / "shapes") if p.suffix == ".npz"]


@pytest.mark.timeout(60)
def test_sample_code_goes_only_with_recipes_that_make_samples():
    """A classifier shows no samples: its train.py has no sampling hook and no loop for one; a
    language model's keeps both (it prints its generated text)."""
    classifier, lm = _script(), _script("gpt-small")
    for gone in ("def sample(", "hooks.sample", "recipe.samples", 'hasattr(recipe, "samples")'):
        assert gone not in classifier, gone
    for kept in ("def sample(", "hooks.sample", "def samples("):
        assert kept in lm, kept


@pytest.mark.timeout(60)
def test_first_of_one_output_is_the_output_itself_and_several_keep_it():
    """``first`` (the first of several outputs) goes when every network returns one tensor: the
    forward that model.py writes returns that tensor as it is, which the test runs to see."""
    project = templates.build("mlp-digits")
    text, fixed = folded_script(project)
    assert "def first(" not in text and not re.search(r"\bfirst\(", text)
    assert 'logits = self.nets["net"](x)' in text
    assert 'logits = self.nets["net"](x).float()' in text, "a method on the call stays on it"
    out = build(project).instantiate("net")(load("digits-flat").train[0][:3])
    assert type(out).__name__ == "Tensor", "the fact's proof: one output is returned bare"
    _, vae_fixed = folded_script(templates.build("vae-digits"))  # its net returns 3 tensors
    assert "first" not in vae_fixed, "several outputs: a recipe's first() calls stay"


@pytest.mark.timeout(30)
def test_fold_identity_keeps_what_the_call_bound():
    from training.fold import IDENTITY, fold

    src = ("def f(a, b):\n    x = first(a + b).float()\n    y = first(net(a))[0]\n"
           "    return first(*a), first(a, b), first(a if b else b)\n")
    out = fold(src, {"first": IDENTITY})
    assert "x = (a + b).float()" in out and "y = net(a)[0]" in out
    assert "first(*a), first(a, b), (a if b else b)" in out
    assert ast.parse(out)


@pytest.mark.timeout(60)
def test_config_is_laid_out_a_topic_a_line_and_reads_back_equal():
    text, _ = folded_script(templates.build("mlp-digits"))
    tree = ast.parse(text)
    node = next(s for s in tree.body if isinstance(s, ast.Assign)
                and getattr(s.targets[0], "id", "") == "CONFIG")
    config = ast.literal_eval(node.value)
    lines = text.splitlines()[node.lineno:node.end_lineno - 1]
    assert lines[0].strip() == \
        '"project": "mlp-digits", "dataset": "digits-flat", "networks": ["net"],'
    assert any(line.strip().startswith('"lr": 0.001') for line in lines), lines
    assert all(len(line) <= 100 for line in lines)
    assert len(lines) < len(config), "several short settings share a line"
    assert config["lr"] == 1e-3 and config["batch_size"] == 64 and config["optimize"] is False


@pytest.mark.timeout(30)
def test_fold_returns_decides_the_tests_of_a_call_with_read_only_arguments():
    from training.fold import Returns, fold

    src = ("def f(nets, hp):\n    if conv(nets):\n        a()\n    if conv(nets) and b():\n"
           "        c()\n    if conv(make()):\n        d()\n    return 1\n")
    out = fold(src, {"conv": Returns(False)})
    assert "a()" not in out and "c()" not in out and "b()" not in out
    assert "conv(make())" in out, "a call among its arguments may do something: it stays"
    kept = fold(src, {"conv": Returns(True)})
    assert "    a()" in kept and "if b():" in kept and "conv(nets)" not in kept


@pytest.mark.timeout(120)
def test_the_optimised_modes_conv_kernels_go_from_a_dense_nets_script_and_stay_in_a_conv_nets():
    """``convolutional`` is answered at export for the recipe's networks (made on the meta
    device): an MLP's train.py has no channels-last loop and no CPU bf16 probe (its amp under
    --optimize is the app's: bf16 on a bf16 GPU, else off); a ResNet's keeps both."""
    from torch import nn

    from training.engine import convolutional
    from training.fold import Returns

    mlp, facts = folded_script(templates.build("mlp-digits"))
    for gone in ("def convolutional", "convolutional(", "cpu_has_fast_bf16", "channels_last"):
        assert gone not in mlp, gone
    assert 'recipe.hp["amp"] = "bf16" if cuda and torch.cuda.is_bf16_supported() else "off"' in mlp
    assert isinstance(facts["convolutional"], Returns) and facts["convolutional"].value is False
    res, res_facts = folded_script(templates.build("resnet18-small"))
    assert res_facts["convolutional"].value is True
    assert "def cpu_has_fast_bf16" in res and "memory_format=torch.channels_last" in res
    assert "convolutional(" not in res, "a test it decided True keeps its branch, not the call"
    net = build(templates.build("resnet18-small")).instantiate("net")
    assert convolutional({"net": net}) and not convolutional({"net": nn.Linear(2, 2)})


@pytest.mark.timeout(120)
def test_a_script_names_a_sample_folder_only_when_its_recipe_makes_samples():
    mlp = _script()
    assert "sample_dir" not in mlp and "samples(" not in mlp
    gan = train_script(templates.build("gan-dcgan-small"))
    assert 'hasattr(recipe, "samples")' not in gan, "the recipe makes samples: no test of it"
    assert 'hooks.sample_dir = os.path.join(args.out, "samples")' in gan
    assert "recipe.samples(step, hooks.sample_dir)" in gan


@pytest.mark.timeout(30)
def test_fold_returns_of_a_method_shortens_a_while_test():
    """``hooks.should_stop`` is train.py's base Hooks' answer (False), so its loop reads
    ``while step < total:``; a ``while`` whose test stays open is left as written."""
    from training.fold import Returns, fold

    src = ("def f(hooks, total):\n    step = 0\n"
           "    while step < total and not hooks.should_stop(step):\n        step += 1\n"
           "    while step < total and not hooks.other(step):\n        step += 1\n"
           "    return step\n")
    out = fold(src, {"hooks.should_stop": Returns(False)})
    assert "    while step < total:\n" in out and "should_stop" not in out
    assert "not hooks.other(step)" in out
    assert fold(src, {"hooks.should_stop": Returns(True)}) == src, "a loop never run stays"


@pytest.mark.timeout(60)
def test_a_recipe_without_super_calls_is_one_class_and_main_makes_model_networks(tmp_path):
    """The base recipe's kept members go into the recipe's own class, which the loop's
    annotations and main name; model.py is imported at the top (its own section, as isort puts
    a first-party module) and only a graph recipe is handed model.Graph."""
    from training.export import _rename

    mlp = folded_script(templates.build("mlp-digits"))[0]
    assert "class Recipe" not in mlp and "class ClassificationRecipe:" in mlp
    assert "def fit(recipe: ClassificationRecipe," in mlp and "RECIPE" not in mlp
    assert "recipe = ClassificationRecipe(nets, data, hp, device)" in mlp
    assert "\n\nimport model\n\n" in mlp and "def load_networks" not in mlp
    assert 'model.NETWORKS[role]().to(device) for role in CONFIG["networks"]' in mlp
    assert "graph_cls" not in mlp and "model.Graph" not in mlp and "should_stop" not in mlp
    gnn = folded_script(templates.build("gcn-graphs"))[0]
    assert "    recipe.graph_cls = model.Graph\n" in gnn and "hasattr(recipe" not in gnn
    assert "graph_cls: Any = None" in gnn
    # the rename touches names only: never an attribute, a string or a comment
    src = 'x: Recipe = Recipe()  # Recipe\ny = obj.Recipe, "Recipe"\n'
    assert _rename(src, {"Recipe": "R2"}) == 'x: R2 = R2()  # Recipe\ny = obj.Recipe, "Recipe"\n'


@pytest.mark.timeout(60)
def test_main_calls_the_datasets_loader_and_wrapped_signatures_join_when_they_fit(tmp_path):
    """No load_data wrapper: main calls the dataset table's own loader, with CONFIG's options
    only when the loader still reads them; a signature the engine wrapped for ``Recipe`` is one
    line when the recipe's name fits it, as ruff format writes it."""
    from training.export import _join_signatures

    mlp = folded_script(templates.build("mlp-digits"))[0]
    assert '    data = digits({}, hp["seed"], flat=True)\n' in mlp and "load_data" not in mlp
    assert "def run_eval(recipe: ClassificationRecipe, step: int, sampler: Sampler, hooks: Hooks)" \
        " -> dict:\n" in mlp
    assert all(len(line) <= 100 for line in mlp.split("\n"))
    f = tmp_path / "d.csv"
    f.write_text("a,b,label\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(20)))
    csv = _script(dataset="csv", path=str(f))
    assert '    data = csv_data(CONFIG["dataset_options"], hp["seed"])\n' in csv
    wrapped = "def f(a: int,\n      b: int) -> int:\n    return a\n"
    assert _join_signatures(wrapped) == "def f(a: int, b: int) -> int:\n    return a\n"
    assert _join_signatures(wrapped, width=20) == wrapped, "too long for one line: as written"
    commented = "def f(a: int,  # the first\n      b: int) -> int:\n    return a\n"
    assert _join_signatures(commented) == commented
    opened = "def f(\n    a: int, b: int\n) -> int:\n    return a\n"
    assert _join_signatures(opened) == "def f(a: int, b: int) -> int:\n    return a\n"
    trailing = "def f(\n    a: int,\n    b: int,\n) -> int:\n    return a\n"
    assert _join_signatures(trailing) == "def f(a: int, b: int) -> int:\n    return a\n"


def _single_quoted(text: str) -> list[str]:
    """The string tokens of a script written in single quotes (ruff format writes double)."""
    import io
    import tokenize

    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [t.string for t in tokens if t.type == tokenize.STRING
            and t.string.lstrip("rbuRBUfF")[:1] == "'" and '"' not in t.string]


@pytest.mark.timeout(60)
def test_loader_calls_and_literals_keep_the_files_one_quote_style():
    """The dataset table's fixed arguments (``seq_task(o, s, "reverse")``) reach main in double
    quotes, as every other string of the file: ``ast.unparse`` alone writes ``'reverse'``."""
    from training.export import py_literal

    seq = _script("transformer-small")
    assert '    data = seq_task({}, hp["seed"], "reverse")\n' in seq
    table = _script(dataset="iris")
    assert 'tabular({}, hp["seed"], "iris")' in table
    for text in (seq, table, _script()):
        assert _single_quoted(text) == []
    assert py_literal(float("inf")) == 'float("inf")' and py_literal("it's") == '"it\'s"'
    assert py_literal('say "hi"') == "'say \"hi\"'", "double quotes inside: repr's own choice"
