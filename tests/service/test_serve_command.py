"""``semsearch serve`` as a user runs it: real processes on 127.0.0.1, stopped with Ctrl-C;
and several of them sharing one Milvus index, one writing while the others read."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from click.testing import CliRunner
from serving import BATCH, MARK, hammer

from semsearch import Index, read_articles
from semsearch.cli import cli
from semsearch.embeddings.embedder import Embedder

ROOT = Path(__file__).resolve().parents[2]
_URL = re.compile(r"semsearch serve: (http://127\.0\.0\.1:\d+)")


@contextlib.contextmanager
def serving(
    index: str | Path, *options: str, token: str | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``semsearch serve --index INDEX --port 0 OPTIONS`` until the block ends (then Ctrl-C)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("SEMSEARCH_API_TOKEN", None)
    if token is not None:
        env["SEMSEARCH_API_TOKEN"] = token
    semsearch = str(Path(sys.executable).with_name("semsearch"))
    command = [semsearch, "serve", "--index", str(index), "--port", "0"]
    log = tempfile.NamedTemporaryFile("w+", prefix="semsearch-serve-", suffix=".log")  # noqa: SIM115
    proc = subprocess.Popen(
        [*command, "--no-access-log", *options],
        stderr=log,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if match := _URL.search(Path(log.name).read_text()):
                url = match.group(1)
        assert url is not None, Path(log.name).read_text()
        _wait_healthy(url)
        yield url, proc
    except BaseException:
        sys.stderr.write(f"--- {' '.join(command)}\n{Path(log.name).read_text()}")
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} never became healthy")
        time.sleep(0.1)


def test_serve_with_a_token_then_ctrl_c(index_copy: Path) -> None:
    with serving(index_copy, token="t0ken") as (url, proc):
        assert httpx.post(f"{url}/search", json={"query": "Iran"}).status_code == 401
        headers = {"Authorization": "Bearer t0ken"}
        hits = httpx.post(f"{url}/search", json={"query": "Iran", "k": 2}, headers=headers)
        assert hits.status_code == 200 and len(hits.json()["hits"]) == 2
        info = httpx.get(f"{url}/info", headers=headers).json()
        assert info["writes"] is True and info["location"] == str(index_copy)
    assert proc.returncode == 0


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_serve_errors_are_one_line(tmp_path: Path, index_copy: Path) -> None:
    code, out = _run("serve", "--index", str(tmp_path / "none"))
    assert code == 1 and out.strip().endswith("no index here (build one with `semsearch index`)")
    assert out.count("\n") == 1 and out.startswith("error: ")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out = _run("serve", "--index", str(index_copy), "--port", str(port))
    assert code == 1 and out.startswith(f"error: cannot serve on 127.0.0.1:{port}: ")
    assert "in use" in out
    code, out = _run("serve", "--index", str(index_copy), env={"SEMSEARCH_API_TOKEN": " "})
    assert code == 1 and "SEMSEARCH_API_TOKEN is set but empty" in out
    code, out = _run("serve", "--help")
    assert code == 0 and "Authorization: Bearer TOKEN" in out and "--allow-writes" in out


def test_serve_processes_share_one_milvus_index(milvus_server: str, embedder: Embedder) -> None:
    from semsearch.engines.milvus import Address
    from semsearch.engines.milvus.address import close
    from semsearch.engines.milvus.schema import names

    location = f"{milvus_server}/serve_shared"
    address = Address.parse(location)
    built = Index(model=embedder, engine=location)
    built.add(list(read_articles([ROOT / "samples" / "news"])))
    built.save()
    try:
        with serving(location, "--allow-writes") as (writer, _), serving(location) as (reader, _):
            assert httpx.get(f"{reader}/info").json()["documents"] == 2
            refused = httpx.post(f"{reader}/documents", json={"documents": [{"text": "x"}]})
            assert refused.status_code == 403
            reads, wrong = hammer(reader, writer, batches=4)
            assert wrong == [] and reads >= 4
            # What one process wrote, the other sees once the write has returned.
            hits = httpx.post(
                f"{reader}/search", json={"query": MARK, "k": 100, "mode": "lexical"}
            ).json()["hits"]
            assert len({h["doc_id"] for h in hits}) == 4 * BATCH
            assert httpx.get(f"{reader}/documents/shared").json()["metadata"]["version"] == 3
            assert httpx.get(f"{reader}/info").json()["documents"] == 2 + 4 * BATCH + 1
    finally:
        client = address.client()
        for collection in names(address.name).values():
            if client.has_collection(collection):
                client.drop_collection(collection)
        close(address)
