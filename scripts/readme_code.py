"""Rewrite the README's generated-code sample from the real generator, so it stays true.

Run: ``python scripts/readme_code.py`` (rewrites the ``codegen`` section of README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import templates  # noqa: E402
from compiler import generate  # noqa: E402

START, END = "<!-- codegen:start -->", "<!-- codegen:end -->"
TEMPLATE = "gpt-small"


def main() -> int:
    text = generate(templates.build(TEMPLATE)).text
    start = text.index("class GPTBlock")
    sample = text[start:text.index("# Network name")].rstrip()
    section = (f"`layerloom export {TEMPLATE} -o out/` writes this `model.py` (the GPT block and "
               "the network; the small helpers above them are elided here). The app trains exactly "
               f"this text.\n\n```python\n{sample}\n```")
    readme = ROOT / "README.md"
    body = readme.read_text()
    i, j = body.index(START), body.index(END)
    readme.write_text(body[: i + len(START)] + "\n" + section + "\n" + body[j:])
    print("README.md: code sample updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
