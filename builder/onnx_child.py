"""File ▸ Export ▸ ONNX…'s work, in a child process: ``python -m builder.onnx_child``.

Tracing with torch.export and checking in onnxruntime takes seconds to minutes and holds the
GIL, so the window hands it to a child (as it does training, :mod:`builder.child`): a snapshot of
the project (a ``.loom`` file, so nothing the window goes on editing is shared), the session's
loaded weights (safetensors, ``compiler.project_weights``) and the folder. The child speaks JSON
lines on stdout: ``started`` (the networks), ``network`` (one begins: name, index, of),
``exported`` (its file and max |diff| against torch), then ``finished``, or ``failed`` with the
reason and the node that stopped it. No Qt here: the child imports only what the export needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def emit(ev: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m builder.onnx_child",
                                 description="Export a project's networks to ONNX, streaming "
                                             "JSON events (the app's Export ▸ ONNX).")
    ap.add_argument("--project", required=True, help="the .loom snapshot to export")
    ap.add_argument("--out", required=True, help="the folder for the .onnx files")
    ap.add_argument("--weights", help="a safetensors file of state_dicts by network")
    args = ap.parse_args(argv)
    network = ""
    try:
        from compiler.loading import load
        from compiler.onnx_export import export_onnx
        from compiler.project_weights import read_safetensors
        from compiler.shapes import analyze

        analysis = analyze(load(args.project))
        weights = read_safetensors(args.weights) if args.weights else None
        names = list(analysis.networks)
        emit({"event": "started", "networks": names})
        for i, network in enumerate(names, start=1):
            emit({"event": "network", "network": network, "index": i, "of": len(names)})
            (result,) = export_onnx(analysis, args.out, networks=[network], weights=weights)
            emit({"event": "exported", "network": network, "path": str(result.path),
                  "line": result.line(), "notes": list(result.notes),
                  "max_abs_diff": result.max_abs_diff, "tolerance": result.tolerance})
    except Exception as err:  # every failure becomes an event the window shows
        emit(_failure(err, network, args.out))
        return 1
    emit({"event": "finished"})
    return 0


def _failure(err: Exception, network: str, out: str) -> dict[str, Any]:
    from compiler.onnx_export import OnnxExportError

    ev: dict[str, Any] = {"event": "failed", "network": network}
    if isinstance(err, OnnxExportError):
        ev.update(network=err.network, node=err.node, node_type=err.node_type,
                  reason=err.reason, hint=err.hint, message=str(err))
    elif isinstance(err, OSError):
        ev["message"] = f"cannot write to {out}: {err.strerror or err}"
    else:
        ev["message"] = f"{type(err).__name__}: {err}"
    return ev


if __name__ == "__main__":
    sys.exit(main())
