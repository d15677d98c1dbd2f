"""Celery tasks for ingestion. They take ids, are idempotent, and are queued on commit."""

from __future__ import annotations

from celery import shared_task

from ingestion.services import INGEST_TASK, TransientIngestionError, source_ingest

MAX_RETRIES = 4


@shared_task(
    name=INGEST_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientIngestionError,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=MAX_RETRIES,
    soft_time_limit=600,
    time_limit=660,
)
def ingest_source(self: object, source_id: int) -> None:
    """Fetch, extract, chunk, embed and store one source (transient failures retry with backoff)."""
    source_ingest(source_id=source_id, final_attempt=self.request.retries >= MAX_RETRIES)  # type: ignore[attr-defined]
