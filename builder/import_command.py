"""``layerloom import SOURCE -o FILE.loom``: an existing PyTorch module as an editable project.

Importing runs the user's own code (their file, their class): the command says so on stderr.
The project is written with its weights beside it (``FILE.weights/<network>.safetensors``) only
after the generated module, with those weights, gave the original's outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="import a PyTorch module (path/to/file.py:Name or "
                       "package.module:Name) as a project, with its weights")
    p.add_argument("source", help="path/to/file.py:Name or package.module:Name (a class with a "
                   "no-argument constructor, or a factory function)")
    p.add_argument("-o", "--out", required=True, help="the .loom file to write")
    p.add_argument("--input", action="append", metavar="SHAPE",
                   help="example input shape with symbolic dims, e.g. N,3,224,224 (once per "
                   "input; 'graph' for a Graph argument, after node features V,F); default: "
                   "what the first layer implies")
    p.add_argument("--dtype", action="append", choices=("float", "long"),
                   help="dtype of each input (long for token ids); default float")
    p.add_argument("--leaf", action="append", default=[], metavar="CLASS",
                   help="keep submodules of this class as your code (an opaque node)")
    p.add_argument("--weights", help="also write the imported weights into this one file "
                   "(they always go beside the project too, into FILE.weights/)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest output difference accepted, relative to the output's size")


def cmd_import(args: argparse.Namespace) -> int:
    from compiler.imported_weights import save_weights
    from compiler.importing import ImportFailure, import_model

    out = Path(args.out)
    if out.suffix != ".loom":
        out = out.with_suffix(".loom")
    print(f"importing {args.source}: this runs your own code from it", file=sys.stderr)
    try:
        result = import_model(args.source, inputs=args.input, dtypes=args.dtype or (),
                              leaves=args.leaf, tolerance=args.tolerance,
                              name=out.stem)
    except ImportFailure as err:
        print(f"layerloom: {err}", file=sys.stderr)
        return 1
    project_path, weights = result.save(out)
    if args.weights:
        save_weights(args.weights, result.weights, {"source": args.source})
    print(result.report.text())
    print(project_path)
    print(weights)
    if result.report.opaque:
        print("note: the project imports your code for its opaque nodes; build, train and "
              "export it with --trust-code " + " --trust-code ".join(
                  sorted({ref.rpartition(':')[0] for _, ref, _ in result.report.opaque})),
              file=sys.stderr)
    return 0
