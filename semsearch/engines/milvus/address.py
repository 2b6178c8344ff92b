"""Milvus addresses: ``milvus://HOST:PORT/NAME`` (a server) and ``milvus:PATH.db`` (Milvus Lite)."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ...errors import SemsearchError

if TYPE_CHECKING:
    from pymilvus import MilvusClient

SCHEME = "milvus:"
TOKEN_VARIABLE = "SEMSEARCH_MILVUS_TOKEN"
"""Environment variable holding the server's token (``user:password`` or an API key)."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")
_CLIENTS: dict[tuple[str, str], MilvusClient] = {}


def is_milvus(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` names a Milvus index rather than a directory."""
    return isinstance(location, str) and location.startswith(SCHEME)


@dataclass(frozen=True)
class Address:
    """Where a Milvus index lives: the client URI, the collections' name prefix and a token."""

    uri: str
    """What ``MilvusClient`` connects to: ``http://HOST:PORT`` or a ``.db`` file's path."""
    name: str
    """The prefix of the index's collections: NAME for a server, the file's stem for Lite."""
    token: str = ""
    display: str = ""
    """The address as given, without any password or token (safe to print)."""

    @property
    def embedded(self) -> bool:
        return not self.uri.startswith("http")

    @classmethod
    def parse(cls, location: str) -> Address:
        """Parse a ``milvus:`` address; a malformed one is one clear error naming it."""
        if location.startswith("milvus://") and not location.startswith("milvus:///"):
            return cls._server(location)
        path = location[len("milvus://") :] if location.startswith("milvus:///") else None
        path = path if path is not None else location[len(SCHEME) :]
        if not path.endswith(".db") or path.endswith("/.db"):
            raise SemsearchError(
                f"{location}: not a Milvus address; use milvus://HOST:PORT/NAME for a server, "
                "milvus:///ABSOLUTE/PATH.db or milvus:RELATIVE/PATH.db for Milvus Lite"
            )
        file = Path(unquote(path)).resolve()
        name = _checked_name(location, file.stem)
        return cls(uri=str(file), name=name, display=f"milvus://{file}")

    @classmethod
    def _server(cls, location: str) -> Address:
        parts = urlsplit(location)
        name = parts.path.strip("/")
        try:
            port = parts.port or 19530
        except ValueError:
            raise SemsearchError(f"{location}: the port is not a number") from None
        if not parts.hostname or not name:
            raise SemsearchError(f"{location}: a Milvus server address is milvus://HOST:PORT/NAME")
        secret = ""
        if parts.username is not None:
            user, password = unquote(parts.username), unquote(parts.password or "")
            secret = f"{user}:{password}" if password else user
        token = os.environ.get(TOKEN_VARIABLE, "") or secret
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return cls(
            uri=f"http://{host}:{port}",
            name=_checked_name(location, name),
            token=token,
            display=f"milvus://{host}:{port}/{name}",
        )

    def client(self) -> MilvusClient:
        """A client for this address, shared by every engine of the process that uses it (Milvus
        Lite opens its file once per process)."""
        key = (self.uri, self.token)
        if key not in _CLIENTS:
            try:
                from pymilvus import MilvusClient
            except ImportError:
                raise SemsearchError(
                    f"{self.display}: Milvus support is not installed; "
                    'pip install "semsearch[milvus]"'
                ) from None
            if self.embedded and not Path(self.uri).parent.is_dir():
                raise SemsearchError(f"{Path(self.uri).parent}: directory does not exist")
            # pymilvus logs each failed call with its traceback before raising it; semsearch
            # turns the exception into one clear error, so the log would only repeat it.
            quiet = logging.getLogger("pymilvus")
            if quiet.level == logging.NOTSET:
                quiet.setLevel(logging.CRITICAL)
            kwargs: dict[str, Any] = {"token": self.token} if self.token else {}
            try:
                _CLIENTS[key] = MilvusClient(uri=self.uri, timeout=30, **kwargs)
            except Exception as exc:
                raise SemsearchError(f"{self.display}: cannot connect ({_reason(exc)})") from None
        return _CLIENTS[key]


def close(address: Address) -> None:
    """Close this process's client of ``address`` (the next use connects again)."""
    client = _CLIENTS.pop((address.uri, address.token), None)
    if client is not None:
        client.close()


def _checked_name(location: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise SemsearchError(
            f"{location}: index name {name!r} must be letters, digits and underscores, "
            "not starting with a digit"
        )
    return name


def _reason(exc: BaseException) -> str:
    """A Milvus error's message without its code wrapper or a multi-line trace."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message).strip().splitlines()[0]
