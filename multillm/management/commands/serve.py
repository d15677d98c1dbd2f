"""`manage.py serve`: what `make run` runs. The built-in local model (when wanted), a
model sync, then Daphne in this process until Ctrl+C."""

from __future__ import annotations

import logging
from typing import Any

from daphne.cli import CommandLineInterface
from django.core.management.base import BaseCommand

from models_registry.local_model import LocalModelServer, LocalModelUnavailable, local_model_paths, local_model_wanted
from models_registry.models import Provider
from models_registry.services import models_sync_all

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve the app with Daphne; start and supervise the built-in local model when it is wanted."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        local = self._start_local_model()
        try:
            if local is None:  # else the sync runs once the local model answers
                self._report(models_sync_all())
            CommandLineInterface().run(["-b", host, "-p", str(port), "multillm.asgi:application"])
        finally:
            if local is not None:
                local.stop()

    def _start_local_model(self) -> LocalModelServer | None:
        others = Provider.objects.filter(enabled=True, managed_by_env=False).exists()
        if not local_model_wanted(other_providers=others):
            return None
        try:
            local_model_paths()
        except LocalModelUnavailable as exc:
            self.stderr.write(f"The built-in local model is not available: {exc}")
            return None
        server = LocalModelServer()

        def register() -> None:
            self._report(models_sync_all(local_model_url=server.url))

        self.stdout.write(f"Starting the built-in local model (SmolLM2-135M-Instruct) on {server.url}…")
        server.start(on_ready=register)
        return server

    def _report(self, results: list[Any]) -> None:
        for result in results:
            if result.error:
                self.stderr.write(f"{result.provider}: {result.error}")
            else:
                self.stdout.write(f"{result.provider}: {result.added} added, {result.updated} updated, "
                                  f"{result.unavailable} marked unavailable")  # fmt: skip
