"""``semsearch demo``: serve the Gradio demo over an index."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import SemsearchError
from .base import IndexLocation, cli, shown

DEFAULT_INDEX = Path("indexes") / "news"


@cli.command("demo")
@click.option(
    "--index",
    "index_dir",
    type=IndexLocation(),
    default=str(DEFAULT_INDEX),
    show_default=True,
    help="Index directory or Milvus address to open (articles added in the demo are saved to it).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port [default: the first free one from 7860].",
)
def demo_command(index_dir: Path | str, host: str, port: int | None) -> None:
    """Serve the web demo (ask, search, add articles) and print its local URL."""
    from .. import engines

    if not engines.exists(index_dir):
        raise SemsearchError(
            f"{shown(index_dir)}: no index here (build one with `semsearch index`)"
        )
    try:
        from ..demo import build, close_index, launch
    except ImportError as exc:  # gradio is an optional extra
        raise SemsearchError(
            f"the demo needs gradio ({exc.name or exc} is missing): pip install 'semsearch[demo]'"
        ) from None

    click.echo(f"loading {shown(index_dir)} and the model …", err=True)
    app = build(index_dir)  # loads the model and the index now, once for the whole process
    try:
        url = launch(app, host=host, port=port)
    except OSError as exc:  # e.g. the port is taken
        raise SemsearchError(f"cannot serve on {host}:{port or 'a free port'}: {exc}") from None
    click.echo(f"semsearch demo: {url}  (Ctrl-C to stop)")
    try:
        app.block_thread()
    finally:
        app.close()
        close_index(index_dir)
