"""Compile time of ResNet-152: the block version and the same network with every block expanded.

Compile = validate + shape inference + codegen + exec of the generated source (instantiating the
module's weights is not compile and is timed apart). Run: ``python benchmarks/bench_compile.py``.
Target on a 2-core machine: block version <= 150 ms.
"""

from __future__ import annotations

import statistics
import time

import templates
from compiler import analyze, build, generate
from compiler.build import exec_source
from compiler.graph import expand_block


def expanded(name: str):
    project = templates.build(name)
    for net in project.networks:
        while True:
            blocks = [n.id for n in net.nodes if n.type == "block.block"]
            if not blocks:
                break
            expand_block(project, net.name, blocks[0])
    return project


def time_compile(project, repeats: int = 5) -> tuple[float, dict[str, float]]:
    parts: dict[str, list[float]] = {"analyze": [], "codegen": [], "exec": []}
    totals = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        analysis = analyze(project)
        t1 = time.perf_counter()
        source = generate(analysis)
        t2 = time.perf_counter()
        exec_source(source.text)
        t3 = time.perf_counter()
        parts["analyze"].append(t1 - t0)
        parts["codegen"].append(t2 - t1)
        parts["exec"].append(t3 - t2)
        totals.append(t3 - t0)
    return statistics.median(totals), {k: statistics.median(v) for k, v in parts.items()}


def main() -> None:
    blocks = templates.build("resnet152")
    flat = expanded("resnet152")
    n_blocks = sum(len(n.nodes) for n in blocks.networks)
    n_flat = sum(len(n.nodes) for n in flat.networks)
    assert analyze(flat).ok and analyze(blocks).ok
    time_compile(blocks, 1)  # warm caches (imports, torch signatures)
    for label, project, count in (("blocks", blocks, n_blocks), ("expanded", flat, n_flat)):
        total, parts = time_compile(project)
        detail = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in parts.items())
        print(f"resnet152 {label:8s} {count:4d} nodes: compile {total * 1e3:7.1f} ms ({detail})")
    t0 = time.perf_counter()
    build(blocks).instantiate()
    print(f"resnet152 instantiate weights (not compile): {(time.perf_counter() - t0) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
