from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ingestion.models import Source
from ingestion.services import SourceError, source_create_from_url, source_ingest, source_status_announce
from ingestion.vectorstore import VectorStoreUnavailable, vector_store


class Command(BaseCommand):
    help = "Fetch, extract, chunk and embed a URL now, showing each stage (the admin's user by default)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("url")
        parser.add_argument("--user", default=None, help="The owner of the source (default: the first superuser).")

    def handle(self, *args: Any, url: str, user: str | None, **options: Any) -> None:
        users = get_user_model().objects
        owner = users.filter(username=user).first() if user else users.filter(is_superuser=True).first()
        if owner is None:
            raise CommandError(f"No user named {user!r}." if user else "No superuser exists: pass --user NAME.")
        try:  # the embedded store may be held by the running web server: say so before starting
            vector_store()
        except VectorStoreUnavailable as exc:
            raise CommandError(str(exc)) from None
        try:
            source = source_create_from_url(owner=owner, url=url, queue=False)  # run here, below
        except SourceError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(f"Ingesting {source.url} for {owner.get_username()}…")
        source_ingest(source_id=source.pk, final_attempt=True, reporter=self._show)
        source.refresh_from_db()
        if source.status != Source.Status.READY or source.document is None:
            raise CommandError(f"Failed: {source.error}")
        document = source.document
        self.stdout.write(self.style.SUCCESS(
            f"Ready: {source.name} ({document.size_bytes:,} bytes, {document.chunk_count} chunks)."
        ))  # fmt: skip

    def _show(self, source: Source) -> None:
        self.stdout.write(f"  {source.status}…")
        source_status_announce(source)
