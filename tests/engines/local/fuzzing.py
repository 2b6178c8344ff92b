"""Mutations of a saved index directory as an attacker would make them: the checksums and sizes
in ``manifest.json`` are recomputed after each change (whoever can change a file can change the
manifest), so only the loader's own checks stand between a mutation and the user."""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from semsearch.engines.local.manifest import CHECKSUMS

MANIFEST = "manifest.json"
# Raw JSON values a manifest field may be replaced with (written as text, so that NaN, Infinity
# and 1e400 reach the parser as an attacker would write them).
JSON_VALUES = [
    "null",
    "-1",
    "0",
    "1",
    "2.5",
    "1e400",
    "-1e400",
    "Infinity",
    "NaN",
    "true",
    '"x"',
    '""',
    "[]",
    "{}",
    "4722366482869645213696",
    '"../../../../tmp/x"',
    '"/etc"',
    '"ivf-pq"',
    '"store.1-1.sqlite"',
    '"manifest.json"',
    "[" * 2000 + "]" * 2000,
]
# Changes to the store's rows: each leaves the schema as semsearch writes it.
ROW_EDITS = [
    "UPDATE documents SET metadata = '{not json'",
    "UPDATE documents SET metadata = '[1, 2]'",
    "UPDATE documents SET highlights = '[1]'",
    "UPDATE documents SET highlights = 'null'",
    "UPDATE documents SET text = substr(text, 1, 10)",
    "UPDATE documents SET text = x'ff00'",
    "UPDATE documents SET title = 3",
    "UPDATE documents SET date_approximate = 'yes'",
    "UPDATE documents SET id = id || 'x' WHERE rowid = 1",
    'UPDATE passages SET "end" = "end" + 100000',
    "UPDATE passages SET start = -5",
    'UPDATE passages SET start = "end" + 1',
    "UPDATE passages SET start = 'a'",
    "UPDATE passages SET ordinal = 'first'",
    "UPDATE passages SET doc_id = 'nobody'",
    "UPDATE passages SET id = id + 1000",
    "DELETE FROM passages WHERE id = (SELECT min(id) FROM passages)",
    "DELETE FROM documents WHERE rowid = 1",
    'INSERT INTO passages SELECT id + 5000, doc_id, ordinal, start, "end", embed_key'
    " FROM passages LIMIT 1",
]
# Changes to the store's schema.
SCHEMA_EDITS = [
    "CREATE TRIGGER t AFTER INSERT ON passages BEGIN"
    ' INSERT INTO passages SELECT id + 100, doc_id, ordinal, start, "end", embed_key'
    " FROM passages WHERE id = new.id; END",
    "CREATE VIEW v AS SELECT * FROM documents",
    "ALTER TABLE passages RENAME TO passages_old;"
    " CREATE VIEW passages AS SELECT * FROM passages_old",
    "DROP INDEX passages_doc",
    "CREATE TABLE extra (x)",
    "ALTER TABLE documents ADD COLUMN extra TEXT",
    "CREATE INDEX more ON documents(title)",
]


