from typing import Any

from django.core.management.base import BaseCommand

from models_registry.services import models_sync_all


class Command(BaseCommand):
    help = "Read every configured provider's models into the registry (Ollama: /api/tags)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--strict", action="store_true", help="Exit with an error when a provider cannot be reached."
        )

    def handle(self, *args: Any, strict: bool = False, **options: Any) -> None:
        results = models_sync_all()
        if not results:
            self.stdout.write("No provider is configured: set OLLAMA_BASE_URL.")
        failed = False
        for result in results:
            if result.error:
                failed = True
                self.stderr.write(f"{result.provider}: {result.error}")
            else:
                self.stdout.write(
                    f"{result.provider}: {result.added} added, {result.updated} updated, "
                    f"{result.unavailable} marked unavailable"
                )
        if failed and strict:
            raise SystemExit(1)
