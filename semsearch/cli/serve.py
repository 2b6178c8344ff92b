"""``semsearch serve``: the HTTP service over an index, on uvicorn."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import click

from ..errors import SemsearchError
from .base import LOAD_MODEL_OPTION, IndexLocation, cli, shown

TOKEN_VARIABLE = "SEMSEARCH_API_TOKEN"


@cli.command("serve")
@click.option(
    "--index",
    "index_dir",
    required=True,
    type=IndexLocation(),
    help="Index directory, or milvus://HOST:PORT/NAME, or milvus:PATH.db.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on (0: a free one, printed).",
)
@click.option(
    "--allow-writes",
    is_flag=True,
    help=f"Accept POST and DELETE /documents without a token (with {TOKEN_VARIABLE} set, "
    "writes are always accepted from holders of the token).",
)
@click.option(
    "--max-request-bytes",
    type=click.IntRange(1),
    default=10 * 1024 * 1024,
    show_default=True,
    help="Largest request body accepted (413 beyond).",
)
@click.option("--access-log/--no-access-log", default=True, help="Log every request.")
@LOAD_MODEL_OPTION
def serve_command(
    index_dir: Path | str,
    host: str,
    port: int,
    allow_writes: bool,
    max_request_bytes: int,
    access_log: bool,
    model: str | None,
) -> None:
    """Serve the HTTP API (search, ask, documents, info, health; OpenAPI at /openapi.json).

    With SEMSEARCH_API_TOKEN set, every request but /health and the schema needs
    "Authorization: Bearer TOKEN". It listens on 127.0.0.1 unless --host says otherwise.
    """
    from .. import engines

    token = os.environ.get(TOKEN_VARIABLE)
    if token is not None and not token.strip():
        raise SemsearchError(f"{TOKEN_VARIABLE} is set but empty: set a token or unset it")
    if not engines.exists(index_dir):
        raise SemsearchError(
            f"{shown(index_dir)}: no index here (build one with `semsearch index`)"
        )
    try:
        import uvicorn

        from ..service import ServedIndex, create_app
    except ImportError as exc:  # fastapi and uvicorn are an optional extra
        raise SemsearchError(
            f"serve needs fastapi and uvicorn ({exc.name or exc} is missing): "
            "pip install 'semsearch[service]'"
        ) from None
    listener = _listen(host, port)
    if token is None and not _loopback(host):
        click.echo(
            f"warning: serving on {host} without {TOKEN_VARIABLE}: anyone who can reach "
            "this port can read the index",
            err=True,
        )
    click.echo(f"loading {shown(index_dir)} and the model …", err=True)
    served = ServedIndex(index_dir, model=model)
    app = create_app(
        served, token=token, allow_writes=allow_writes, max_request_bytes=max_request_bytes
    )
    bound_host, bound_port = listener.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    writes = "writes allowed" if token is not None or allow_writes else "read-only"
    click.echo(
        f"semsearch serve: http://{shown_host}:{bound_port}  ({writes}; API docs at /docs; "
        "Ctrl-C to stop)",
        err=True,
    )
    config = uvicorn.Config(app, log_level="info", access_log=access_log, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[listener])
    except KeyboardInterrupt:
        # uvicorn has stopped gracefully (requests answered) and raises Ctrl-C again after:
        # for a server, Ctrl-C is how it is stopped, not a failure.
        click.echo("semsearch serve: stopped", err=True)
    finally:
        served.close()
        listener.close()


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, so a taken port is one clear error before loading."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        raise SemsearchError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return listener


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
