"""Figures of every template (parameters, FLOPs) for ``layerloom templates`` and the README table.

Figures come from the generated code itself, built on the meta device (``compiler.summary``), so a
reference network costs no memory and the table can never drift from what the templates build.
FLOPs are for one sample (batch 1; sequences of 32 steps; the karate graph's 34 nodes), counting a
multiply-add as 2 as torch's FlopCounterMode does.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.summary import human, summarize

from .registry import all_templates, build


@dataclass
class Row:
    name: str
    family: str
    variant: str
    params: int
    flops: int | None
    recipe: str | None
    dataset: str | None


def rows(names: list[str] | None = None) -> list[Row]:
    out: list[Row] = []
    for info in all_templates():
        if names is not None and info.name not in names:
            continue
        nets = summarize(build(info.name))
        flops = [s.flops for s in nets.values()]
        out.append(Row(info.name, info.family, info.variant,
                       sum(s.params for s in nets.values()),
                       None if any(f is None for f in flops) else sum(flops),  # type: ignore[misc]
                       info.recipe, info.dataset))
    return out


def markdown(table: list[Row] | None = None) -> str:
    """The README table: one line per template, exact parameter counts, FLOPs rounded."""
    lines = ["| template | family | variant | parameters | FLOPs / sample | recipe | dataset |",
             "|---|---|---|---:|---:|---|---|"]
    for r in table if table is not None else rows():
        lines.append(f"| `{r.name}` | {r.family} | {r.variant} | {r.params:,} | {human(r.flops)} "
                     f"| {r.recipe or '—'} | {r.dataset or '—'} |")
    return "\n".join(lines)


START, END = "<!-- templates:start -->", "<!-- templates:end -->"


def replace_section(text: str, table: str) -> str:
    """``text`` with the part between the START and END markers replaced by ``table``."""
    i, j = text.find(START), text.find(END)
    if i < 0 or j < i:
        raise ValueError(f"no '{START}' ... '{END}' section found")
    return text[: i + len(START)] + "\n" + table + "\n" + text[j:]
