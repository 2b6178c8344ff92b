"""The README's Python example runs as written (bar its save path) and its promises hold."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert '"build/news"' in code
    monkeypatch.chdir(ROOT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code.replace('"build/news"', repr(str(tmp_path / "news"))), {})
    printed = out.getvalue().splitlines()
    assert printed[0].startswith("AddReport(added=2,")
    assert "letters between Russian president, Pakistani PM" in printed[1]
    assert (tmp_path / "news" / "manifest.json").exists()
