"""Writes for sources: making them from a URL or an upload, and the ingestion pipeline
(fetch → extract → chunk → embed → store) that a Celery task or the web process runs.

Ingestion knows nothing of where sources are used (chat attaches them to conversations).
Progress goes to a reporter, a callable given each status change; the default one sends
`ingestion.signals.source_status_changed`, which the chat app relays to the owner's sockets.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection, transaction

from ingestion.chunker import chunk_document, embedding_text
from ingestion.embedder import local_embedder
from ingestion.extractors import ExtractionError, extract
from ingestion.fetcher import FetchError, SafeFetcher, sniff_content_type
from ingestion.models import Chunk, Document, FetchedUrl, Source
from ingestion.signals import source_status_changed
from ingestion.vectorstore import VectorStoreUnavailable, vector_store

logger = logging.getLogger(__name__)

EMBED_BATCH = 64
# The Celery task that runs `source_ingest` (ingestion.tasks.ingest_source).
INGEST_TASK = "ingestion.tasks.ingest_source"
URL_MAX_LENGTH = 2000

# In the embedded mode the web process owns the vector store and runs ingestion itself,
# one source at a time, off the event loop.
_IN_PROCESS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingestion")


class SourceError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class TransientIngestionError(Exception):
    """Worth retrying later (a timeout, a 5xx, the vector store briefly away)."""


SourceReporter = Callable[[Source], None]


def source_status_announce(source: Source) -> None:
    """The default reporter: whoever listens hears of the change (never fails the ingestion)."""
    try:
        source_status_changed.send(sender=Source, source=source)
    except Exception:  # progress is a courtesy
        logger.warning("could not announce the status of source %s", source.pk, exc_info=True)


def _set_status(source: Source, status: str, reporter: SourceReporter, error: str = "") -> None:
    source.status = status
    source.error = error
    source.save(update_fields=["status", "error", "document", "updated_at"])
    reporter(source)


def source_url_clean(url: object) -> str:
    """A web address as sources keep it, or SourceError. Control, format and space characters
    have no place in one (they would be cut, or escaped into another address): refused, not repaired."""
    url = url.strip() if isinstance(url, str) else ""
    if (
        not url.lower().startswith(("http://", "https://"))
        or len(url) > URL_MAX_LENGTH
        or not all(ch.isprintable() and not ch.isspace() for ch in url)
    ):
        raise SourceError("bad_url", "Give a web address that starts with http:// or https://.")
    return url


def source_create_from_url(*, owner: User, url: str, queue: bool = True) -> Source:
    """A new source of `owner` for a web address, queued for ingestion once the transaction
    commits (unless `queue` is false: the caller runs `source_ingest` itself)."""
    url = source_url_clean(url)
    source = Source.objects.create(owner=owner, url=url)
    if queue:
        transaction.on_commit(lambda: ingestion_enqueue(source_id=source.pk))
    return source


UPLOAD_SUFFIXES = {".pdf", ".csv", ".txt", ".md", ".markdown", ".html", ".htm"}


def upload_path(source: Source) -> Path:
    """Where an uploaded file's bytes are kept: named by the source's uuid, never by the user's file name."""
    return Path(settings.VAR_DIR) / "uploads" / source.uuid.hex


