"""The collections of one Milvus index as rows: connection, meta record, paged reads."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import IndexFormatError, SemsearchError
from ..base import IndexSettings
from ..terms import Tokenizer
from . import expressions as ex
from . import schema
from .address import Address, _reason

if TYPE_CHECKING:
    from pymilvus import MilvusClient

QUERY_ROWS = 16_384
"""The most rows (and the largest top-k) one Milvus request returns."""
IN_LIST = 1_000
"""Values per ``in [...]`` list: longer lists are sent as several requests."""


class Collections:
    """One index's collections, read and written as rows; the engine searches over them."""

    def __init__(self, address: Address, *, vector_index: str = "auto") -> None:
        self.address = address
        _ = self.client  # connects now: an unreachable server fails here, not mid-write
        self.names = schema.names(address.name)
        self.tokenizer = Tokenizer()
        if vector_index not in schema.VECTOR_INDEX_TYPES:
            raise ValueError(
                f"unknown vector index {vector_index!r}; choose from "
                f"{', '.join(schema.VECTOR_INDEX_TYPES)}"
            )
        self.vector_index = vector_index
        self._settings: IndexSettings | None = None
        self._groups: dict[int, int] = {}
        """Duplicate groups of passages returned by recent searches, kept for collapse."""
        with self._errors():
            if self.client.has_collection(self.names["meta"]):
                for name in self.names.values():
                    if self.client.has_collection(name):
                        self.client.load_collection(name)  # a reopened one must be loaded
                self._settings = self._read_settings()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Milvus's exceptions become one clear error naming the index."""
        from pymilvus.exceptions import MilvusException

        try:
            yield
        except MilvusException as exc:
            raise SemsearchError(f"{self.address.display}: {_reason(exc)}") from None

    @property
    def client(self) -> MilvusClient:
        """The process's client of this address (reconnected after ``address.close``)."""
        return self.address.client()

    @property
    def location(self) -> str:
        return self.address.display

    @property
    def settings(self) -> IndexSettings | None:
        return self._settings

    # -- meta --------------------------------------------------------------------------------

    def meta(self, key: str) -> dict[str, Any] | None:
        rows = self.client.query(self.names["meta"], ids=[key], output_fields=["value"])
        if not rows:
            return None
        try:
            value = json.loads(rows[0]["value"])
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise IndexFormatError(f"{self.location}: the {key} record is not readable")
        return value

    def put_meta(self, key: str, value: dict[str, Any]) -> None:
        row = {"key": key, "value": json.dumps(value, sort_keys=True), schema.PAD: [0.0, 0.0]}
        self.client.upsert(self.names["meta"], [row])

    def _read_settings(self) -> IndexSettings | None:
        stored = self.meta("settings")
        if stored is None:
            return None
        if stored.get("format_version") != schema.FORMAT_VERSION:
            raise IndexFormatError(
                f"{self.location}: index format {stored.get('format_version')!r}, this "
                f"semsearch reads format {schema.FORMAT_VERSION}"
            )
        self.vector_index = stored.get("vector_index", self.vector_index)
        try:
            return IndexSettings(**stored["index"])
        except (KeyError, TypeError):
            raise IndexFormatError(f"{self.location}: the settings record is incomplete") from None

    def pending(self) -> list[int]:
        """Writes begun and not yet committed (or abandoned): their rows are hidden."""
        state = self.meta("state") if self._settings is not None else None
        return [int(t) for t in (state or {}).get("pending", {})]

    def _visible(self) -> str:
        return ex.visible(self.pending())

    # -- reading rows ------------------------------------------------------------------------

    def rows(self, part: str, expr: str, fields: Sequence[str]) -> list[dict[str, Any]]:
        """Every row of a collection matching ``expr``. Milvus returns at most ``QUERY_ROWS``
        rows a request, in no set order, so a larger answer is read in windows of that many
        primary keys (keys are unique, so no window holds more)."""
        if self._settings is None:
            return []
        name, key = self.names[part], schema.KEYS[part]
        wanted = list(dict.fromkeys([*fields, key]))
        with self._errors():
            rows = self.client.query(name, filter=expr, output_fields=wanted, limit=QUERY_ROWS)
            if len(rows) < QUERY_ROWS:
                return list(rows)
            end = int(self.meta("state")["next_" + key])  # type: ignore[index]
            out: list[dict[str, Any]] = []
            for low in range(0, end, QUERY_ROWS):
                window = f"{key} >= {low} and {key} < {low + QUERY_ROWS}"
                out.extend(
                    self.client.query(
                        name, filter=ex.both(window, expr), output_fields=wanted, limit=QUERY_ROWS
                    )
                )
            return out

    def rows_in(
        self, part: str, field: str, values: Sequence[Any], fields: Sequence[str], where: str = ""
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(values), IN_LIST):
            chunk = values[i : i + IN_LIST]
            listed = ex.numbers(chunk) if field == "pid" else ex.strings(chunk)
            out.extend(self.rows(part, ex.both(f"{field} in {listed}", where), fields))
        return out

    def date_summary(self, documents: int) -> dict[str, Any]:
        """As the local engine's, from each document's first passage, which carries its date
        (``documents``: how many are held). Whether a date is approximate is kept only in each
        document's record: not counted."""
        first_passages = ex.both('ordinal == 0 and date != ""', self._visible())
        dates = sorted(r["date"] for r in self.rows("passages", first_passages, ["date"]))
        return {
            "dated": len(dates),
            "approximate": None,
            "undated": documents - len(dates),
            "first": dates[0] if dates else None,
            "last": dates[-1] if dates else None,
        }

    def count(self, part: str, expr: str) -> int:
        if self._settings is None:
            return 0
        with self._errors():
            rows = self.client.query(self.names[part], filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _remember(self, rows: Sequence[dict[str, Any]]) -> None:
        if len(self._groups) > 1_000_000:
            self._groups.clear()
        self._groups.update((r["pid"], r["dup_of"] or r["pid"]) for r in rows)
