"""The FastAPI application: routes, the bearer token, request limits and errors as JSON."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import IndexFormatError, InputError, SemsearchError
from .articles import read_request
from .models import (
    AddRequest,
    AddResponse,
    AnswerResponse,
    AskRequest,
    DocumentOut,
    ErrorResponse,
    HealthResponse,
    HitOut,
    InfoResponse,
    PassageOut,
    RemoveResponse,
    SearchRequest,
    SearchResponse,
)
from .state import ServedIndex

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "ServiceError", "create_app"]

DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024
READ_ATTEMPTS = 5
_log = logging.getLogger("semsearch.service")
_BEARER = HTTPBearer(auto_error=False, description="SEMSEARCH_API_TOKEN, when one is set.")


class ServiceError(HTTPException):
    """An error answered as ``ErrorResponse`` with this status."""


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse} for status in (400, *statuses)}


def create_app(
    served: ServedIndex,
    *,
    token: str | None = None,
    allow_writes: bool = False,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> FastAPI:
    """The service over ``served``. With ``token``, every route but ``/health`` and the schema
    needs ``Authorization: Bearer TOKEN``; writes are refused unless a token is set or
    ``allow_writes``; a request body over ``max_request_bytes`` is refused (413)."""
    writes = token is not None or allow_writes

    def authorized(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        if token is None:
            return
        given = "" if credentials is None else credentials.credentials
        if not hmac.compare_digest(given.encode(), token.encode()):
            problem = "missing bearer token" if credentials is None else "wrong bearer token"
            raise ServiceError(401, problem, headers={"WWW-Authenticate": "Bearer"})

    def writable() -> None:
        if not writes:
            raise ServiceError(
                403, "writes are disabled: set SEMSEARCH_API_TOKEN or serve with --allow-writes"
            )

    app = FastAPI(
        title="semsearch",
        version=__version__,
        description="Semantic search and cited answers over news articles, with exact offsets.",
    )
    api = APIRouter(dependencies=[Depends(authorized)])
    _handle_errors(app)
    app.add_middleware(_BodyLimit, limit=max_request_bytes)

    @api.post("/search", responses=_errors(401))
    def search(body: SearchRequest) -> SearchResponse:
        """The best passages for ``query``, ``k`` per page from ``offset``, best first."""
        with served.reading() as index:
            hits = index.search(
                body.query,
                k=body.offset + body.k + 1,
                filters=body.filters.to_filters(),
                mode=body.mode,
                recency=body.recency,
            )
        page = hits[body.offset : body.offset + body.k]
        more = len(hits) > body.offset + body.k
        return SearchResponse(
            query=body.query,
            mode=body.mode,
            offset=body.offset,
            hits=[HitOut.of(h) for h in page],
            next_offset=body.offset + body.k if more else None,
        )

    @api.post("/ask", responses=_errors(401))
    def ask(body: AskRequest) -> AnswerResponse:
        """An answer made of cited quotes from the ``k`` best passages, or an abstention."""
        with served.reading() as index:
            answer = index.ask(
                body.question, k=body.k, filters=body.filters.to_filters(), recency=body.recency
            )
        return AnswerResponse.model_validate(answer.to_dict())

    @api.get("/documents/{doc_id:path}", responses=_errors(401, 404, 503))
    def document(doc_id: str) -> DocumentOut:
        """A document's text, metadata and passages with their offsets into its text."""
        for _ in range(READ_ATTEMPTS):
            with served.reading() as index:
                doc = _known(index.document, doc_id)
                passages = index.passages(doc_id)
            # A Milvus index is read live: a write committed between the two reads would pair
            # one version's text with another's passages. Read again until they agree.
            if all(doc.text[p.start : p.end] == p.text for p in passages):
                return DocumentOut(
                    id=doc.id,
                    title=doc.title,
                    text=doc.text,
                    source=doc.source,
                    url=doc.url,
                    date=doc.date,
                    date_approximate=doc.date_approximate,
                    dateline=doc.dateline,
                    highlights=list(doc.highlights),
                    metadata=doc.metadata,
                    passages=[
                        PassageOut(
                            id=p.id, ordinal=p.ordinal, start=p.start, end=p.end, text=p.text
                        )
                        for p in passages
                    ],
                )
        raise ServiceError(503, f"document {doc_id!r} kept changing while it was read: retry")

    @api.post("/documents", dependencies=[Depends(writable)], responses=_errors(401, 403, 413))
    def add(body: AddRequest) -> AddResponse:
        """Add articles and files, all or nothing, and save; a document whose id is held is
        replaced. Searches see all of them at once, after the save."""
        docs, said = read_request(body)
        report = served.write(lambda index: index.add(docs))
        return AddResponse(
            added=report.added,
            replaced=report.replaced,
            unchanged=report.unchanged,
            passages=report.passages,
            embedded=report.embedded,
            doc_ids=[d.id for d in docs],
            warnings=said,
        )

    @api.delete(
        "/documents/{doc_id:path}",
        dependencies=[Depends(writable)],
        responses=_errors(401, 403, 404),
    )
    def remove(doc_id: str) -> RemoveResponse:
        """Remove a document and its passages, and save."""
        with served.reading() as index:
            _known(index.document, doc_id)
        removed = served.write(lambda index: _known(index.remove, doc_id))
        return RemoveResponse(doc_id=doc_id, passages_removed=removed)

    @api.get("/info", responses=_errors(401))
    def info() -> InfoResponse:
        """What the index holds and how: model, counts, chunking, vector index, duplicates."""
        with served.reading() as index:
            details = index.info()
        details.pop("path", None)
        return InfoResponse(
            location=_shown(served),
            model=details.pop("model"),
            backend=details.pop("backend"),
            documents=details.pop("documents"),
            passages=details.pop("passages"),
            writes=writes,
            details=details,
        )

    @app.get("/health")
    def health() -> HealthResponse:
        """``ok`` while the service is up (needs no token)."""
        return HealthResponse(status="ok", version=__version__)

    app.include_router(api)

    return app