def clean_file_name(name: str) -> str:
    """A display name: the last path part, without NUL or control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".")
    return name[:255] or "upload"


def source_create_from_upload(*, owner: User, upload: UploadedFile, queue: bool = True) -> Source:
    """Keep an uploaded file (PDF, CSV, text, Markdown, HTML) as a new source of `owner` and
    queue its ingestion once the transaction commits (unless `queue` is false)."""
    name = clean_file_name(upload.name or "")
    if Path(name).suffix.lower() not in UPLOAD_SUFFIXES:
        raise SourceError("unsupported_type", "Upload a PDF, CSV, text, Markdown or HTML file.")
    limit = settings.FETCH_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise SourceError("too_large", f"The file is larger than {limit // (1024 * 1024)} MB.")
    body = bytearray()
    for piece in upload.chunks():
        body += piece
        if len(body) > limit:  # the declared size is the client's word: count for ourselves
            raise SourceError("too_large", f"The file is larger than {limit // (1024 * 1024)} MB.")
    if not body:
        raise SourceError("empty", "The file is empty.")
    if sniff_content_type(bytes(body), declared=upload.content_type or "", name=name) is None:
        raise SourceError("unsupported_type", "That file is not a PDF, CSV, text, Markdown or HTML file.")
    source = Source.objects.create(owner=owner, file_name=name)
    path = upload_path(source)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(body))
    if queue:
        transaction.on_commit(lambda: ingestion_enqueue(source_id=source.pk))
    return source


def source_reingest(*, source: Source) -> None:
    """Fetch and build again (an admin's action): forget the cached validators and the document."""
    if source.url:
        FetchedUrl.objects.filter(url=source.url).delete()
    if source.document_id is not None:
        Document.objects.filter(pk=source.document_id).update(status=Document.Status.PENDING)
    Source.objects.filter(pk=source.pk).update(status=Source.Status.QUEUED, error="")
    transaction.on_commit(lambda: ingestion_enqueue(source_id=source.pk))


def document_delete(*, document: Document) -> None:
    """Delete a document, its chunks and its vectors; sources that used it fail with a reason."""
    vector_store().delete_document(document_id=document.pk)
    Source.objects.filter(document=document).update(
        status=Source.Status.FAILED, error="An administrator removed this document.", document=None
    )
    FetchedUrl.objects.filter(document=document).delete()
    document.delete()


def _lower_priority() -> None:
    """In the web process, ingestion (CPU-bound embedding) yields the CPU to the event loop that
    serves pages and sockets: this thread runs at a lower scheduling priority (Linux: per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: ingest at normal priority
        pass


def ingestion_enqueue(*, source_id: int) -> None:
    """Ingest the source in this process (embedded mode) or queue the Celery task, by its name:
    the task module imports this one, not the other way round."""
    if settings.INGESTION_IN_PROCESS:
        _IN_PROCESS.submit(_run_in_process, source_id)
    else:
        current_app.send_task(INGEST_TASK, args=[source_id])


def _run_in_process(source_id: int) -> None:
    _lower_priority()
    close_old_connections()
    try:
        source_ingest(source_id=source_id, final_attempt=True)
    except Exception:
        logger.exception("ingestion of source %s failed", source_id)
    finally:
        close_old_connections()


def source_ingest(
    *,
    source_id: int,
    final_attempt: bool = True,
    fetcher: SafeFetcher | None = None,
    reporter: SourceReporter = source_status_announce,
) -> None:
    """Run the whole pipeline for one source, telling `reporter` of every status change.
    Idempotent: a re-run finds the work done.

    Transient failures raise TransientIngestionError unless this is the final attempt,
    in which case the source fails with the reason.
    A database that goes away mid-task (a restart, a failover) is transient too: the broken
    connection is dropped so that the retry gets a fresh one.
    """
    try:
        _source_ingest(source_id, final_attempt, fetcher or SafeFetcher(), reporter)
    except (OperationalError, InterfaceError) as exc:
        logger.warning("ingestion of source %s lost the database: %s", source_id, exc)
        connection.close()
        if not final_attempt:
            raise TransientIngestionError("The database was unavailable.") from exc
        try:
            source = Source.objects.get(pk=source_id)
            if source.status != Source.Status.READY:
                _set_status(source, Source.Status.FAILED, reporter,
                            "The database was unavailable during ingestion; try again.")  # fmt: skip
        except DatabaseError:
            logger.exception("could not mark source %s failed", source_id)
            connection.close()


def _source_ingest(source_id: int, final_attempt: bool, fetcher: SafeFetcher, reporter: SourceReporter) -> None:
    source = Source.objects.select_related("document").filter(pk=source_id).first()
    if source is None or source.status == Source.Status.READY:
        return
    try:
        _ingest(source, fetcher, reporter)
    except (FetchError, ExtractionError) as exc:
        transient = isinstance(exc, FetchError) and not exc.permanent
        if transient and not final_attempt:
            raise TransientIngestionError(exc.message) from exc
        _set_status(source, Source.Status.FAILED, reporter, exc.message)
    except VectorStoreUnavailable as exc:
        if not final_attempt:
            raise TransientIngestionError(str(exc)) from exc
        _set_status(source, Source.Status.FAILED, reporter, "The vector store is unavailable; try again later.")


def _ingest_upload(source: Source, reporter: SourceReporter) -> None:
    path = upload_path(source)
    if not path.exists():
        raise ExtractionError("The uploaded file is gone; upload it again.")
    body = path.read_bytes()
    content_type = sniff_content_type(body, declared="", name=source.file_name)
    if content_type is None:
        raise ExtractionError("That file is not a PDF, CSV, text, Markdown or HTML file.")
    document, _ = Document.objects.get_or_create(
        content_hash=hashlib.sha256(body).hexdigest(), defaults={"kind": content_type, "size_bytes": len(body)}
    )
    source.document = document
    if document.status != Document.Status.READY:
        document_build(
            document=document,
            body=body,
            content_type=content_type,
            charset="",
            source_name=source.file_name,
            on_stage=lambda stage: _set_status(source, stage, reporter),
        )
    _set_status(source, Source.Status.READY, reporter)


def _ingest(source: Source, fetcher: SafeFetcher, reporter: SourceReporter) -> None:
    if not source.url:
        _ingest_upload(source, reporter)
        return
    _set_status(source, Source.Status.FETCHING, reporter)
    cached = FetchedUrl.objects.select_related("document").filter(url=source.url).first()
    known = cached.document if cached and cached.document and cached.document.status == Document.Status.READY else None
    result = fetcher.fetch(
        source.url,
        etag=cached.etag if cached and known else "",
        last_modified=cached.last_modified if cached and known else "",
    )
    if result.not_modified and known is not None:
        source.document = known
        _set_status(source, Source.Status.READY, reporter)
        return
    content_hash = hashlib.sha256(result.body).hexdigest()
    document, _ = Document.objects.get_or_create(
        content_hash=content_hash, defaults={"kind": result.content_type, "size_bytes": len(result.body)}
    )
    FetchedUrl.objects.update_or_create(
        url=source.url,
        defaults={"etag": result.etag, "last_modified": result.last_modified, "document": document},
    )
    source.document = document
    if document.status != Document.Status.READY:
        document_build(
            document=document,
            body=result.body,
            content_type=result.content_type,
            charset=result.charset,
            source_name=result.url,
            on_stage=lambda stage: _set_status(source, stage, reporter),
        )
    _set_status(source, Source.Status.READY, reporter)


def document_build(
    *,
    document: Document,
    body: bytes,
    content_type: str,
    charset: str,
    source_name: str,
    on_stage: Callable[[str], None],
) -> None:
    """Extract, chunk, embed and store a document; mark it ready only once its vectors are stored."""
    on_stage(Source.Status.EXTRACTING)
    embedder = local_embedder()
    try:
        extracted = extract(body, content_type, source_name=source_name, charset=charset)
    except ExtractionError as exc:
        Document.objects.filter(pk=document.pk).update(status=Document.Status.FAILED, error=exc.message)
        raise
    chunks = chunk_document(extracted, count_tokens=embedder.count_tokens)
    if not chunks:
        raise ExtractionError("The document has no text to index.")
    with transaction.atomic():
        Chunk.objects.filter(document=document).delete()
        Chunk.objects.bulk_create(
            Chunk(
                document=document, index=c.index, text=c.text, heading_path=list(c.heading_path), page=c.page,
                row_start=c.row_start, row_end=c.row_end, char_start=c.char_start, char_end=c.char_end,
                token_count=c.token_count,
            )
            for c in chunks
        )  # fmt: skip
        document.title = extracted.title[:500]
        document.kind = extracted.kind
        document.size_bytes = len(body)
        document.chunk_count = len(chunks)
        document.save(update_fields=["title", "kind", "size_bytes", "chunk_count", "updated_at"])
    on_stage(Source.Status.EMBEDDING)
    store = vector_store()
    texts = [embedding_text(c, extracted.title) for c in chunks]
    for start in range(0, len(texts), EMBED_BATCH):
        vectors = embedder.embed_batch(texts[start : start + EMBED_BATCH])
        store.upsert(
            model_id=embedder.model_id,
            document_id=document.pk,
            content_hash=document.content_hash,
            vectors=vectors,
            start_index=start,
        )
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.READY, error="", embedding_model=embedder.model_id
    )
    document.status = Document.Status.READY
