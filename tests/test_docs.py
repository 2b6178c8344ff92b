"""The documentation site builds cleanly, its Python examples run and print what they promise,
and the README's screenshot is a real PNG in the repository.

Fences: a ```python block in docs/*.md is run by this test; a ```py block is an illustration
that cannot run on its own (it needs a downloaded model, a running server or a name defined
elsewhere). The ```python blocks of one page run in order in one namespace, from the
repository root, so later examples reuse the index an earlier one built. Any "build/..." path
(where the examples save) is replaced by a temporary directory, as tests/test_readme.py does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SAVE_PATH = re.compile(r"""(["'])build/([^"']*)\1""")

# What each page's examples must print (each string on some line of the output, in this
# order). Every page with runnable examples needs an entry: a new page fails until it has one.
EXPECTED: dict[str, list[str]] = {
    "milvus.md": ["AddReport(added=2,", "True True"],
    "langchain.md": [
        "1 Local media reports discreet exchange of letters between Russian president, "
        "Pakistani PM 2022-04-24 [0:",
        "2 passages, all from {'Local media reports discreet exchange of letters",
        "Local media reports discreet exchange of letters",
        "[1] Three Afghan migrants die crossing into Iran",
        "Local media reports discreet exchange of",
        "Three Afghan migrants die crossing into",
        "Local media reports discreet exchange of",
        "Three Afghan migrants die crossing into",
    ],
    "llamaindex.md": [
        "1 Local media reports discreet exchange of letters between Russian president, "
        "Pakistani PM [0:",
        "title: Local media reports discreet exchange of letters",
        "2 passages, all from {'Local media reports discreet exchange of letters",
        "Three Afghan migrants die crossing into Iran",
        "Local media reports discreet exchange of",
        "Three Afghan migrants die crossing into",
    ],
    "service.md": [
        "1 Three Afghan migrants die crossing into Iran as UN warns of new displacement toward "
        "Pakistan 0 963",
        "True",
        "200 {'added': 1, 'replaced': 0, 'unchanged': 0, 'passages': 1, 'embedded': 1, "
        "'doc_ids': ['council'], 'warnings': []}",
        "False The council met on Monday. [1]",
        "{'status': 400, 'error': 'k: Input should be less than or equal to 100'}",
        "0",
    ],
    "python.md": [
        "AddReport(added=2,",
        "letters between Russian president, Pakistani PM 2022-04-24 [0:",
        "2 passages of Local media reports discreet exchange of letters",
        "[]",
        "ISLAMABAD: Russian President Vladimir Putin and Prime Minister Shehbaz Sharif",
        "[1] Local media reports discreet exchange of letters between Russian president",
        "abstained: False",
        "abstained: True - The indexed articles do not answer this question.",
        "closest: ",
        "True",
        "[1]",
        "AddReport(added=1, replaced=0, unchanged=0, passages=1, embedded=1)",
        "0 0 70 The council met on Monday. It approved the budget for the new library.",
        "True 3 documents, 5 passages",
        "1 passage removed",
        "AddReport(added=0, replaced=0, unchanged=2, passages=0, embedded=0)",
        "2 documents, 4 passages",
    ],
    "input-formats.md": [
        "Local media reports discreet exchange of letters between Russian president",
        "ISLAMABAD, 2022-04-24, 2 highlights",
        "Three Afghan migrants die crossing into Iran",
        "Council approves library budget",
        "pasted: empty text",
    ],
    "search.md": [
        "dense   Local media reports discreet exchange of letters",
        "lexical Local media reports discreet exchange of letters",
        "hybrid  Local media reports discreet exchange of letters",
        "AddReport(added=1, replaced=0, unchanged=0, passages=2, embedded=0)",
        "3 distinct passages of 3",
    ],
    "answers.md": [
        "[1]",
        "[1] Local media reports discreet exchange of letters",
        "abstained: True",
        "closest: ",
    ],
    "embedding-backends.md": [
        "sentence-transformers/all-MiniLM-L6-v2 onnx",
        "ModelMismatchError: ",
    ],
    "scale.md": [
        "flat 1.0",
        "ivf-sq8 pinned",
    ],
    "file-format.md": [
        "format 5",
        "store.sqlite",
        "vectors.npy",
        "checksums verified",
    ],
    "guarantees.md": [
        "4 passages, every offset exact",
        "SemsearchError: ",
        "IndexFormatError: ",
    ],
}


def _blocks(page: Path) -> list[str]:
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


def _runnable_pages() -> list[str]:
    return sorted(p.name for p in DOCS.glob("*.md") if _blocks(p))


def test_every_page_with_examples_has_expectations() -> None:
    assert _runnable_pages() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_docs_examples_run_and_print_what_they_say(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = _blocks(DOCS / name)
    assert blocks, f"docs/{name} has no ```python examples"
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": f"docs_{name[:-3].replace('-', '_')}"}
    out = io.StringIO()
    for number, block in enumerate(blocks, start=1):
        code = _SAVE_PATH.sub(lambda m: repr(str(tmp_path / m.group(2))), block)
        try:
            compiled = compile(code, f"docs/{name}, example {number}", "exec")
            with contextlib.redirect_stdout(out), ThreadPoolExecutor(1) as worker:
                # On a thread of its own, as in a script: an earlier test's event loop (the
                # browser tests' Playwright) may be running on this one, and asyncio.run in
                # an example would refuse to start.
                worker.submit(exec, compiled, namespace).result()
        except Exception as exc:
            pytest.fail(f"docs/{name}, example {number} failed: {exc!r}\n{block}")
    lines = out.getvalue().splitlines()
    at = 0
    for wanted in EXPECTED[name]:
        found = next((i for i in range(at, len(lines)) if wanted in lines[i]), None)
        assert found is not None, f"docs/{name}: no line with {wanted!r} after line {at}:\n" + (
            "\n".join(lines)
        )
        at = found + 1


def test_readme_screenshot_is_a_png_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # Alt text may hold brackets of its own ("[1]"): one level of nesting is allowed.
    images = re.findall(r"!\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)", readme)
    assert images, "the README shows no image"
    for link in images:
        assert not re.match(r"[a-z]+://|/", link), f"{link}: not a relative link"
        path = ROOT / link
        assert path.is_file(), f"{link}: no such file in the repository"
        assert path.read_bytes()[:8] == PNG_MAGIC, f"{link}: not a PNG file"


def test_readme_links_into_the_docs_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#\s]+)", readme)
    assert links, "the README links to no docs page"
    for link in links:
        assert (ROOT / link).is_file(), f"README links to {link}, which does not exist"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed")
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "index.html").is_file()
    assert (site / "reference" / "index.html").is_file()
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    for name in ("semsearch.Index", "semsearch.Filters", "semsearch.SkippedInputWarning"):
        assert f'id="{name}"' in reference, f"the API reference does not document {name}"
