"""Load: many users chatting through websockets while sources are ingested, on 127.0.0.1.

Starts the fake upstream (`tests/fakes/upstream.py`, Ollama NDJSON, `--tokens` tokens per
answer, `--interval` ms apart) and the app under Daphne (DEBUG off, quotas off, the embedded
vector store, ingestion in the web process), both in their own processes, and a FakeWeb
in this one serving `--ingestions` distinct generated HTML documents.

Then `--users` users (each with a session and a conversation of their own) open a chat
socket, spread over `--ramp` seconds, and, for `--duration` seconds, each sends a message, reads the answer to
`message.done`, waits a random 0.5 to 2 s and sends the next. From `--ingest-after` seconds
on, `--ingestions` users attach one document each at the same time (the page's POST, with
CSRF), and the bench waits for every source to be ready. Bounded: an answer is given up
after `--timeout` s, an ingestion after 120 s, and the run stops sending at `--duration`.

Reports: answers and errors (error frames, statuses other than complete, timeouts, closed
sockets, text with a gap), time to first token (the `send` frame -> first delta) p50/p99,
the Daphne process's CPU (mean and peak over 1 s samples, 100 % = one core) and memory
(RSS, start and peak), ingestion times, and the check that every saved assistant message
equals, character for character, the text its client assembled from the deltas.

The app gets this process's environment: measure with the connection pool on, as it is by
default (DATABASE_POOL_MAX_SIZE=20, and then CONN_MAX_AGE must be 0). Uses DATABASE_URL and
REDIS_URL, by default postgres://postgres@127.0.0.1:5432/multillm_load (created if missing,
and migrated) and redis://127.0.0.1:6379/0.

    .venv/bin/python bench/load.py [--users 200] [--duration 60] [--ingestions 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/multillm_load")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from common import ensure_postgres_database, percentile  # noqa: E402
from relay import AppServer, cpu_seconds, fake_start, process_stop, progress  # noqa: E402

os.environ.update(
    VAR_DIR=tempfile.mkdtemp(prefix="multillm-load-"),
    CHANNEL_LAYER_PREFIX=f"load{os.getpid()}",
    FETCH_ALLOWLIST="127.0.0.1",
    LOCAL_MODEL="off",
    QDRANT_ENDPOINT="",
    QUOTA_MAX_PROMPT_CHARS="0",
)


@dataclass
class Exchange:
    content: str
    sent_at: float = 0.0
    first_delta_at: float | None = None
    message_id: int | None = None
    text: str = ""
    status: str = ""
    error: str = ""


@dataclass
class Client:
    username: str
    session: str
    conversation: str
    exchanges: list[Exchange] = field(default_factory=list)
    socket_error: str = ""


@dataclass
class Ingestion:
    url: str
    started: float = 0.0
    finished: float | None = None
    status: str = ""
    error: str = ""


def document_html(number: int) -> bytes:
    words = [f"topic{number}w{i}" for i in range(400)]
    paragraphs = "".join(
        f"<h2>Part {p}</h2><p>{' '.join(random.Random(number * 100 + p).sample(words, 300))} "
        f"The figure for section {p} of report {number} is {number * 1000 + p}.</p>"
        for p in range(12)
    )
    head = f"<!doctype html><html><head><title>Report {number}</title></head>"
    return f"{head}<body><main><h1>Report {number}</h1>{paragraphs}</main></body></html>".encode()


def users_create(count: int) -> list[Client]:
    from django.contrib.auth.models import User
    from django.test import Client as DjangoClient

    from chat.models import Conversation

    User.objects.filter(username__startswith="loaduser").delete()
    users = User.objects.bulk_create(User(username=f"loaduser{i:03d}") for i in range(count))
    clients = []
    for user in users:
        browser = DjangoClient()
        browser.force_login(user)
        conversation = Conversation.objects.create(owner=user, title="load")
        clients.append(Client(user.username, browser.cookies["sessionid"].value, str(conversation.uuid)))
    return clients


class Sampler:
    """CPU (share of one core over each second) and RSS of a process, sampled every second."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self.task: asyncio.Task[None] | None = None

    def _rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    async def run(self) -> None:
        before, at = cpu_seconds(self.pid), time.monotonic()
        self.rss.append(self._rss())
        while True:
            await asyncio.sleep(1)
            now_cpu, now = cpu_seconds(self.pid), time.monotonic()
            self.cpu.append((now_cpu - before) / (now - at) * 100)
            self.rss.append(self._rss())
            before, at = now_cpu, now


