"""The HTTP service through real HTTP: routes, paging, filters, writes, errors, the token, the
size limit, and every response checked against the service's own OpenAPI schema."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from serving import Service

from semsearch import Index

ServeFactory = Callable[..., AbstractContextManager[Service]]

COUNCIL = {
    "text": "The council met on Monday. It approved the budget for the new library.",
    "title": "Council approves library budget",
    "id": "council-1",
    "date": "2025-12-01",
    "source": "city-desk",
    "metadata": {"desk": "city"},
}
FLOOD_PAGE = (
    "<html><head><title>Flooding closes road</title></head><body><article>"
    "<p>Flooding closed the main road in Springfield on Tuesday, officials said.</p>"
    "<p>Crews expect to reopen it by Friday if the river falls.</p>"
    "</article></body></html>"
)


class Schema:
    """Validates a response against the route's response schema in /openapi.json."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=_DRAFT)
        self.registry: Registry[Any] = Registry().with_resource("urn:openapi", resource)

    def check(self, method: str, path: str, response: httpx.Response) -> None:
        operation = self.document["paths"][path][method.lower()]
        declared = operation["responses"].get(str(response.status_code))
        assert declared is not None, f"{method} {path}: status {response.status_code} undeclared"
        schema = declared["content"]["application/json"]["schema"]
        validator = Draft202012Validator(
            {"$ref": "urn:openapi#" + schema["$ref"][1:]} if "$ref" in schema else schema,
            registry=self.registry,
        )
        validator.validate(response.json())


_DRAFT = __import__("referencing.jsonschema", fromlist=["DRAFT202012"]).DRAFT202012


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with service.client() as c:
        yield c


@pytest.fixture
def schema(client: httpx.Client) -> Schema:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return Schema(response.json())


def _call(
    client: httpx.Client,
    schema: Schema,
    method: str,
    path: str,
    route: str | None = None,
    **kw: Any,
) -> httpx.Response:
    response = client.request(method, path, **kw)
    schema.check(method, route or path, response)
    assert "Traceback" not in response.text
    return response


def _spans_hold(client: httpx.Client, hits: list[dict[str, Any]]) -> None:
    for hit in hits:
        doc = client.get(f"/documents/{hit['doc_id']}").json()
        assert doc["text"][hit["start"] : hit["end"]] == hit["text"]


def test_health_and_info(client: httpx.Client, schema: Schema, service: Service) -> None:
    health = _call(client, schema, "GET", "/health")
    assert health.json()["status"] == "ok"
    info = _call(client, schema, "GET", "/info").json()
    index = Index.load(service.location)
    assert (info["documents"], info["passages"]) == (len(index), index.passage_count)
    assert info["writes"] is True and info["model"] == index.embedder.name
    assert "path" not in info["details"] and info["details"]["dimension"] == 384


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_search_matches_the_library_and_spans_hold(
    client: httpx.Client, schema: Schema, service: Service, mode: str
) -> None:
    body = {"query": "Afghan migrants crossing into Iran", "k": 3, "mode": mode}
    result = _call(client, schema, "POST", "/search", json=body).json()
    expected = Index.load(service.location).search(body["query"], k=3, mode=mode)  # type: ignore[arg-type]
    assert [(h["doc_id"], h["start"], h["end"]) for h in result["hits"]] == [
        (h.doc_id, h.start, h.end) for h in expected
    ]
    assert [h["score"] for h in result["hits"]] == pytest.approx([h.score for h in expected])
    assert result["hits"][0]["title"] and "metadata" in result["hits"][0]
    _spans_hold(client, result["hits"])


def test_search_and_ask_take_recency(
    client: httpx.Client, schema: Schema, service: Service
) -> None:
    index = Index.load(service.location)
    for recency in (True, False, None):
        body = {"query": "Pakistan", "k": 3, "recency": recency}
        hits = _call(client, schema, "POST", "/search", json=body).json()["hits"]
        expected = index.search("Pakistan", k=3, recency=recency)
        assert [(h["passage_id"], h["score"]) for h in hits] == [
            (h.passage_id, pytest.approx(h.score)) for h in expected
        ]
        body = {"question": "Who crossed into Iran?", "recency": recency}
        assert _call(client, schema, "POST", "/ask", json=body).status_code == 200
    dense = {"query": "Pakistan", "mode": "dense", "recency": True}
    response = _call(client, schema, "POST", "/search", json=dense)
    assert response.status_code == 400 and "recency needs mode 'hybrid'" in response.json()["error"]


