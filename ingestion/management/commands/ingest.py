from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ingestion.models import Source
from ingestion.services import SourceError, _publish, source_as_frame, source_ingest
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
        if not url.lower().startswith(("http://", "https://")):
            raise CommandError("Give a web address that starts with http:// or https://.")
        try:  # the embedded store may be held by the running web server: say so before starting
            vector_store()
        except VectorStoreUnavailable as exc:
            raise CommandError(str(exc)) from None
        source = Source.objects.create(owner=owner, url=url)
        self.stdout.write(f"Ingesting {url} for {owner.get_username()}…")
        try:
            source_ingest(source_id=source.pk, final_attempt=True, on_status=self._show)
        except SourceError as exc:
            raise CommandError(exc.detail) from None
        source.refresh_from_db()
        frame = source_as_frame(source)
        if source.status != Source.Status.READY:
            raise CommandError(f"Failed: {source.error}")
        self.stdout.write(self.style.SUCCESS(
            f"Ready: {frame['title']} ({frame['size_bytes']:,} bytes, {frame['chunk_count']} chunks)."
        ))  # fmt: skip
        _publish(source)

    def _show(self, status: str) -> None:
        self.stdout.write(f"  {status}…")
