from __future__ import annotations

import asyncio
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from models_registry.models import Provider
from models_registry.providers import ProviderError
from models_registry.providers.ollama import PullProgress
from models_registry.services import model_pull, provider_sync_models


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1000
    return f"{count:.1f} GB"


class ProgressLine:
    """Renders Ollama's pull progress: one line per layer, updated in place on a terminal."""

    def __init__(self, write: Any, interactive: bool) -> None:
        self.write = write
        self.interactive = interactive
        self.current = ""
        self.started = time.monotonic()
        self.last_printed_percent = -1

    def show(self, progress: PullProgress) -> None:
        if progress.total and progress.completed is not None:
            if progress.status != self.current:
                self.finish()
                self.current = progress.status
                self.started = time.monotonic()
                self.last_printed_percent = -1
            percent = 100 * progress.completed / progress.total
            speed = progress.completed / max(time.monotonic() - self.started, 1e-6)
            text = (
                f"{progress.status}  {percent:5.1f}%  {human_bytes(progress.completed)} / "
                f"{human_bytes(progress.total)}  {human_bytes(speed)}/s"
            )
            if self.interactive:
                self.write(f"\r{text:<80}", ending="")
            elif int(percent) // 25 != self.last_printed_percent // 25 or percent >= 100:
                self.write(text)
            self.last_printed_percent = int(percent)
        else:
            self.finish()
            self.current = ""
            self.write(progress.status)

    def finish(self) -> None:
        if self.interactive and self.current:
            self.write("")


class Command(BaseCommand):
    help = "Pull a model into an Ollama server with a progress bar, then sync the registry."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name", help="The model, e.g. llama3.2:1b")
        parser.add_argument("--provider", default="ollama", help="An Ollama provider's name (default: ollama).")

    def handle(self, *args: Any, name: str, provider: str, **options: Any) -> None:
        try:
            target = Provider.objects.get(name=provider)
        except Provider.DoesNotExist:
            known = ", ".join(Provider.objects.filter(kind=Provider.Kind.OLLAMA).values_list("name", flat=True))
            raise CommandError(f"No provider named {provider!r}. Ollama providers: {known or 'none'}.") from None
        line = ProgressLine(self.stdout.write, interactive=self.stdout.isatty())
        started = time.monotonic()

        async def run() -> None:
            async for progress in model_pull(provider=target, name=name):
                line.show(progress)

        try:
            asyncio.run(run())
        except ProviderError as exc:
            line.finish()
            raise CommandError(f"Pulling {name} failed: {exc.message}") from None
        provider_sync_models(provider=target)
        self.stdout.write(
            self.style.SUCCESS(
                f"Pulled {name} into {target.name} in {time.monotonic() - started:.1f} s; models synced."
            )
        )
