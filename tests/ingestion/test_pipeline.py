"""The ingestion pipeline end to end: FakeWeb → fetch → extract → chunk → embed → Qdrant (embedded),
and answers grounded in the passages, with citations, through the chat websocket."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client

from chat.api_keys import api_key_create
from chat.models import Message
from ingestion.embedder import local_embedder
from ingestion.models import Chunk, Document, Source
from ingestion.retrieval import retrieve
from ingestion.services import source_ingest
from ingestion.vectorstore import vector_store
from tests.conftest import make_conversation, open_socket
from tests.fakes.web import ARTICLE_FACT, ARTICLE_NOISE, ARTICLE_TITLE, CSV_FACT_ROW, PDF_PAGE2_FACT
from tests.fakes.web import Document as WebDocument


def ingest(owner, url: str, conversation=None) -> Source:
    source = Source.objects.create(owner=owner, url=url)
    if conversation is not None:
        conversation.sources.add(source)
    source_ingest(source_id=source.pk, final_attempt=True)
    source.refresh_from_db()
    return source


def vector_count(document: Document) -> int:
    embedder = local_embedder()
    return vector_store().count(model_id=embedder.model_id, dimensions=embedder.dimensions, document_id=document.pk)


@pytest.mark.django_db
def test_a_web_page_becomes_chunks_and_vectors(alice, web) -> None:
    source = ingest(alice, web.url("/article.html"))

    assert source.status == "ready", source.error
    document = source.document
    assert document.title.startswith("The Zephyr Lighthouse") and document.kind == "html"
    texts = " ".join(Chunk.objects.filter(document=document).values_list("text", flat=True))
    assert ARTICLE_FACT in texts and not any(noise in texts for noise in ARTICLE_NOISE)
    assert document.chunk_count == Chunk.objects.filter(document=document).count() == vector_count(document)


@pytest.mark.django_db
def test_attaching_an_unchanged_url_again_is_instant(alice, bob, web) -> None:
    first = ingest(alice, web.url("/report.pdf"))
    chunk_ids = list(Chunk.objects.filter(document=first.document).values_list("id", flat=True))

    second = ingest(bob, web.url("/report.pdf"))

    assert second.status == "ready" and second.document_id == first.document_id
    assert web.full_bodies["/report.pdf"] == 1, "the second attachment only made a conditional request"
    assert web.hits["/report.pdf"] == 2
    assert list(Chunk.objects.filter(document=first.document).values_list("id", flat=True)) == chunk_ids
    assert vector_count(first.document) == first.document.chunk_count


@pytest.mark.django_db
def test_changed_content_is_ingested_again(alice, web) -> None:
    first = ingest(alice, web.url("/notes.txt"))
    web.set_content("/notes.txt", b"Completely new timetable: the ferry now leaves at 06:05.")

    second = ingest(alice, web.url("/notes.txt"))

    assert second.status == "ready" and second.document_id != first.document_id
    assert "06:05" in Chunk.objects.get(document=second.document).text


@pytest.mark.django_db
def test_the_same_bytes_at_another_address_are_embedded_once(alice, web) -> None:
    first = ingest(alice, web.url("/article.html"))
    second = ingest(alice, web.url("/gzip/article.html"))

    assert second.document_id == first.document_id
    assert Document.objects.count() == 1


@pytest.mark.django_db
def test_running_the_task_again_after_a_crash_adds_nothing_twice(alice, web) -> None:
    source = ingest(alice, web.url("/data.csv"))
    count = vector_count(source.document)
    Source.objects.filter(pk=source.pk).update(status="embedding")  # as if the worker died here
    Document.objects.filter(pk=source.document_id).update(status="pending")

    source_ingest(source_id=source.pk, final_attempt=True)

    source.refresh_from_db()
    assert source.status == "ready" and vector_count(source.document) == count == source.document.chunk_count


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/status/404", "not found"),
        ("/status/500", "500"),
        ("/empty", "empty"),
        ("/image.png", "binary data"),
        ("/encrypted.pdf", "password"),
        ("/malformed.pdf", "damaged"),
        ("/scanned.pdf", "no text layer"),
        ("/redirect/metadata", "169.254.169.254"),
        ("/bomb", "zip bomb"),
        ("/slow", "too long"),
        ("/oversized", "larger than the limit"),
        ("/declared-huge", "larger than the limit"),
        ("/loop/a", "redirected more than"),
        ("/redirect/file", "file"),
        ("/binary.html", "binary data"),
        ("/brotli", "cannot be read"),
        ("/gzip/truncated", "damaged"),
        ("/header-only.csv", "no data rows"),
    ],
)
def test_bad_inputs_fail_with_a_reason(alice, web, settings, path, reason) -> None:
    settings.FETCH_MAX_BYTES = 1024 * 1024  # /oversized streams 4 MB without a length
    web.documents["/header-only.csv"] = WebDocument(b"part_no,price\n", "text/csv")
    source = ingest(alice, web.url(path))

    assert source.status == "failed"
    assert reason.lower() in source.error.lower(), source.error
    ok = ingest(alice, web.url("/notes.md"))
    assert ok.status == "ready", "a failure affects nothing else"


@pytest.mark.django_db
def test_blocked_addresses_fail_with_a_reason_and_nothing_is_dialled(alice, web, monkeypatch) -> None:
    """A host name resolving to a private address (DNS faked), and a literal metadata address."""
    import socket

    from ingestion.fetcher import SafeFetcher

    dialled: list[tuple[str, int]] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: tuple[str, int]) -> None:
        dialled.append(tuple(address[:2]))  # type: ignore[arg-type]
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"the test does not dial {address[0]}")
        real_connect(sock, address)  # Redis, for the status updates

    monkeypatch.setattr(socket.socket, "connect", connect)

    def resolver(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    for url, reason in [
        ("http://intranet.example/wiki", "a private network address (10.1.2.3)"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://0x7f000001:8080/admin", "127.0.0.1"),
    ]:
        source = Source.objects.create(owner=alice, url=url)
        source_ingest(source_id=source.pk, final_attempt=True, fetcher=SafeFetcher(resolver=resolver, allowlist=[]))
        source.refresh_from_db()
        assert source.status == "failed" and reason in source.error, source.error
        assert "only public addresses" in source.error

    assert [address for address in dialled if address[0] != "127.0.0.1" or address[1] == 8080] == []
    assert not Document.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("town\tpopulation\nZürich\t421878\nGenève\t203856\n".encode("utf-16"), "text/csv"),  # BOM, tabs
        ("town;population;note\r\nZürich;421878\r\nGenève;203856;lake;extra\r\n".encode("cp1252"), "text/csv"),
        ('town,population,note\n"Zürich",421878,"on the\nLimmat"\nGenève\n'.encode(), "text/csv; charset=utf-8"),
    ],
    ids=["utf-16-tabs", "cp1252-ragged", "quoted-newline-short-row"],
)
def test_csvs_in_odd_encodings_or_with_ragged_rows_are_read(alice, web, body, content_type) -> None:
    web.documents["/odd.csv"] = WebDocument(body, content_type)

    source = ingest(alice, web.url("/odd.csv"))

    assert source.status == "ready", source.error
    text = " ".join(Chunk.objects.filter(document=source.document).values_list("text", flat=True))
    assert "Zürich" in text and "Genève" in text


@pytest.mark.django_db
def test_latin1_csv_with_ragged_rows_is_read(alice, web) -> None:
    source = ingest(alice, web.url("/latin1.csv"))

    assert source.status == "ready", source.error
    assert "Zürich" in " ".join(Chunk.objects.filter(document=source.document).values_list("text", flat=True))


@pytest.mark.django_db
def test_retrieval_finds_exact_figures_and_paraphrases(alice, web) -> None:
    documents = [ingest(alice, web.url(p)).document_id for p in ("/article.html", "/report.pdf", "/data.csv")]

    by_figure = retrieve(document_ids=documents, query="tidal range 7.3 metres", limit=3)
    by_name = retrieve(document_ids=documents, query="Quillon", limit=3)
    by_meaning = retrieve(document_ids=documents, query="When did the lighthouse start operating?", limit=3)

    assert PDF_PAGE2_FACT in by_figure[0].text and by_figure[0].page == 2
    assert "Quillon" in by_name[0].text and by_name[0].row_start is not None
    assert ARTICLE_FACT in " ".join(p.text for p in by_meaning)


@pytest.mark.django_db
def test_attach_page_endpoint_refuses_other_users_and_bad_addresses(alice, bob, web) -> None:
    conversation = make_conversation(alice)
    owner, other = Client(), Client()
    owner.force_login(alice)
    other.force_login(bob)

    assert other.post(f"/c/{conversation.uuid}/sources/", {"url": web.url("/notes.md")}).status_code == 404
    bad = owner.post(f"/c/{conversation.uuid}/sources/", {"url": "ftp://example.com/x"})
    assert bad.status_code == 400 and "http://" in bad.json()["error"]["detail"]
    source = ingest(alice, web.url("/notes.md"), conversation)
    assert other.post(f"/sources/{source.uuid}/remove/").status_code == 404
    assert owner.post(f"/sources/{source.uuid}/remove/").status_code == 204
    assert not Source.objects.filter(pk=source.pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_answers_are_grounded_in_attached_sources_with_citations(alice, bob, llama, fake_ollama, web) -> None:
    conversation = await sync_to_async(make_conversation)(alice)
    for path in ("/report.pdf", "/data.csv", "/article.html"):
        source = await sync_to_async(ingest)(alice, web.url(path), conversation)
        assert source.status == "ready", source.error
    # Bob's conversation has no sources: his question must not see Alice's documents.
    bob_conversation = await sync_to_async(make_conversation)(bob)
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "What tidal range did the Marlow Institute measure?",
                   "models": ["ollama/llama3.2:1b"]})  # fmt: skip
    frames = await ws.receive_until(lambda f: f["type"] == "message.done")

    system = fake_ollama.chat_requests[-1]["messages"][0]
    assert system["role"] == "system" and PDF_PAGE2_FACT in system["content"] and "untrusted" in system["content"]
    citations = frames[-1]["citations"]
    first = next(c for c in citations if PDF_PAGE2_FACT in c["excerpt"])
    assert first["page"] == 2 and first["url"].endswith("/report.pdf") and first["number"] >= 1
    saved = await Message.objects.aget(pk=frames[-1]["message"])
    assert saved.citations == citations
    await ws.close()

    _, _, bob_ws = await open_socket(bob_conversation.uuid, user=bob)
    await bob_ws.send({"type": "send", "content": "What tidal range did the Marlow Institute measure?",
                       "models": ["ollama/llama3.2:1b"]})  # fmt: skip
    done = (await bob_ws.receive_until(lambda f: f["type"] == "message.done"))[-1]
    assert done["citations"] == []
    assert all(m["role"] != "system" for m in fake_ollama.chat_requests[-1]["messages"])
    await bob_ws.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_a_page_a_pdf_and_a_csv_answer_questions_with_correct_citations_and_reattach_at_once(
    alice, bob, llama, fake_ollama, web
) -> None:
    """The issue's "done when": each question's answer comes from the right source and place."""
    conversation = await sync_to_async(make_conversation)(alice)
    for path in ("/article.html", "/report.pdf", "/data.csv"):
        source = await sync_to_async(ingest)(alice, web.url(path), conversation)
        assert source.status == "ready", source.error
    _, _, ws = await open_socket(conversation.uuid, user=alice)
    questions = [
        ("When was the Zephyr lighthouse on Corvel Island first lit?", "/article.html", "14 March 1887"),
        ("What tidal range did the Marlow Institute measure?", "/report.pdf", PDF_PAGE2_FACT),
        ("How many people live in Quillon?", "/data.csv", ",".join(CSV_FACT_ROW).replace(",", " | ")),
    ]

    for question, path, needle in questions:
        await ws.send({"type": "send", "content": question, "models": ["ollama/llama3.2:1b"]})
        done = (await ws.receive_until(lambda f: f["type"] == "message.done"))[-1]

        assert needle in fake_ollama.chat_requests[-1]["messages"][0]["content"]
        cited = [c for c in done["citations"] if c["url"].endswith(path) and needle in c["excerpt"]]
        assert cited, [(c["url"], c["excerpt"][:80]) for c in done["citations"]]
        citation = cited[0]
        if path == "/article.html":
            assert citation["title"].startswith(ARTICLE_TITLE) and citation["page"] is None and citation["rows"] is None
        elif path == "/report.pdf":
            assert citation["page"] == 2 and citation["rows"] is None
        else:
            assert citation["rows"][0] <= 31 <= citation["rows"][1] and citation["page"] is None
            assert citation["excerpt"].startswith("city | country | population")  # the header is repeated
    await ws.close()

    # Bob attaches the same three addresses: conditional requests only, no new document or vector.
    await sync_to_async(reattach_is_instant)(bob, web, ["/article.html", "/report.pdf", "/data.csv"])


def reattach_is_instant(user, web, paths: list[str]) -> None:
    full_bodies, documents, chunks = sum(web.full_bodies.values()), Document.objects.count(), Chunk.objects.count()
    conversation = make_conversation(user)
    for path in paths:
        source = ingest(user, web.url(path), conversation)
        assert source.status == "ready", source.error
        assert vector_count(source.document) == source.document.chunk_count
    assert sum(web.full_bodies.values()) == full_bodies
    assert (Document.objects.count(), Chunk.objects.count()) == (documents, chunks)


@pytest.mark.django_db
def test_uploaded_files_are_kept_under_our_name_and_ingested(alice, web, settings) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from chat.services import conversation_source_attach_file
    from ingestion.services import upload_path
    from tests.fakes.web import report_pdf

    conversation = make_conversation(alice)
    upload = SimpleUploadedFile("../../etc/evil\x00name.pdf", report_pdf(), content_type="application/pdf")

    source = conversation_source_attach_file(owner=alice, conversation=conversation, upload=upload)
    source_ingest(source_id=source.pk, final_attempt=True)

    source.refresh_from_db()
    assert source.status == "ready", source.error
    assert source.file_name == "evilname.pdf"
    assert upload_path(source).parent == settings.VAR_DIR / "uploads"
    assert source.document.chunk_count > 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("photo.png", b"\x89PNG\r\n", "unsupported_type"),
        ("empty.csv", b"", "empty"),
        ("fake.pdf", bytes(range(256)) * 4, "unsupported_type"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason(alice, name, body, code) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from chat.services import conversation_source_attach_file
    from ingestion.services import SourceError

    with pytest.raises(SourceError) as caught:
        conversation_source_attach_file(
            owner=alice, conversation=make_conversation(alice), upload=SimpleUploadedFile(name, body)
        )

    assert caught.value.code == code and caught.value.detail
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_uploads_over_the_size_cap_are_refused_by_the_server(alice, settings) -> None:
    settings.FETCH_MAX_BYTES = 1000
    conversation = make_conversation(alice)
    client = Client()
    client.force_login(alice)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(f"/c/{conversation.uuid}/sources/", {"file": SimpleUploadedFile("big.txt", b"x" * 5000)})

    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_an_unreachable_vector_store_is_retried_with_backoff_then_fails_with_the_reason(alice, web, settings) -> None:
    from ingestion.services import TransientIngestionError
    from ingestion.tasks import ingest_source
    from ingestion.vectorstore import _vector_store
    from tests.test_health import refused_url

    vector_store().close()  # the embedded store reopens from disk after the test
    _vector_store.cache_clear()
    settings.QDRANT_ENDPOINT = refused_url()  # a Qdrant server that refuses connections
    source = Source.objects.create(owner=alice, url=web.url("/article.html"))
    try:
        with pytest.raises(TransientIngestionError):
            source_ingest(source_id=source.pk, final_attempt=False)
        source_ingest(source_id=source.pk, final_attempt=True)
    finally:
        _vector_store.cache_clear()

    source.refresh_from_db()
    assert source.status == Source.Status.FAILED and "vector store is unavailable" in source.error
    # The task hands transient errors to Celery's retry, with a growing delay.
    assert TransientIngestionError in ingest_source.autoretry_for
    assert ingest_source.retry_backoff and ingest_source.max_retries >= 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_api_requests_naming_sources_are_grounded_cited_and_stored(alice, bob, llama, fake_ollama, web) -> None:
    """`sources` on /api/v1/chat/completions: passages go to the model, citations come back (in the
    JSON answer, and in the first chunk of a stream) and are saved with the stored exchange."""
    report = await sync_to_async(ingest)(alice, web.url("/report.pdf"))
    assert report.status == "ready", report.error
    pending = await Source.objects.acreate(owner=alice, url=web.url("/notes.md"))  # queued, never ingested
    alice_api, bob_api = [ApiClient(await api_key(user)) for user in (alice, bob)]
    ask = "What tidal range did the Marlow Institute measure?"
    question = {"model": LLAMA, "sources": [str(report.uuid)], "messages": [{"role": "user", "content": ask}]}
    listed = {source["id"]: source for source in await alice_api.sources()}
    assert listed[str(report.uuid)]["status"] == "ready" and listed[str(pending.uuid)]["status"] == "queued"
    assert listed[str(report.uuid)]["url"].endswith("/report.pdf")
    assert await bob_api.sources() == []

    answer = await alice_api.chat(question)

    assert answer.status_code == 200, answer.content[:500]
    system = fake_ollama.chat_requests[-1]["messages"][0]
    assert system["role"] == "system" and PDF_PAGE2_FACT in system["content"]
    citations = answer.json()["citations"]
    cited = next(c for c in citations if PDF_PAGE2_FACT in c["excerpt"])
    assert cited["source"] == str(report.uuid) and cited["page"] == 2 and "notice" not in answer.json()
    saved = await Message.objects.filter(conversation__owner=alice, role="assistant").alatest("id")
    assert saved.citations == citations
    assert await Message.objects.filter(conversation=saved.conversation_id, role="system").acount() == 0

    streamed = await alice_api.chat(question | {"stream": True})
    events = [line[6:] for line in b"".join([part async for part in streamed.streaming_content]).decode().split("\n")
              if line.startswith("data: ")]  # fmt: skip
    assert events[-1] == "[DONE]"
    first = json.loads(events[0])
    assert [c["source"] for c in first["citations"]] == [c["source"] for c in citations]
    assert all("citations" not in json.loads(e) for e in events[1:-1])

    refusals = {
        "bob's key, alice's source": (bob_api, [str(report.uuid)], 404, "source_not_found"),
        "not an id": (alice_api, ["nope"], 404, "source_not_found"),
        "not ready": (alice_api, [str(pending.uuid)], 400, "source_not_ready"),
        "not a list": (alice_api, str(report.uuid), 400, "invalid_value"),
    }
    requests_before = len(fake_ollama.chat_requests)
    for case, (client, sources, status, code) in refusals.items():
        refused = await client.chat(question | {"sources": sources})
        error = refused.json()["error"]
        assert (refused.status_code, error["code"], error["param"]) == (status, code, "sources"), case
        if code == "source_not_ready":
            assert str(pending.uuid) in error["message"] and "queued" in error["message"]
    assert len(fake_ollama.chat_requests) == requests_before, "a refused request reaches no model"


LLAMA = "ollama/llama3.2:1b"


async def api_key(user) -> str:
    return (await sync_to_async(api_key_create)(user=user, name="test"))[1]


class ApiClient(AsyncClient):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    async def sources(self) -> list[dict]:
        response = await self.get("/api/v1/sources", headers={"Authorization": f"Bearer {self.key}"})
        assert response.status_code == 200, response.content[:300]
        return response.json()["data"]

    async def chat(self, body: dict) -> Any:
        return await self.post("/api/v1/chat/completions", body, content_type="application/json",
                               headers={"Authorization": f"Bearer {self.key}"})  # fmt: skip
