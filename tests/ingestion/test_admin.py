"""Admins see every source and document, delete a document with its vectors, and ingest again."""

from __future__ import annotations

import pytest
from django.test import Client

from ingestion.models import Chunk, Document, FetchedUrl, Source
from ingestion.services import source_ingest
from tests.conftest import make_user
from tests.ingestion.test_pipeline import ingest, vector_count

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db) -> Client:
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_admin_lists_every_users_sources_with_status_and_error(admin_client, alice, bob, web) -> None:
    ingest(alice, web.url("/notes.md"))
    ingest(bob, web.url("/status/404"))

    page = admin_client.get("/admin/ingestion/source/").content.decode()

    assert web.url("/notes.md") in page and web.url("/status/404") in page
    assert "The page was not found (HTTP 404)." in page


def test_deleting_a_document_removes_its_chunks_and_vectors_and_fails_its_sources(
    admin_client, alice, bob, web
) -> None:
    kept = ingest(alice, web.url("/notes.md"))
    first = ingest(alice, web.url("/report.pdf"))
    second = ingest(bob, web.url("/report.pdf"))
    document = first.document
    assert vector_count(document) == document.chunk_count > 0

    response = admin_client.post(
        "/admin/ingestion/document/", {"action": "delete_with_vectors", "_selected_action": [document.pk]}, follow=True
    )

    assert "Deleted 1 documents with their vectors." in response.content.decode()
    assert vector_count(document) == 0
    assert not Document.objects.filter(pk=document.pk).exists() and not Chunk.objects.filter(document=document).exists()
    for source in (first, second):
        source.refresh_from_db()
        assert source.status == "failed" and source.error == "An administrator removed this document."
    assert vector_count(kept.document) == kept.document.chunk_count, "other documents keep their vectors"


def test_ingest_again_forgets_the_cached_validators_and_queues_the_source(
    admin_client, alice, web, django_capture_on_commit_callbacks
) -> None:
    source = ingest(alice, web.url("/report.pdf"))

    with django_capture_on_commit_callbacks() as queued:
        admin_client.post("/admin/ingestion/source/", {"action": "reingest", "_selected_action": [source.pk]})

    source.refresh_from_db()
    assert source.status == "queued" and len(queued) == 1
    assert not FetchedUrl.objects.filter(url=source.url).exists()
    source_ingest(source_id=source.pk, final_attempt=True)  # what the queued task runs
    source.refresh_from_db()
    assert source.status == "ready" and web.full_bodies["/report.pdf"] == 2, "fetched anew, not a 304"
    assert Source.objects.count() == 1
