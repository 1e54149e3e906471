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
    if not args.write:
        print(markdown())
        return 0
    path = Path(args.write)
    try:
        text = path.read_text(encoding="utf-8")
        replace_section(text, "")  # refuse before the slow part if the markers are missing
    except (OSError, ValueError) as err:
        print(f"{path}: {err}", file=sys.stderr)
        return 1
    table = markdown()
    atomic_write_text(path, replace_section(text, table))
    print(f"{path}: templates table updated ({table.count(chr(10)) - 1} templates)")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
