"""Send-to-first-delta through the chat websocket, against a direct call to the same upstream.

Starts the fake Ollama on 127.0.0.1 (first token at once), then measures, in one process:
  direct:    OllamaProvider.stream_chat -> first chunk (the baseline: upstream + client)
  websocket: a `send` frame into the real ASGI app -> the first `delta` frame out
             (session check, model lookup, saving both messages, broadcasts, history,
             upstream request, channel layer hop)
and prints the median and p90 of each, and the added time.

Uses the configuration from the environment: the embedded defaults (SQLite in a temporary
VAR_DIR, in-memory channel layer), or DATABASE_URL/REDIS_URL for Postgres and Redis. The
Postgres database is created if missing and is migrated.

    .venv/bin/python bench/first_delta.py [--runs 30]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/multillm_bench \
        REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/first_delta.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ensure_postgres_database, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multillm.settings")
os.environ.setdefault("DEBUG", "on")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="multillm-bench-"))
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")


async def measure(runs: int) -> dict[str, list[float]]:
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import User
    from django.test import Client

    from chat.generation import _RUNNING
    from chat.models import Conversation
    from models_registry.models import Provider
    from models_registry.providers.base import ChatOptions
    from models_registry.providers.ollama import OllamaProvider
    from models_registry.services import provider_sync_models
    from multillm.asgi import application
    from tests.fakes.ollama import FakeOllama

    fake = FakeOllama().start()
    fake.reply = lambda messages: "The quick brown fox jumps over the lazy dog."

    def setup() -> tuple[Conversation, str]:
        user, _ = User.objects.get_or_create(username="bench")
        provider, _ = Provider.objects.update_or_create(
            name="ollama", defaults={"kind": Provider.Kind.OLLAMA, "base_url": fake.url}
        )
        provider_sync_models(provider=provider)
        client = Client()
        client.force_login(user)
        return Conversation.objects.create(owner=user, title="bench"), client.cookies["sessionid"].value

    conversation, cookie = await sync_to_async(setup)()
    direct: list[float] = []
    websocket: list[float] = []
    provider = OllamaProvider(base_url=fake.url)
    headers = [(b"origin", b"http://testserver"), (b"cookie", f"sessionid={cookie}".encode())]
    ws = WebsocketCommunicator(application, f"/ws/chat/{conversation.uuid}/", headers=headers)
    connected, _ = await ws.connect()
    assert connected, "the benchmark could not connect its websocket"
    for run in range(runs + 2):  # the first two warm up connections and caches
        started = time.perf_counter()
        stream = provider.stream_chat(
            model="llama3.2:1b", messages=[{"role": "user", "content": "hi"}], options=ChatOptions()
        )
        async for _chunk in stream:
            elapsed = time.perf_counter() - started
            break
        await stream.aclose()  # type: ignore[attr-defined]
        if run >= 2:
            direct.append(elapsed)

        started = time.perf_counter()
        await ws.send_to(
            text_data=json.dumps({"type": "send", "content": f"run {run}", "models": ["ollama/llama3.2:1b"]})
        )
        first = None
        while True:
            frame = json.loads(await ws.receive_from(timeout=10))
            if frame["type"] == "delta" and first is None:
                first = time.perf_counter() - started
            if frame["type"] == "message.done":
                break
        await asyncio.gather(*_RUNNING.values())
        if run >= 2:
            websocket.append(first)
    await ws.disconnect()
    fake.stop()
    return {"direct": direct, "websocket": websocket}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    ensure_postgres_database()

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.conf import settings

    results = asyncio.run(measure(args.runs))
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(f"first token, {args.runs} runs; database {database}, channel layer {layer}")
    print(f"{'path':<12}{'median ms':>12}{'p90 ms':>10}")
    for name, values in results.items():
        print(f"{name:<12}{statistics.median(values) * 1000:>12.2f}{percentile(values, 0.9) * 1000:>10.2f}")
    added = statistics.median(results["websocket"]) - statistics.median(results["direct"])
    ratio = statistics.median(results["websocket"]) / statistics.median(results["direct"])
    print(f"{'added':<12}{added * 1000:>12.2f}{'':>10}   (websocket/direct = {ratio:.2f}x)")


if __name__ == "__main__":
    main()