def recompute(directory: Path) -> None:
    """Rewrite every size and checksum in the manifest from the files as they now are."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, OSError, RecursionError):
        return
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return
    for entry in manifest["files"].values():
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        file = directory / entry["name"]
        if "/" in entry["name"] or not file.is_file():
            continue
        data = file.read_bytes()
        entry["bytes"] = len(data)
        for algorithm, make in CHECKSUMS.items():
            if algorithm in entry:
                digest = make()
                digest.update(data)
                entry[algorithm] = digest.hexdigest()
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name != MANIFEST and p.name[0] != ".")


def flip_bytes(directory: Path, rng: random.Random) -> str:
    file = rng.choice(_files(directory))
    data = bytearray(file.read_bytes())
    if not data:
        file.write_bytes(b"\x93NUMPY")
        return f"fill empty {file.name}"
    # Headers hold most of what a reader trusts: half the flips land in the first 256 bytes.
    for _ in range(rng.randint(1, 8)):
        limit = min(len(data), 256) if rng.random() < 0.5 else len(data)
        at = rng.randrange(limit)
        data[at] ^= 1 << rng.randrange(8)
    file.write_bytes(bytes(data))
    return f"flip bytes of {file.name}"


def truncate(directory: Path, rng: random.Random) -> str:
    file = rng.choice(_files(directory))
    size = file.stat().st_size
    cut = rng.choice([0, 1, 8, 64, 127, 129, size // 2, max(size - 1, 0), rng.randrange(size + 1)])
    with open(file, "r+b") as f:
        f.truncate(min(cut, size))
    return f"truncate {file.name} to {min(cut, size)}"


def swap(directory: Path, rng: random.Random) -> str:
    a, b = rng.sample(_files(directory), 2)
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    return f"swap {a.name} and {b.name}"


def _json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            paths += _json_paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            paths += _json_paths(inner, (*prefix, i))
    return paths


def edit_manifest(directory: Path, rng: random.Random) -> str:
    """Replace one field of the manifest (after the checksums are recomputed)."""
    recompute(directory)
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, RecursionError):  # an earlier mutation broke it: break it further
        path.write_text(path.read_text()[: rng.randrange(4097)])
        return "manifest cut"
    paths = _json_paths(manifest)
    if not paths:
        return "manifest without fields"
    field = rng.choice(paths)
    raw = rng.choice(JSON_VALUES)
    marker = "@@FUZZ@@"
    target: Any = manifest
    for key in field[:-1]:
        target = target[key]
    if rng.random() < 0.1 and isinstance(target, dict):
        del target[field[-1]]
        said = f"delete manifest field {'.'.join(map(str, field))}"
        text = json.dumps(manifest)
    else:
        target[field[-1]] = marker
        said = f"manifest field {'.'.join(map(str, field))} = {raw[:30]}"
        text = json.dumps(manifest).replace(json.dumps(marker), raw)
    path.write_text(text)
    return said


def _sql(directory: Path, statements: str) -> None:
    store = next(p for p in _files(directory) if p.suffix == ".sqlite")
    db = sqlite3.connect(store)
    try:
        db.executescript(statements)
        db.commit()
    finally:
        db.close()


def edit_rows(directory: Path, rng: random.Random) -> str:
    edit = rng.choice(ROW_EDITS)
    _sql(directory, edit)
    return f"store rows: {edit[:60]}"


def edit_schema(directory: Path, rng: random.Random) -> str:
    edit = rng.choice(SCHEMA_EDITS)
    _sql(directory, edit)
    return f"store schema: {edit[:60]}"


def npy_header(directory: Path, rng: random.Random) -> str:
    """Rewrite the header of a ``.npy`` file (or of one inside an ``.npz``, left as is)."""
    files = [p for p in _files(directory) if p.suffix == ".npy"]
    if not files:
        return flip_bytes(directory, rng)
    file = rng.choice(files)
    data = file.read_bytes()
    end = data.index(b"\n") + 1 if b"\n" in data[:4096] else 128
    header = data[10:end].decode("latin1")
    choice = rng.randrange(5)
    if choice == 0:
        new = header[: rng.randrange(len(header) + 1)]  # cut short
    elif choice == 1:
        new = re.sub(r"\(\d+,?", "(" + str(rng.choice([0, 1, 10**12, 2**62])) + ",", header)
    elif choice == 2:
        new = header.replace("<", rng.choice([">", "|", "O"]), 1)
    elif choice == 3:
        new = header.replace("'descr'", "'descr' 'x'")
    else:
        new = "{" + "(" * 300 + "\n"
    body = new.encode("latin1")
    file.write_bytes(data[:8] + len(body).to_bytes(2, "little") + body + data[end:])
    return f"npy header of {file.name}: {choice}"


def link(directory: Path, rng: random.Random, outside: Path) -> str:
    """Replace a file (or the manifest) by a symbolic link to a copy outside the directory,
    or to a file of the system."""
    file = rng.choice([*_files(directory), directory / MANIFEST])
    copy = outside / file.name
    copy.write_bytes(file.read_bytes())
    target = copy if rng.random() < 0.7 else Path("/etc/passwd")
    recompute(directory)
    file.unlink()
    file.symlink_to(target)
    return f"{file.name} -> {target}"


def fifo(directory: Path, rng: random.Random) -> str:
    file = rng.choice([*_files(directory), directory / MANIFEST])
    recompute(directory)
    file.unlink()
    os.mkfifo(file)
    return f"{file.name} is a FIFO"


MUTATIONS: list[Callable[[Path, random.Random], str]] = [
    flip_bytes,
    flip_bytes,
    truncate,
    swap,
    edit_manifest,
    edit_manifest,
    edit_rows,
    edit_rows,
    edit_schema,
    npy_header,
]


def mutate(directory: Path, rng: random.Random, outside: Path) -> list[str]:
    """One to three mutations of ``directory``, checksums recomputed after each (but a link or
    FIFO, which has no checksum of its own to give, comes last)."""
    said = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        try:
            said.append(rng.choice(MUTATIONS)(directory, rng))
        except sqlite3.Error as exc:  # an edit of a store an earlier mutation broke
            said.append(f"store edit failed ({exc})")
        if not said[-1].startswith("manifest field") and not said[-1].startswith("delete"):
            recompute(directory)
    roll = rng.random()
    if roll < 0.05:
        said.append(link(directory, rng, outside))
    elif roll < 0.08:
        said.append(fifo(directory, rng))
    return said