async def chat_user(client: Client, app_url: str, model_id: str, stop_at: float, timeout: float, delay: float) -> None:
    import websockets

    await asyncio.sleep(delay)  # users arrive over the ramp, as they would in the morning

    url = app_url.replace("http://", "ws://") + f"/ws/chat/{client.conversation}/"
    try:
        async with websockets.connect(url, origin=app_url, additional_headers={"Cookie": f"sessionid={client.session}"},
                                      open_timeout=30, max_size=None) as socket:  # fmt: skip
            number = 0
            while time.monotonic() < stop_at:
                exchange = Exchange(content=f"{client.username} message {number}: how are the figures?")
                client.exchanges.append(exchange)
                number += 1
                try:
                    await asyncio.wait_for(ask(socket, model_id, exchange), timeout)
                except TimeoutError:
                    exchange.error = exchange.error or f"no message.done after {timeout:g} s"
                    return
                await asyncio.sleep(random.uniform(0.5, 2.0))
    except Exception as exc:
        client.socket_error = f"{type(exc).__name__}: {exc}"[:200]


async def ask(socket: Any, model_id: str, exchange: Exchange) -> None:
    exchange.sent_at = time.monotonic()
    await socket.send(json.dumps({"type": "send", "content": exchange.content, "models": [model_id]}))
    async for raw in socket:
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "message.created" and frame["message"]["role"] == "assistant" and exchange.message_id is None:
            exchange.message_id = frame["message"]["id"]
        elif kind == "delta" and frame["message"] == exchange.message_id:
            exchange.first_delta_at = exchange.first_delta_at or time.monotonic()
            offset, piece = frame["offset"], frame["text"]
            if offset > len(exchange.text):
                exchange.error = exchange.error or f"gap at offset {offset}"
            elif offset + len(piece) > len(exchange.text):
                exchange.text = exchange.text[:offset] + piece
        elif kind == "message.done" and frame["message"] == exchange.message_id:
            exchange.status = frame.get("status", "")
            if exchange.status != "complete":
                exchange.error = exchange.error or f"status {exchange.status}: {frame.get('error')}"
            return
        elif kind == "error" and frame.get("message") in (None, exchange.message_id):
            exchange.error = f"{frame.get('code')}: {frame.get('detail')}"
            if exchange.message_id is None:
                return
    exchange.error = exchange.error or "the socket closed before message.done"


