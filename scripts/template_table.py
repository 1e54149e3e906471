"""Print the templates table (markdown), or rewrite README.md's marked section with it.

    python scripts/template_table.py                    # print the table
    python scripts/template_table.py --write README.md  # rewrite the part between
        <!-- templates:start --> and <!-- templates:end --> (the markers stay)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.project import atomic_write_text  # noqa: E402
from templates.table import markdown, replace_section  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="FILE", help="rewrite the marked section of FILE")
    args = parser.parse_args(argv)
    table = markdown()
    if not args.write:
        print(table)
        return 0
    path = Path(args.write)
    try:
        text = replace_section(path.read_text(encoding="utf-8"), table)
    except (OSError, ValueError) as err:
        print(f"{path}: {err}", file=sys.stderr)
        return 1
    atomic_write_text(path, text)
    print(f"{path}: templates table updated ({table.count(chr(10)) - 1} templates)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