def test_paging_walks_the_same_ranking(client: httpx.Client, schema: Schema) -> None:
    whole = client.post("/search", json={"query": "Pakistan", "k": 4}).json()["hits"]
    assert len(whole) == 4
    pages: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = _call(
            client, schema, "POST", "/search", json={"query": "Pakistan", "k": 1, "offset": offset}
        ).json()
        assert page["offset"] == offset
        pages.extend(page["hits"])
        offset = page["next_offset"]
    assert [(h["doc_id"], h["start"], h["rank"]) for h in pages] == [
        (h["doc_id"], h["start"], h["rank"]) for h in whole
    ]
    beyond = client.post("/search", json={"query": "Pakistan", "k": 2, "offset": 10}).json()
    assert beyond["hits"] == [] and beyond["next_offset"] is None


def test_ask_cites_exact_quotes(client: httpx.Client, schema: Schema) -> None:
    answer = _call(
        client, schema, "POST", "/ask", json={"question": "Why did the Afghan migrants die?"}
    ).json()
    assert not answer["abstained"] and answer["citations"]
    for citation in answer["citations"]:
        doc = client.get(f"/documents/{citation['doc_id']}").json()
        assert doc["text"][citation["start"] : citation["end"]] == citation["quote"]
        assert f"[{citation['n']}]" in answer["answer"]
    nothing = client.post("/ask", json={"question": "Who won the 1962 chess olympiad?"}).json()
    assert nothing["abstained"] is True and nothing["citations"] == []


def test_document_holds_text_metadata_and_passages(
    client: httpx.Client, schema: Schema, service: Service
) -> None:
    index = Index.load(service.location)
    for held in index.documents():
        doc = _call(
            client, schema, "GET", f"/documents/{held.id}", route="/documents/{doc_id}"
        ).json()
        assert (doc["id"], doc["text"], doc["title"]) == (held.id, held.text, held.title)
        assert doc["highlights"] == list(held.highlights)
        assert doc["passages"], held.id
        for passage in doc["passages"]:
            assert doc["text"][passage["start"] : passage["end"]] == passage["text"]


def test_filters(client: httpx.Client, schema: Schema) -> None:
    client.post("/documents", json={"documents": [COUNCIL]}).raise_for_status()
    query = {"query": "budget approved by the council", "k": 10}
    everything = client.post("/search", json=query).json()["hits"]
    assert {h["doc_id"] for h in everything} >= {"council-1"}
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({"sources": ["city-*"]}, lambda h: h["source"] == "city-desk"),
        (
            {"date_from": "2025-12-01", "date_to": "2025-12-02"},
            lambda h: h["doc_id"] == "council-1",
        ),
        ({"date_to": "2025-11-30"}, lambda h: (h["date"] or "9999") <= "2025-11-30"),
        ({"doc_ids": ["council-1"]}, lambda h: h["doc_id"] == "council-1"),
    ]
    for filters, allowed in cases:
        hits = _call(client, schema, "POST", "/search", json={**query, "filters": filters}).json()
        assert hits["hits"], filters
        assert all(allowed(h) for h in hits["hits"]), filters
        assert len(hits["hits"]) == sum(allowed(h) for h in everything), filters
    reversed_dates = {"date_from": "2025-12-02", "date_to": "2025-12-01"}
    bad = _call(client, schema, "POST", "/search", json={**query, "filters": reversed_dates})
    assert bad.status_code == 400 and "after date_to" in bad.json()["error"]