async def ingest(client: Client, app_url: str, ingestion: Ingestion) -> None:
    import httpx

    from ingestion.models import Source

    cookies = {"sessionid": client.session}
    async with httpx.AsyncClient(base_url=app_url, cookies=cookies, timeout=60, trust_env=False) as http:
        page = await http.get(f"/c/{client.conversation}/")
        token = page.cookies.get("csrftoken") or http.cookies.get("csrftoken")
        ingestion.started = time.monotonic()
        response = await http.post(f"/c/{client.conversation}/sources/", data={"url": ingestion.url},
                                   headers={"X-CSRFToken": token or "", "Referer": app_url + "/"})  # fmt: skip
        if response.status_code != 201:
            ingestion.error = f"HTTP {response.status_code}: {response.text[:200]}"
            return
        source_id = response.json()["source"]["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        source = await Source.objects.filter(uuid=source_id).afirst()
        if source is not None and source.status in {"ready", "failed"}:
            ingestion.finished = time.monotonic()
            ingestion.status = source.status
            ingestion.error = source.error
            return
        await asyncio.sleep(0.25)
    ingestion.error = "not ready after 120 s"


def saved_contents(message_ids: list[int]) -> dict[int, str]:
    from chat.models import Message

    return dict(Message.objects.filter(pk__in=message_ids).values_list("pk", "content"))


async def run(args: argparse.Namespace, app: AppServer, clients: list[Client], model_id: str, web: Any) -> None:
    assert app.process is not None
    sampler = Sampler(app.process.pid)
    sampling = asyncio.create_task(sampler.run())
    started = time.monotonic()
    stop_at = started + args.duration
    ingestions = [Ingestion(web.url(f"/load/report{i}.html")) for i in range(args.ingestions)]

    async def ingest_later() -> None:
        await asyncio.sleep(args.ingest_after)
        progress(f"{len(ingestions)} ingestions start")
        await asyncio.gather(*(ingest(clients[i], app.url, ing) for i, ing in enumerate(ingestions)))
        progress("ingestions ended")

    chats = [
        chat_user(c, app.url, model_id, stop_at, args.timeout, args.ramp * i / len(clients))
        for i, c in enumerate(clients)
    ]
    await asyncio.gather(ingest_later(), *chats)
    wall = time.monotonic() - started
    sampling.cancel()
    await asyncio.gather(sampling, return_exceptions=True)
    from asgiref.sync import sync_to_async

    ids = [e.message_id for c in clients for e in c.exchanges if e.message_id]
    report(args, clients, ingestions, sampler, wall, await sync_to_async(saved_contents)(ids))


def report(args: argparse.Namespace, clients: list[Client], ingestions: list[Ingestion], sampler: Sampler,
           wall: float, saved: dict[int, str]) -> None:  # fmt: skip
    exchanges = [e for c in clients for e in c.exchanges]
    errors = [e.error for e in exchanges if e.error] + [c.socket_error for c in clients if c.socket_error]
    done = [e for e in exchanges if e.status == "complete" and not e.error]
    ttft = [(e.first_delta_at - e.sent_at) * 1000 for e in done if e.first_delta_at]
    mismatched = [e for e in done if saved.get(e.message_id) != e.text]
    expected = " ".join(f"t{i:03d}" for i in range(args.tokens))
    wrong_text = [e for e in done if e.text != expected]
    ready = [i for i in ingestions if i.status == "ready"]
    ingest_s = [i.finished - i.started for i in ready if i.finished]
    mb = 1024 * 1024
    rows = [
        ("users (concurrent websockets)", f"{len(clients)} (sockets opened over {args.ramp:g} s)"),
        ("duration", f"{wall:.0f} s (sending for {args.duration:g} s)"),
        ("answers completed", f"{len(done)} ({len(done) / wall:.1f}/s)"),
        ("errors", f"{len(errors)}"),
        ("time to first token p50 / p99", f"{percentile(ttft, 0.5):.0f} / {percentile(ttft, 0.99):.0f} ms"
         if ttft else "-"),
        ("answer length", f"{args.tokens} tokens, {args.interval:g} ms apart"),
        ("saved message == client's text", f"{len(done) - len(mismatched)} / {len(done)}"),
        ("client's text == upstream's answer", f"{len(done) - len(wrong_text)} / {len(done)}"),
        ("saved message == upstream's answer", f"{sum(saved.get(e.message_id) == expected for e in done)} / "
         f"{len(done)}"),
        ("ingestions ready", f"{len(ready)} / {len(ingestions)}"),
        ("ingestion time p50 / max", f"{percentile(ingest_s, 0.5):.1f} / {max(ingest_s):.1f} s" if ingest_s else "-"),
        ("server CPU mean / peak (100% = 1 core)", f"{sum(sampler.cpu) / max(1, len(sampler.cpu)):.0f} / "
         f"{max(sampler.cpu, default=0):.0f} %"),
        ("server RSS start / peak", f"{sampler.rss[0] / mb:.0f} / {max(sampler.rss) / mb:.0f} MB"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure'.ljust(width)} | value |")
    print(f"| {'-' * width} | ----- |")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    if errors:
        counts: dict[str, int] = {}
        for error in errors:
            counts[error[:80]] = counts.get(error[:80], 0) + 1
        print("\nerrors by kind:")
        for error, count in sorted(counts.items(), key=lambda item: -item[1])[:10]:
            print(f"  {count:5d}  {error}")
    for ingestion in ingestions:
        if ingestion.status != "ready":
            print(f"  ingestion {ingestion.url}: {ingestion.status or 'unfinished'} {ingestion.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60, help="seconds during which users send messages")
    parser.add_argument("--ramp", type=float, default=10, help="seconds over which the users open their sockets")
    parser.add_argument("--ingestions", type=int, default=10)
    parser.add_argument("--ingest-after", type=float, default=5, help="seconds into the run")
    parser.add_argument("--tokens", type=int, default=40, help="tokens per answer")
    parser.add_argument("--interval", type=float, default=20, help="ms between tokens")
    parser.add_argument("--timeout", type=float, default=60, help="seconds an answer may take")
    args = parser.parse_args()

    ensure_postgres_database()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connections

    from models_registry.models import Provider
    from models_registry.services import provider_sync_models
    from tests.fakes.upstream import model_name
    from tests.fakes.web import FakeWeb

    fake, upstream_url = fake_start(args.tokens, args.interval)
    web = FakeWeb().start()
    for number in range(args.ingestions):
        web.set_content(f"/load/report{number}.html", document_html(number), "text/html; charset=utf-8")
    app = AppServer(Path(os.environ["VAR_DIR"]) / "daphne.log")
    try:
        provider, _ = Provider.objects.update_or_create(
            name="loadollama", defaults={"kind": Provider.Kind.OLLAMA, "base_url": upstream_url, "enabled": True}
        )
        result = provider_sync_models(provider=provider)
        if result.error:
            raise SystemExit(f"syncing the fake upstream failed: {result.error}")
        clients = users_create(args.users)
        connections.close_all()
        app.start()
        progress(f"fake upstream {upstream_url}, Daphne on :{app.port}, {len(clients)} users")
        asyncio.run(run(args, app, clients, f"loadollama/{model_name(args.interval)}", web))
        log = (Path(os.environ["VAR_DIR"]) / "daphne.log").read_text()
        print(f"\nDaphne log: {log.count('Traceback')} tracebacks")
    finally:
        app.stop()
        process_stop(fake)
        web.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
