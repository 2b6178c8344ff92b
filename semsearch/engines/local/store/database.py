"""The store's SQLite connection: a saved file read in place until the first write."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..untrusted import handle_path, open_regular

# Pages of a writable store kept in memory (KiB). The rest lives in SQLite's private temporary
# file (in SQLITE_TMPDIR or TMPDIR), deleted when the connection closes, so building a large
# index holds no copy of its documents in memory.
CACHE_KIB = 64 << 10


def _scratch() -> sqlite3.Connection:
    """A private temporary database: in memory while small, spilled to a temporary file after.

    Autocommit mode: transactions are explicit (Store.transaction), so a failed ingest rolls
    back. The rollback journal stays a temporary file too, so replacing every article of a
    large store does not hold all their old pages in memory either.
    """
    # Any thread may read (an Index serves concurrent searches); writes need the Index to
    # themselves, as every Index write does.
    db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return db


def _copy(source: IO[bytes], target: IO[bytes]) -> None:
    """Copy a whole file in the kernel where it can (sendfile), else through a buffer."""
    size, done = os.fstat(source.fileno()).st_size, 0
    try:
        while done < size:
            sent = os.sendfile(target.fileno(), source.fileno(), done, size - done)
            if not sent:
                raise OSError("sendfile copied nothing")
            done += sent
    except (OSError, AttributeError):
        source.seek(done)
        target.seek(done)
        shutil.copyfileobj(source, target, 1 << 20)


def _defensive(db: sqlite3.Connection) -> None:
    """SQLite's settings for a database file from someone else: SQL in its schema (views,
    triggers, defaults) may not call functions with side effects, the file cannot be changed
    through this connection by odd means, and corrupt pages are detected early."""
    db.execute("PRAGMA trusted_schema = OFF")
    db.execute("PRAGMA cell_size_check = ON")
    setconfig = getattr(db, "setconfig", None)  # Python 3.12 and later
    if setconfig is not None:
        setconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE, True)  # type: ignore[attr-defined]
        setconfig(sqlite3.SQLITE_DBCONFIG_TRUSTED_SCHEMA, False)  # type: ignore[attr-defined]


def _objects(db: sqlite3.Connection) -> set[tuple[str, str, str, str | None]]:
    rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return {
        (t, n, tbl, None if sql is None else " ".join(str(sql).split())) for t, n, tbl, sql in rows
    }


def _check_schema(db: sqlite3.Connection, schema: str, path: Path) -> None:
    """The saved database must hold exactly the tables and indexes ``schema`` creates, column
    for column: no trigger, view or other object, which would run or answer in our place."""
    expected_db = sqlite3.connect(":memory:")
    try:
        expected_db.executescript(schema)
        expected = _objects(expected_db)
    finally:
        expected_db.close()
    found = _objects(db)
    if found == expected:
        return
    extra = sorted(f"{t} {n}" for t, n, _, _ in found - expected)
    missing = sorted(f"{t} {n}" for t, n, _, _ in expected - found)
    said = "; ".join(
        part
        for part in (
            f"unexpected {', '.join(extra)}" if extra else "",
            f"missing or different {', '.join(missing)}" if missing else "",
        )
        if part
    )
    raise ValueError(f"{path}: not a semsearch store (schema differs: {said})")


class Database:
    """One SQLite database: a saved file read in place, read-only (generation files never
    change), until the first write copies it into a scratch database; or, new, scratch from the
    start (see ``_scratch``: in memory while small, then a temporary file)."""

    def __init__(self, schema: str) -> None:
        self._db = _scratch()
        self._db.executescript(schema)
        self._file: IO[bytes] | None = None  # the saved file while we read it in place
        self._in_transaction = False

    @property
    def db(self) -> sqlite3.Connection:
        """The connection to read from; writes go through ``writable`` and ``transaction``."""
        return self._db

    @property
    def read_only(self) -> bool:
        """True while the store reads its saved file in place (no write since ``load``)."""
        return self._file is not None

    @classmethod
    def open(cls, path: Path, schema: str) -> Database:
        """Open a saved database read-only in place; ValueError when its schema is not exactly
        ``schema`` (the file is untrusted: see ``_check_schema``)."""
        database = cls.__new__(cls)
        database._in_transaction = False
        # immutable=1: SQLite takes no locks and never looks for a journal; the open file keeps
        # the data readable (and copyable by save) after a later save deletes the file.
        database._file = file = open_regular(path)  # closed on the first write
        try:
            uri = Path(handle_path(file, path)).absolute().as_uri()
            # Readers on several threads (the HTTP service) share this read-only connection:
            # SQLite serialises calls on one connection, and nothing writes through it.
            database._db = sqlite3.connect(
                f"{uri}?mode=ro&immutable=1",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                _defensive(database._db)
                _check_schema(database._db, schema, path)
            except BaseException:
                database._db.close()
                raise
        except BaseException:
            file.close()
            raise
        return database

    def close(self) -> None:
        """Close the connection (and the saved file, if it is still read in place)."""
        self._db.close()
        if self._file is not None:
            self._file.close()
            self._file = None

    def writable(self) -> sqlite3.Connection:
        """The connection to write to: a loaded store is copied into a scratch database first."""
        if self._file is not None:
            scratch = _scratch()
            self._db.backup(scratch)
            # The read-only connection is not closed but dropped: a cursor still iterating it
            # (documents() feeding add()) keeps it, and reads the loaded state, to its end.
            self._file.close()
            self._db, self._file = scratch, None
            if self._in_transaction:
                scratch.execute("BEGIN")
        return self._db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Every write inside commits together, or none does if the block raises."""
        if self._in_transaction:
            raise RuntimeError("a store transaction is already open")
        self._in_transaction = True
        # A read-only store begins no transaction: its first write copies it into a scratch
        # database and begins one there (see writable), so a block that writes nothing copies
        # nothing.
        if self._file is None:
            self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            if self._file is None:
                self._db.execute("ROLLBACK")
            raise
        else:
            if self._file is None:
                self._db.execute("COMMIT")
        finally:
            self._in_transaction = False

    def save(self, path: Path) -> None:
        """Write a complete copy of the database to ``path`` (the caller makes it atomic)."""
        if self._file is not None:
            # Unchanged since load: the saved bytes are the database.
            with open(path, "wb") as out:
                _copy(self._file, out)
            return
        target = sqlite3.connect(path)
        try:
            self._db.backup(target)
        finally:
            target.close()
