"""docs/api.md and README's "Python API" section run as written, and print what they show.

Each ```python block runs in one namespace per document (in order, in a temporary folder, so
the figures the tour saves land there); a ```text block right after a python block is what that
block prints, compared exactly.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```(python|text)\n(.*?)^```\n", re.S | re.M)


def blocks(text: str) -> list[tuple[str, str | None]]:
    """(python code, the text block right after it or None) of a Markdown document."""
    found = [(m.group(1), m.group(2), m.start(), m.end()) for m in BLOCK.finditer(text)]
    out: list[tuple[str, str | None]] = []
    for i, (kind, body, _start, end) in enumerate(found):
        if kind != "python":
            continue
        after = found[i + 1] if i + 1 < len(found) else None
        shown = after[1] if after and after[0] == "text" and not text[end:after[2]].strip() \
            else None
        out.append((body, shown))
    return out


def python_section(readme: str) -> str:
    start = readme.index("## Python API")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


@pytest.mark.parametrize("document", ["docs/api.md", "README.md"])
def test_the_python_blocks_run_and_print_what_is_shown(
        document: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / document).read_text(encoding="utf-8")
    if document == "README.md":
        text = python_section(text)
    found = blocks(text)
    assert found, document
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for code, shown in found:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, document, "exec"), namespace)
        if shown is not None:
            assert out.getvalue() == shown, code


def test_the_tour_saves_its_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for code, _shown in blocks((ROOT / "docs" / "api.md").read_text(encoding="utf-8")):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, "docs/api.md", "exec"), namespace)
    saved = sorted(p.name for p in tmp_path.glob("*.png"))
    assert saved == ["alexnet-scaling.png", "resnet50-iteration.png", "vgg16-layers.png"]
    assert all((tmp_path / name).stat().st_size > 10_000 for name in saved)


def test_the_block_reader_pairs_code_with_its_output() -> None:
    text = "```python\nprint(1)\n```\n\n```text\n1\n```\n\nprose\n\n```python\nx = 2\n```\n"
    assert blocks(text) == [("print(1)\n", "1\n"), ("x = 2\n", None)]