def test_add_articles_and_files_then_remove(
    client: httpx.Client, schema: Schema, service: Service
) -> None:
    before = client.get("/info").json()
    files = [
        {"name": "flood.html", "content": FLOOD_PAGE},
        {"name": "more.jsonl", "content": json.dumps({"id": "j1", "text": "Rain fell all week."})},
    ]
    added = _call(
        client, schema, "POST", "/documents", json={"documents": [COUNCIL], "files": files}
    ).json()
    assert (added["added"], added["replaced"], added["unchanged"]) == (3, 0, 0)
    assert added["doc_ids"][0] == "council-1" and "j1" in added["doc_ids"]
    flood_id = added["doc_ids"][1]
    flood = client.get(f"/documents/{flood_id}").json()
    assert flood["title"] == "Flooding closes road" and flood["source"] == "flood.html"
    council = client.get("/documents/council-1").json()
    assert council["metadata"]["desk"] == "city" and council["date"] == "2025-12-01"
    hits = client.post("/search", json={"query": "flooded road Springfield", "k": 1}).json()
    assert hits["hits"][0]["doc_id"] == flood_id

    # The same request again changes nothing: ids derive from content and file name.
    again = client.post("/documents", json={"documents": [COUNCIL], "files": files}).json()
    assert (again["added"], again["unchanged"], again["doc_ids"]) == (0, 3, added["doc_ids"])
    # It was saved: a fresh load from the directory holds it.
    assert "council-1" in Index.load(service.location)

    removed = _call(
        client, schema, "DELETE", "/documents/council-1", route="/documents/{doc_id}"
    ).json()
    assert removed["doc_id"] == "council-1" and removed["passages_removed"] >= 1
    gone = _call(client, schema, "GET", "/documents/council-1", route="/documents/{doc_id}")
    assert gone.status_code == 404
    after = client.get("/info").json()
    assert after["documents"] == before["documents"] + 2
    assert "council-1" not in Index.load(service.location)


BAD_ADDS: list[tuple[dict[str, Any], str]] = [
    ({}, "nothing to add"),
    ({"documents": [{"text": "   "}]}, "documents[0]: text: empty"),
    ({"documents": [{**COUNCIL, "date": "yesterday"}]}, "documents[0]: date: 'yesterday'"),
    ({"documents": [{"title": "no text"}]}, "documents.0.text: Field required"),
    ({"documents": [{"text": "ok", "colour": "red"}]}, "colour: Extra inputs are not permitted"),
    ({"documents": [{"text": "nul \u0000 inside"}]}, "NUL character"),
    ({"files": [{"name": "a.pdf", "content": "x"}]}, "a.pdf: unsupported file type"),
    ({"files": [{"name": "../a.txt", "content": "x"}]}, "files[0]: name: '../a.txt'"),
    ({"files": [{"name": "bad.jsonl", "content": '{"text": "a"}\n{oops'}]}, "bad.jsonl:2: invalid"),
    ({"files": [{"name": "empty.txt", "content": ""}]}, "empty.txt: empty"),
]


