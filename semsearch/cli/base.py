"""The command group, its error handling and the helpers every command shares."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from ..errors import InputError, SemsearchError, SemsearchWarning, SkippedInputWarning


class CommandError(click.ClickException):
    """A failure reported as one ``error: ...`` line, never a traceback."""

    def __init__(self, message: str) -> None:
        # One line whatever the message holds: scripts read stderr line by line.
        super().__init__(" ".join(message.splitlines()))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file or sys.stderr)


class Interrupted(CommandError):
    """Ctrl-C: the conventional 128 + SIGINT status, so shells and scripts see an interrupt."""

    exit_code = 130


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


class _Group(click.Group):
    """Maps semsearch's own errors, I/O errors and Ctrl-C to one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SemsearchError as exc:
            raise CommandError(str(exc)) from None
        except BrokenPipeError:
            raise  # click closes stdout quietly: `semsearch search ... | head` is no error
        except OSError as exc:
            raise CommandError(_os_message(exc)) from None
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None


@contextlib.contextmanager
def _warnings_to_stderr(skipped: list[str] | None = None) -> Iterator[None]:
    """Print each warning as it happens as one ``warning: ...`` line; count skipped files."""

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        if skipped is not None and issubclass(category, SkippedInputWarning):
            skipped.append(str(message))
        click.echo(f"warning: {' '.join(str(message).splitlines())}", err=True)

    with warnings.catch_warnings():
        # Every skipped file must be reported, not only the first from each line of code.
        warnings.simplefilter("always", SemsearchWarning)
        warnings.showwarning = show
        yield


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from .. import __version__

        click.echo(f"semsearch {__version__}")
        ctx.exit()


def _check_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a date as YYYY-MM-DD") from None
    return value


class IndexLocation(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.5 only
    """An index directory, or a Milvus address kept as the string it is (a Path would fold its
    ``//``)."""

    name = "index"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Path | str:
        text = str(value)
        return text if text.startswith("milvus:") else Path(text)


INDEX_OPTION = click.option(
    "--index",
    "index_dir",
    required=True,
    type=IndexLocation(),
    help="Index directory, or milvus://HOST:PORT/NAME (a Milvus server), or milvus:PATH.db "
    "(Milvus Lite).",
)


LOAD_MODEL_OPTION = click.option(
    "--model",
    "model",
    metavar="MODEL",
    help="The embedding model the index was built with, needed only when that is a local "
    "path: a path an index records is never loaded unless given here.",
)

RECENCY_OPTION = click.option(
    "--recency/--no-recency",
    default=None,
    help="Favour recent articles for every query, or for none. Without either, only a query "
    'that names a recent time ("this week", "yesterday", "recently") favours them.',
)


def shown(location: Path | str) -> str:
    """An index location as printed: a Milvus address without its password or token."""
    if isinstance(location, str):
        from ..engines.milvus import Address

        return Address.parse(location).display
    return str(location)


def filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--date-from, --date-to and --source, passed to the command as one ``filters`` value."""

    @functools.wraps(command)
    def wrapper(
        *args: Any, date_from: str | None, date_to: str | None, source: tuple[str, ...], **kw: Any
    ) -> Any:
        from ..types import Filters

        if (
            date_from
            and date_to
            and dt.date.fromisoformat(date_from) > dt.date.fromisoformat(date_to)
        ):
            problem = (
                f"--date-from {date_from} is after --date-to {date_to}: no date is in that range"
            )
            raise InputError(None, problem)  # before the index and its model are loaded
        filters = Filters(date_from=date_from, date_to=date_to, sources=list(source) or None)
        return command(*args, filters=filters, **kw)

    for option in (
        click.option(
            "--source", multiple=True, metavar="GLOB", help="Only these sources (repeat)."
        ),
        click.option("--date-to", callback=_check_date, metavar="YYYY-MM-DD", help="Inclusive."),
        click.option("--date-from", callback=_check_date, metavar="YYYY-MM-DD", help="Inclusive."),
    ):
        wrapper = option(wrapper)
    return wrapper


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
def cli() -> None:
    """Semantic search over news articles.

    Exit status: 0 success, 1 error (one "error: ..." line on stderr), 2 usage error,
    130 interrupted.
    """


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