def _known(lookup: Callable[[str], Any], doc_id: str) -> Any:
    try:
        return lookup(doc_id)
    except KeyError:
        raise ServiceError(404, f"no document with id {doc_id!r}") from None
    except SemsearchError as exc:
        if str(exc).startswith("no document with id"):
            raise ServiceError(404, str(exc)) from None
        raise


def _shown(served: ServedIndex) -> str:
    location = served.location
    if isinstance(location, str):
        from ..engines.milvus import Address

        return Address.parse(location).display
    return str(location)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorResponse(status=status, error=" ".join(message.split()))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _handle_errors(app: FastAPI) -> None:
    """Every failure is an ``ErrorResponse``: bad input 400, unknown id 404, too large 413,
    no token 401; anything unexpected 500 with its traceback in the server's log only."""

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}) or None)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            loc = error.get("loc", ())
            if error.get("type") == "json_invalid":
                reason = (error.get("ctx") or {}).get("error", "")
                at = f" at character {loc[-1]}" if len(loc) > 1 else ""
                problems.append(f"body: invalid JSON{at}: {reason}".rstrip(": "))
                continue
            where = ".".join(str(part) for part in loc if part != "body")
            problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
        return _error(400, "; ".join(problems) or "invalid request")

    @app.exception_handler(InputError)
    async def bad_input(_request: Request, exc: InputError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(SemsearchError)
    async def refused(_request: Request, exc: SemsearchError) -> JSONResponse:
        if isinstance(exc, IndexFormatError):
            _log.error("the index cannot be read: %s", exc)
            return _error(500, f"the index cannot be read: {exc}")
        return _error(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unexpected error", exc_info=exc)
        return _error(500, "internal error (the service's log has the details)")


class _BodyLimit:
    """Refuses a body over ``limit`` bytes with 413: at once when its Content-Length says so,
    else as soon as that many bytes have arrived (a chunked upload is never read whole)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body too large: the limit is {self.limit:,} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _error(413, too_large)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # Raised inside the route's body parsing, answered by the HTTPException handler.
                raise ServiceError(413, too_large)
            return message

        await self.app(scope, counted, send)
