"""The public surface is small, sorted and deliberate: this test pins it."""

from __future__ import annotations

import semsearch


def test_public_names_are_pinned() -> None:
    assert semsearch.__all__ == [
        "DEFAULT_MODEL",
        "AddReport",
        "Answer",
        "Answerer",
        "Citation",
        "CrossEncoderAnswerer",
        "Document",
        "Embedder",
        "ExtractiveReader",
        "Filters",
        "Hit",
        "Index",
        "IndexFormatError",
        "InputError",
        "ModelMismatchError",
        "Passage",
        "SemsearchError",
        "SemsearchWarning",
        "SentenceAnswerer",
        "SkippedInputWarning",
        "__version__",
        "read_articles",
        "read_text",
    ]

    # isort-style order, as ruff keeps it: CONSTANTS, then Classes, then functions.
    def group(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert semsearch.__all__ == sorted(semsearch.__all__, key=group)
    for name in semsearch.__all__:
        assert hasattr(semsearch, name), name


def test_importing_semsearch_does_not_load_torch() -> None:
    import subprocess
    import sys

    code = "import sys, semsearch; print('torch' in sys.modules, 'faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