@pytest.mark.parametrize(("body", "message"), BAD_ADDS)
def test_bad_adds_are_400_and_change_nothing(
    client: httpx.Client, schema: Schema, body: dict[str, Any], message: str
) -> None:
    before = client.get("/info").json()
    # A good article beside the bad input is not added either: all or nothing.
    if "documents" in body:
        body = {**body, "documents": [*body["documents"], {"text": "A good article.", "id": "g"}]}
    response = _call(client, schema, "POST", "/documents", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert client.get("/info").json() == before
    assert client.get("/documents/g").status_code == 404


BAD_SEARCHES: list[tuple[Any, str]] = [
    ({"query": "x", "k": 0}, "k: Input should be greater than or equal to 1"),
    ({"query": "x", "k": 101}, "k: Input should be less than or equal to 100"),
    ({"query": "x", "offset": 5000}, "offset: Input should be less than or equal to 1000"),
    ({"query": ""}, "query: String should have at least 1 character"),
    ({"query": "x" * 2001}, "query: String should have at most 2000 characters"),
    ({"k": 3}, "query: Field required"),
    ({"query": "x", "mode": "fuzzy"}, "mode: Input should be 'hybrid', 'dense' or 'lexical'"),
    ({"query": "x", "filters": {"date_from": "June"}}, "filters.date_from: Input should be"),
    ({"query": "x", "filter": {}}, "filter: Extra inputs are not permitted"),
    ([1, 2], "body: Input should be a valid dictionary"),
]


@pytest.mark.parametrize(("body", "message"), BAD_SEARCHES)
def test_bad_searches_are_400_with_the_field(
    client: httpx.Client, schema: Schema, body: Any, message: str
) -> None:
    response = _call(client, schema, "POST", "/search", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_invalid_json_and_unknown_routes(client: httpx.Client) -> None:
    broken = client.post(
        "/search", content=b'{"query": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"].startswith("body: invalid JSON")
    assert client.get("/nowhere").json() == {"status": 404, "error": "Not Found"}
    assert client.get("/search").status_code == 405
    missing = client.delete("/documents/no-such-id")
    assert missing.status_code == 404 and "no-such-id" in missing.json()["error"]


def test_ids_with_slashes_and_spaces_round_trip(client: httpx.Client) -> None:
    article = {"text": "Snow closed the pass at dawn.", "id": "wire/2025 12/a b"}
    client.post("/documents", json={"documents": [article]}).raise_for_status()
    got = client.get("/documents/wire%2F2025%2012%2Fa%20b")
    assert got.status_code == 200 and got.json()["id"] == "wire/2025 12/a b"
    assert client.delete("/documents/wire/2025 12/a b").json()["passages_removed"] == 1


def test_request_size_is_bounded(serve: ServeFactory) -> None:
    with serve(allow_writes=True, max_request_bytes=2000) as service, service.client() as client:
        big = {"documents": [{"text": "word " * 1000}]}
        declared = client.post("/documents", json=big)
        assert declared.status_code == 413
        assert declared.json() == {
            "status": 413,
            "error": "request body too large: the limit is 2,000 bytes",
        }

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"documents": [{"text": "'
            for _ in range(100):
                yield b"word " * 20
            yield b'"}]}'

        streamed = client.post(
            "/documents", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert client.get("/info").json()["documents"] == 2
        assert client.post("/search", json={"query": "Iran", "k": 1}).status_code == 200


def test_writes_need_a_token_or_allow_writes(serve: ServeFactory) -> None:
    with serve() as service, service.client() as client:
        refused = client.post("/documents", json={"documents": [COUNCIL]})
        assert refused.status_code == 403
        assert "--allow-writes" in refused.json()["error"]
        assert client.delete("/documents/council-1").status_code == 403
        assert client.get("/info").json()["writes"] is False
        assert client.post("/search", json={"query": "Iran"}).status_code == 200


def test_the_bearer_token(serve: ServeFactory) -> None:
    with serve(token="s3cret") as service:
        with service.client() as anonymous:
            for method, path, body in [
                ("POST", "/search", {"query": "Iran"}),
                ("POST", "/ask", {"question": "Why?"}),
                ("GET", "/info", None),
                ("GET", "/documents/x", None),
                ("POST", "/documents", {"documents": [COUNCIL]}),
                ("DELETE", "/documents/x", None),
            ]:
                response = anonymous.request(method, path, json=body)
                assert response.status_code == 401, (method, path)
                assert response.json() == {"status": 401, "error": "missing bearer token"}
                assert response.headers["www-authenticate"] == "Bearer"
            assert anonymous.get("/health").status_code == 200
            assert anonymous.get("/openapi.json").status_code == 200
        with service.client("wrong") as wrong:
            response = wrong.post("/search", json={"query": "Iran"})
            assert response.status_code == 401 and response.json()["error"] == "wrong bearer token"
        with service.client("s3cret") as holder:
            assert holder.post("/search", json={"query": "Iran"}).status_code == 200
            # A token holder may write even without --allow-writes.
            assert holder.post("/documents", json={"documents": [COUNCIL]}).status_code == 200
            assert holder.get("/info").json()["documents"] == 3


def test_schema_declares_typed_models(schema: Schema) -> None:
    components = schema.document["components"]["schemas"]
    for name in ("SearchRequest", "SearchResponse", "AnswerResponse", "DocumentOut", "AddRequest"):
        assert name in components
    search = schema.document["paths"]["/search"]["post"]
    assert search["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/SearchRequest"
    )
    assert components["SearchRequest"]["properties"]["k"]["maximum"] == 100
    assert "HTTPBearer" in schema.document["components"]["securitySchemes"]
