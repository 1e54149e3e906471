"""Export the training side of a project: ``train.py`` (+ ``model.py`` and a README).

``train.py`` is assembled from Layerloom's own files, copied verbatim: the engine, the dataset
loaders, the project's recipe and the entry point, behind the run's config. Only the lines between
``# layerloom: local imports`` markers (imports between those files, which the concatenation makes
unnecessary) and repeated ``from __future__`` lines are left out, so the code that trains in the app
is the code the user takes away. It needs torch (plus numpy for .npz/.npy data and scikit-learn
for the sklearn datasets).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from compiler import Project, generate
from compiler.codegen import data_literal, escape_text, verify_source
from compiler.project import atomic_write_text

from . import recipes
from .plan import prepare

HERE = Path(__file__).resolve().parent
SECTIONS = ["engine.py", "data/common.py", "data/builtin.py", "data/files.py"]
_LOCAL = re.compile(r"^# layerloom: local imports.*?^# layerloom: end local imports\n",
                    re.M | re.S)


def strip_section(text: str) -> str:
    text = _LOCAL.sub("", text)
    return text.replace("from __future__ import annotations\n", "")


def train_script(project: Project) -> str:
    plan = prepare(project, load_data=False)
    hp = plan.hyper.model_dump()
    config = {"project": project.name, "recipe": plan.recipe_cls.name,
              "dataset": project.training.dataset,
              "dataset_options": project.training.dataset_options, "networks": plan.roles,
              "input_specs": {k: [[list(d), t] for d, t in v] for k, v in plan.input_specs.items()},
              "hyper": hp}
    recipe_file = Path(recipes.module(plan.recipe_cls.name).__file__)
    # Project text goes into the docstring only through escape_text, into CONFIG only as a
    # Python literal (pprint/repr): never as raw text, never via JSON string surgery.
    parts = [f'"""Train \'{escape_text(project.name)}\' ({escape_text(plan.recipe_cls.name)} on '
             f'{escape_text(project.training.dataset)}) - exported by Layerloom.\n\n'
             "Run: python train.py [--steps N | --epochs N] [--device cpu|cuda] [--out DIR]\n"
             "Multi-process: torchrun --nproc_per_node=2 train.py  (gloo on CPU, NCCL on CUDA)\n"
             "Needs model.py beside it.\n\"\"\"\n",
             "from __future__ import annotations\n",
             # (JSON round trip first: the same plain values the app's config holds)
             "CONFIG = " + data_literal(json.loads(json.dumps(config))) + "\n"]
    for name in [*SECTIONS, f"recipes/{recipe_file.name}"]:
        parts.append(f"\n# {'-' * 30} training/{name} {'-' * 30}\n")
        parts.append(strip_section((HERE / name).read_text(encoding="utf-8")))
    parts.append(f"\n# {'-' * 30} entry point {'-' * 30}\n")
    parts.append("DATASETS = {**BUILTIN, **FILES}\n")
    parts.append(strip_section((HERE / "standalone.py").read_text(encoding="utf-8")))
    return "\n".join(parts)


README = """# {name}: exported from Layerloom

* `model.py` - the network(s), plain PyTorch (`NETWORKS` maps names to classes).
* `train.py` - the {recipe} recipe, the `{dataset}` data loader and the training settings
  (`CONFIG` at the top), the same code that trains in Layerloom.

```
pip install torch numpy scikit-learn   # scikit-learn only for the built-in sklearn datasets
python train.py --steps 200            # or --epochs N; --device cuda
torchrun --nproc_per_node=2 train.py   # DistributedDataParallel (gloo on CPU, NCCL on CUDA)
```

Checkpoints go to `checkpoints/latest.pt` (`torch.load(path, weights_only=True)`).
"""


def export_training(project: Project, out_dir: str | Path) -> list[Path]:
    """Write model.py, train.py and README.md into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = generate(project)
    verify_source(source.text, source.node_lines)
    files = {"model.py": source.text, "train.py": train_script(project),
             "README.md": README.format(name=project.name, recipe=project.training.recipe,
                                        dataset=project.training.dataset)}
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return [out / n for n in files]
