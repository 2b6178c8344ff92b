"""The on-disk layout of an index: a manifest naming checksummed files, written atomically.

A saved index is a directory holding ``manifest.json`` and the files it names. Each save writes
new files under fresh names, makes them durable, and then replaces the manifest in one rename:
that rename is the commit point, so a save killed at any instant leaves the previous manifest
and every file it names untouched. Files no manifest names are leftovers and are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import xxhash

from ...errors import IndexFormatError, SemsearchError
from .untrusted import open_regular, read_json

# What each format version holds is in docs/file-format.md; versions 2-4 still load (a version 2
# index as exact search only, their single lexical.npz and dedup.npz files, their exact vectors
# from a FAISS "vectors.faiss" file viewed in place).
FORMAT_VERSION = 5
READABLE_VERSIONS = (2, 3, 4, 5)
MANIFEST = "manifest.json"
_LOCK = ".semsearch.lock"
# Only files matching this are ever deleted as leftovers: never a user's file in the folder.
# A role is "<part>.<ext>" or "<part>-<name>.<ext>"; the generation's two hex runs make the
# name specific enough that no file of a user's is mistaken for one of ours.
_OURS = re.compile(
    r"^(vectors|ann|store|lexical|dedup)(-[a-z0-9]+)*\.[0-9a-f]+-[0-9a-f]+\.(faiss|sqlite|npz|npy)"
    r"(\.tmp)?$|^manifest\.json\.tmp$"
)
# What a manifest may name: one of our files, never a temporary one; and the roles naming them.
_NAME = re.compile(
    r"^(vectors|ann|store|lexical|dedup)(-[a-z0-9]+)*\.[0-9a-f]+-[0-9a-f]+\.(faiss|sqlite|npz|npy)$"
)
_ROLE = re.compile(
    r"^((?:vectors|ann|store|lexical|dedup)(?:-[a-z0-9]+)*)\.(faiss|sqlite|npz|npy)$"
)
_HEX = re.compile(r"^[0-9a-f]{32}$|^[0-9a-f]{64}$")
# Bounds on what a manifest may be: far above any real one (a few KB, 4 levels deep).
MANIFEST_BYTES = 1 << 20
MANIFEST_DEPTH = 16
MAX_FILE_BYTES = 1 << 50


# Checksums guard against truncated, corrupted or swapped files (whoever can rewrite the files
# can rewrite the manifest too, so a cryptographic hash would add no protection). xxh3-128 hashes
# about ten times as fast as SHA-256, which manifests may also name and are verified with.
CHECKSUMS: dict[str, Callable[[], Any]] = {"xxh3_128": xxhash.xxh3_128, "sha256": hashlib.sha256}
CHECKSUM = "xxh3_128"


def checksum_file(path: Path, algorithm: str = CHECKSUM) -> str:
    with open_regular(path) as f:
        return _checksum(f, algorithm)


def _checksum(f: BinaryIO, algorithm: str) -> str:
    digest = CHECKSUMS[algorithm]()
    for block in iter(lambda: f.read(4 << 20), b""):
        digest.update(block)
    return str(digest.hexdigest())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _durable(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` and rename it to ``final``."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)


def check_writable(directory: Path) -> None:
    """Refuse a read-only index directory before any work is done.

    Mode bits are checked as well as access(2): root may write anywhere, but a directory whose
    owner made it read-only is a statement that it must not change.
    """
    if not directory.is_dir():
        raise SemsearchError(f"{directory}: index directory does not exist")
    mode = directory.stat().st_mode
    if not (mode & 0o222) or not os.access(directory, os.W_OK):
        raise SemsearchError(f"{directory}: index directory is read-only")


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Exclusive lock on an index directory for the length of a save."""
    with open(directory / _LOCK, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def write_generation(
    directory: Path,
    writers: dict[str, Callable[[Path], None]],
    manifest: dict[str, Any],
    verify: Callable[[dict[str, Path]], None] | None = None,
) -> dict[str, Any]:
    """Write one file per writer under a fresh name, then commit them with a new manifest
    (returned).

    ``writers`` maps a role ("vectors.faiss") to a function that writes that file to a path;
    ``verify``, given the role -> path of the files written, may refuse them by raising before
    the commit: they are removed and the previous generation stays.
    """
    generation = f"{time.time_ns():x}-{secrets.token_hex(4)}"
    files: dict[str, dict[str, Any]] = {}
    written: dict[str, Path] = {}
    try:
        for role, write in writers.items():
            stem, ext = role.split(".", 1)
            final = directory / f"{stem}.{generation}.{ext}"
            tmp = final.with_name(final.name + ".tmp")
            write(tmp)
            _durable(tmp, final)
            written[role] = final
            files[role] = {
                "name": final.name,
                "bytes": final.stat().st_size,
                CHECKSUM: checksum_file(final),
            }
        if verify is not None:
            verify(written)
    except BaseException:
        for path in written.values():
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    manifest = {**manifest, "format_version": FORMAT_VERSION, "files": files}
    tmp = directory / (MANIFEST + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    _durable(tmp, directory / MANIFEST)
    _fsync_dir(directory)
    remove_leftovers(directory, keep={entry["name"] for entry in files.values()})
    return manifest


def remove_leftovers(directory: Path, *, keep: set[str]) -> None:
    for entry in directory.iterdir():
        if _OURS.match(entry.name) and entry.name not in keep:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()


def read_manifest(directory: Path) -> dict[str, Any]:
    """Read and check the manifest and every file it names (a regular file of the directory,
    its size and checksum); the manifest's own fields are checked by its reader
    (``persistence``)."""
    if not directory.is_dir():
        raise SemsearchError(f"{directory}: index directory does not exist")
    path = directory / MANIFEST
    if not os.path.lexists(path):
        raise IndexFormatError(f"{path}: missing; {directory} holds no saved semsearch index")
    try:
        manifest = read_json(path, max_bytes=MANIFEST_BYTES, max_depth=MANIFEST_DEPTH)
    except ValueError as exc:
        raise IndexFormatError(f"not a valid manifest: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise IndexFormatError(f"{path}: not a valid manifest (no file list)")
    version = manifest.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise IndexFormatError(
            f"{path}: index format version {version!r}; "
            f"this semsearch reads versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    expected = [_entry(path, role, entry) for role, entry in manifest["files"].items()]
    names = [name for name, *_ in expected]
    if len(set(names)) != len(names):
        raise IndexFormatError(f"{path}: not a valid manifest (a file named twice)")
    # Both hashes release the GIL on large blocks: files are hashed in parallel, one per core.
    with ThreadPoolExecutor(max_workers=max(1, min(len(expected), os.cpu_count() or 1))) as pool:
        for problem in pool.map(lambda e: _verify(directory, *e), expected):
            if problem:
                raise IndexFormatError(problem)
    return manifest


def _entry(path: Path, role: Any, entry: Any) -> tuple[str, int, str, str]:
    """(name, bytes, algorithm, digest) of one manifest entry, checked as data."""
    try:
        algorithm = next(a for a in CHECKSUMS if a in entry)
        name, size, digest = entry["name"], entry["bytes"], entry[algorithm]
    except (StopIteration, KeyError, TypeError):
        raise IndexFormatError(f"{path}: not a valid manifest (bad entry for {role!r})") from None
    role_match = _ROLE.match(role) if isinstance(role, str) else None
    if (
        role_match is None
        or not isinstance(name, str)
        or not _NAME.match(name)
        or not name.startswith(role_match[1] + ".")
        or not name.endswith("." + role_match[2])
    ):
        raise IndexFormatError(
            f"{path}: not a valid manifest (bad file name {name!r} for {role!r})"
        )
    if type(size) is not int or not 0 <= size <= MAX_FILE_BYTES:
        raise IndexFormatError(f"{path}: not a valid manifest (bad size {size!r} for {name})")
    if not isinstance(digest, str) or not _HEX.match(digest):
        raise IndexFormatError(f"{path}: not a valid manifest (bad checksum for {name})")
    return name, size, algorithm, digest


def _verify(directory: Path, name: str, size: int, algorithm: str, digest: str) -> str | None:
    """What is wrong with one named file (None if nothing): it must be a regular file of
    ``size`` bytes with this checksum."""
    file = directory / name
    if not os.path.lexists(file):
        return f"{file}: missing (named by the manifest)"
    try:
        with open_regular(file) as f:
            actual = os.fstat(f.fileno()).st_size
            if actual != size:
                return f"{file}: {actual} bytes, the manifest says {size} (truncated or changed)"
            if _checksum(f, algorithm) != digest:
                return f"{file}: checksum does not match the manifest (file changed)"
    except ValueError as exc:
        return str(exc)
    return None


def part_files(directory: Path, manifest: dict[str, Any], part: str) -> dict[str, Path]:
    """Role -> path of every file of one part ("lexical": "lexical.npz", "lexical-terms.npy")."""
    files = {
        role: directory / str(entry["name"]) for role, entry in roles_of(manifest["files"], part)
    }
    if not files:
        raise IndexFormatError(f"{directory / MANIFEST}: names no {part} files")
    return files


def roles_of(files: dict[str, Any], part: str) -> list[tuple[str, Any]]:
    """The (role, entry) pairs of ``files`` that belong to one part."""
    return [(r, e) for r, e in files.items() if r.split(".", 1)[0].split("-", 1)[0] == part]


def file_path(directory: Path, manifest: dict[str, Any], role: str) -> Path:
    try:
        return directory / str(manifest["files"][role]["name"])
    except KeyError:
        raise IndexFormatError(f"{directory / MANIFEST}: names no {role} file") from None
