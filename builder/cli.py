"""The ``layerloom`` command line. Qt is imported only when the window is opened.

Exit codes: 0 fine, 1 the project has errors (or a run failed), 2 bad usage or an unreadable file.
User mistakes print one clear line each on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

COMMANDS = ("check", "export", "templates", "new", "train", "search", "import")


class UsageError(Exception):
    """Bad arguments or an unreadable input: exit 2."""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="layerloom",
        description="Layerloom: draw deep-learning models, check them, export plain PyTorch. "
        "With no command, opens the app (on FILE.loom or --template NAME if given).")
    sub = ap.add_subparsers(dest="command")
    p = sub.add_parser("check", help="diagnostics, then node, shape, params and FLOPs")
    p.add_argument("target", help="a .loom file or a template name")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("export", help="write model.py (and train.py) for a project")
    p.add_argument("target")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--model-only", action="store_true", help="write model.py only")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx per network, "
                   "checked in onnxruntime (needs: pip install 'layerloom[onnx]')")
    p.add_argument("--weights", help="a state_dict file to put in the ONNX export")
    p.add_argument("--trust-code", action="append", default=[], metavar="FILE",
                   help="allow a project with opaque nodes to import your code from FILE")
    p = sub.add_parser("templates", help="list the built-in templates")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-figures", action="store_true", help="skip parameter and FLOP counts")
    p = sub.add_parser("new", help="write a project file from a template")
    p.add_argument("template")
    p.add_argument("-o", "--out", required=True, help="the .loom file to write")
    sub.add_parser("train", help="train a project or template (see 'layerloom train -h')",
                   add_help=False)
    sub.add_parser("search", help="search a project's marked choices for the best architecture "
                   "(see 'layerloom search -h')", add_help=False)
    from builder.import_command import add_parser as add_import

    add_import(sub)
    return ap


def load_target(target: str):
    """A project from a .loom path or a template name; UsageError if it is neither."""
    from compiler.loading import load

    path = Path(target)
    if path.suffix == ".loom" or path.exists():
        if not path.exists():
            raise UsageError(f"{target}: no such file")
        return load(path)  # a ProjectLoadError is exit 2, one line (see main)
    import templates

    try:
        return templates.build(target)
    except KeyError:
        raise UsageError(f"'{target}' is neither a .loom file nor a template "
                         "(see 'layerloom templates')") from None


def cmd_check(args: argparse.Namespace) -> int:
    from compiler import analyze, build, generate
    from compiler.summary import human, summarize

    project = load_target(args.target)
    analysis = analyze(project)
    training = training_problems(project)
    ok = analysis.ok and not training
    summaries = {}
    from compiler.usercode import code_sources

    if analysis.ok and code_sources(project):  # figures would build it: that imports user code
        print("note: figures are not computed: the project imports your code from "
              + ", ".join(code_sources(project)), file=sys.stderr)
    elif analysis.ok:
        try:
            summaries = summarize(project, build(generate(analysis)), analysis)
        except Exception as err:  # generated code failed to build: a bug, but say it plainly
            print(f"error: the generated code did not build: {type(err).__name__}: {err}",
                  file=sys.stderr)
            return 1
    if args.json:
        out = {"ok": ok, "project": project.name,
               "diagnostics": [d.to_json() for d in analysis.diagnostics]
               + [{"severity": "error", "field": f, "message": m} for f, m in training],
               "networks": {k: v.to_json() for k, v in summaries.items()}}
        print(json.dumps(out, indent=1))
        return 0 if ok else 1
    for d in analysis.diagnostics:
        print(str(d), file=sys.stderr)
    for where, message in training:
        print(f"error: {where}: {message}", file=sys.stderr)
    for name, res in analysis.networks.items():
        rows = [("node", "type", "output shape", "params", "FLOPs")]
        figures = {n.node_id: n for n in summaries[name].nodes} if name in summaries else {}
        for node_id in res.order:
            nr = res.nodes[node_id]
            shape = ", ".join(s.label() for s in nr.outs.values()) or "—"
            fig = figures.get(node_id)
            rows.append((nr.node.name, nr.node.type, shape,
                         f"{fig.params:,}" if fig else "—", human(fig.flops) if fig else "—"))
        total = summaries.get(name)
        if total:
            rows.append(("total", "", "", f"{total.params:,}", human(total.flops)))
        print(f"\n{name}")
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            print("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    if ok:
        print(f"\nok: {project.name} has no errors ({len(analysis.warnings)} warning(s))")
    return 0 if ok else 1


def training_problems(project) -> list[tuple[str, str]]:
    """(JSON path, message) for each problem of the training section: a recipe or dataset that
    does not exist, or hyperparameters the trainer would refuse (or overflow on) later."""
    from training import data, recipes
    from training.config import HyperError, resolve

    t = project.training
    out: list[tuple[str, str]] = []
    defaults: dict = {}
    if t.recipe is not None:
        if t.recipe in recipes.NAMES:
            defaults = dict(recipes.get(t.recipe).defaults)
        else:
            out.append(("training.recipe", f"unknown recipe '{t.recipe}'; use one of "
                        + ", ".join(recipes.NAMES)))
    if t.dataset is not None and t.dataset not in data.names():
        out.append(("training.dataset", f"unknown dataset '{t.dataset}'; use one of "
                    + ", ".join(data.names())))
    if t.hyper or t.recipe is not None:
        try:
            resolve(defaults, t.hyper)
        except HyperError as err:
            out.append((f"training.hyper.{err.field}" if err.field else "training.hyper",
                        str(err)))
    return out


def cmd_export(args: argparse.Namespace) -> int:
    from compiler import analyze, generate
    from compiler.codegen import CodegenError
    from compiler.export import export_model

    project = load_target(args.target)
    analysis = analyze(project)
    if not analysis.ok:
        for d in analysis.errors:
            print(str(d), file=sys.stderr)
        return 1
    out = Path(args.out)
    from compiler.usercode import UntrustedCodeError, check_trusted, code_sources

    try:
        check_trusted(project, args.trust_code)
    except UntrustedCodeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if code_sources(project):
        print("note: model.py imports your code from " + ", ".join(code_sources(project))
              + "; ship those files with it", file=sys.stderr)
    try:
        try:
            from training.export import export_project
        except ImportError:  # training not installed: model.py only
            written = [export_model(generate(analysis), out)]
        else:  # the one export service (the app's too): model.py, train.py, README, sbatch
            from training.export import TrainExportError

            try:
                written = export_project(project, out, model_only=args.model_only,
                                         source=generate(analysis))
            except TrainExportError as err:
                print("\n".join(map(str, err.written)) + f"\nerror: {err}", file=sys.stderr)
                return 1
    except CodegenError as err:  # the last gate refused the text: nothing was written
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: cannot write to {out}: {err.strerror or err}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return _export_onnx(args, analysis, out) if args.onnx else 0


def _export_onnx(args: argparse.Namespace, analysis, out: Path) -> int:
    """``export --onnx``: model.onnx per network, each line saying how close onnxruntime came."""
    from compiler.onnx_export import OnnxExportError, OnnxUnavailable, export_onnx
    from compiler.weights import WeightsError, pick_state_dict, read_weights

    weights = None
    if args.weights:
        try:
            found = read_weights(args.weights)
        except WeightsError as err:
            raise UsageError(str(err)) from None
        names = list(analysis.networks)
        weights = {n: s for n in names if (s := pick_state_dict(n, names, found)) is not None}
    try:
        results = export_onnx(analysis, out, weights=weights)
    except OnnxUnavailable as err:
        raise UsageError(str(err)) from None
    except (OnnxExportError, WeightsError) as err:  # WeightsError: weights that do not fit
        print(f"error: {err}", file=sys.stderr)
        return 1
    for r in results:
        print(r.line())
        for note in r.notes:
            print(f"  note: {note}")
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    import templates

    rows = []
    for info in templates.all_templates():
        row = {"name": info.name, "family": info.family, "variant": info.variant,
               "recipe": info.recipe, "dataset": info.dataset, "description": info.description}
        if not args.no_figures:
            row.update(_figures(info.name))
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from compiler.summary import human

    header = ("name", "family", "variant", "params", "FLOPs")
    table = [header] + [(r["name"], r["family"], r["variant"],
                         f"{r['params']:,}" if r.get("params") is not None else "—",
                         human(r.get("flops"))) for r in rows]
    widths = [max(len(str(t[i])) for t in table) for i in range(len(header))]
    for t in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(t, widths, strict=True)).rstrip())
    return 0


def _figures(name: str) -> dict:
    """Total params and FLOPs of a template (all networks), computed on the meta device."""
    import templates
    from compiler.summary import summarize

    try:
        summaries = summarize(templates.build(name))
    except Exception as err:  # a broken template must not hide the others
        return {"params": None, "flops": None, "error": str(err)}
    flops = [s.flops for s in summaries.values()]
    return {"params": sum(s.params for s in summaries.values()),
            "flops": None if any(f is None for f in flops) else sum(flops)}  # type: ignore[misc]


def cmd_new(args: argparse.Namespace) -> int:
    import templates
    from compiler.project import save

    try:
        project = templates.build(args.template)
    except KeyError:
        raise UsageError(f"no template named '{args.template}' (see 'layerloom templates')") \
            from None
    out = Path(args.out)
    if out.suffix != ".loom":
        out = out.with_suffix(".loom")
    save(project, out)
    print(out)
    return 0


def open_app(argv: Sequence[str]) -> int:
    ap = argparse.ArgumentParser(prog="layerloom", description="Open the Layerloom app.")
    ap.add_argument("file", nargs="?", help="a .loom project to open")
    ap.add_argument("--template", help="open a new project from this template")
    ap.add_argument("--help-commands", action="store_true", help="list the command-line commands")
    args = ap.parse_args(list(argv))
    if args.help_commands:
        _parser().print_help()
        return 0
    from builder.app import run_app

    return run_app(path=args.file, template=args.template)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS + ("-h", "--help"):
        try:
            return open_app(argv)
        except SystemExit as exc:
            return int(exc.code or 0)
    if argv[0] == "train":
        from training.cli import main as train_main

        return train_main(argv[1:])
    if argv[0] == "search":
        from training.search.cli import main as search_main

        return search_main(argv[1:])
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    from builder.import_command import cmd_import

    handlers = {"check": cmd_check, "export": cmd_export, "templates": cmd_templates,
                "new": cmd_new, "import": cmd_import}
    from compiler.project import ProjectLoadError

    try:
        return handlers[args.command](args)
    except (UsageError, ProjectLoadError) as err:
        print(f"layerloom: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
