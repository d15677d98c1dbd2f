"""How much the app adds to a streamed answer: the upstream measured directly and through the app.

Starts, on 127.0.0.1, the fake upstream `tests/fakes/upstream.py` in its own process (OpenAI
SSE and Ollama NDJSON, `--tokens` tokens per answer, on a schedule of 0 or `--interval` ms
between tokens, recording when it wrote each token) and the app under Daphne in another
(DEBUG off, quotas off). Then, for each upstream protocol (openai, ollama), it measures three
paths to the same answers:

  direct  an httpx client speaking the upstream's own protocol to the fake (the baseline;
          one measurement, shown on both the api and the ws rows)
  api     POST /api/v1/chat/completions with stream=true and an API key, read as SSE
  ws      the chat websocket /ws/chat/<uuid>/ with a session cookie: a `send` frame, then
          `delta` frames (coalesced by the app to at most one per 30 ms, so tokens are
          counted by text, never by frame) until `message.done`

Scenarios and what the columns mean:

  first token ms         request sent (HTTP request, or `send` frame on an open socket) ->
                         first token of text received; median of `--runs` sequential runs
                         (after 2 warm-ups) at zero interval. "added" is app - direct.
  tok/s 1 stream 0ms     one long answer (`--rate-tokens`, 5000) at zero interval: the tokens
                         received after the first piece / (last token received - first piece
                         received), median of `--rate-runs`. "ratio" is app/direct. (The app
                         hands on everything a network read brought at once, and the websocket
                         coalesces deltas: a 200-token answer fits in one or two reads, which
                         made this ratio a matter of luck, not of pace.)
  c=N first token ms     N streams started at once at `--interval` ms: p50 / p99 over the N
                         streams of request -> first token.
  c=N token ms           the same run: p50 / p99, over every token of every stream, of (when
                         the client had that token) - (when the fake wrote it). Token k counts
                         as received when the text received reaches the end of token k. The
                         fake and the client read the same clock (CLOCK_MONOTONIC), so this is
                         the relay's delay per token, queueing and coalescing included; direct
                         shows what the client and the loopback alone cost.
  complete               streams whose whole text equals the expected answer and that ended
                         properly ([DONE], `done`, or `message.done` with status complete and
                         the same saved content), out of those run.
  app cpu                the Daphne process's CPU time over the wall time of the app runs.
  db conns               the most connections open at once to the app's database during the
                         app runs (sampled every 50 ms), and how many were open before.

HTTP clients are opened and their connection made before a concurrent run starts, one client
per stream (with one shared httpx pool of 200 connections, the starts of 200 streams spread
over seconds), and sockets are opened before the `send` frames go out: the runs measure the
relay, not TCP accept queues. Every stream has its own prompt, which keys the fake's record;
every websocket stream has its own conversation (one running answer per conversation).

Daphne is restarted for the second upstream, and before each app run of 50 or more concurrent
streams (then warmed by one answer on that path), so that what an earlier scenario left behind
(database connections, stuck generations) does not decide the next one's numbers. A run stays
bounded when the app fails: a stream is given up `--timeout` seconds (30) after its schedule
ends, and sequential rounds stop after 30 s. ("Complete" asks that every token arrive, not
that it arrive soon: on 2 cores, 200 sends at once keep one Daphne process busy for seconds
before the last answers start, which the first-token p99 shows.) The Daphne log is kept in a temporary directory, and
its tracebacks are counted at the end.

Uses DATABASE_URL and REDIS_URL from the environment, by default
postgres://postgres@127.0.0.1:5432/multillm_bench (created if missing, and migrated) and
redis://127.0.0.1:6379/0; the channel layer prefix is bench<pid>.

    .venv/bin/python bench/relay.py [--tokens 200] [--interval 20] [--concurrency 1,10,50,200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import ensure_postgres_database, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/multillm_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.update(
    DJANGO_SETTINGS_MODULE="multillm.settings",
    DEBUG="off",
    SECRET_KEY="bench",
    ALLOWED_HOSTS="127.0.0.1,localhost",
    LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
    CHANNEL_LAYER_PREFIX=f"bench{os.getpid()}",
    QUOTA_REQUESTS_PER_MINUTE="0",
    QUOTA_TOKENS_PER_DAY="0",
    QUOTA_CONCURRENT_GENERATIONS="0",
    VAR_DIR=tempfile.mkdtemp(prefix="multillm-relay-"),
)

UPSTREAMS = {"openai": "relayoai", "ollama": "relayollama"}  # protocol -> provider name
PATHS = ("api", "ws")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (the command name may hold spaces)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- processes --------------------------------------------------------------------------


def fake_start(tokens: int, interval_ms: float, long_tokens: int = 0) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "tests.fakes.upstream", "--port", "0", "--tokens", str(tokens),
               "--intervals", f"0,{interval_ms:g}", "--long-tokens", str(long_tokens)]  # fmt: skip
    fake = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert fake.stdout is not None
    line = fake.stdout.readline()
    if not line.startswith("listening on "):
        fake.kill()
        raise SystemExit(f"the fake upstream did not start: {line!r}")
    return fake, line.split()[-1]


def daphne_start(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    import httpx

    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "multillm.asgi:application"]
    with log_path.open("ab") as log:
        daphne = subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if daphne.poll() is not None:
            raise SystemExit(f"Daphne exited with {daphne.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False).status_code == 200:
                return daphne
        time.sleep(0.2)
    daphne.kill()
    raise SystemExit(f"Daphne did not answer /healthz in 30 s:\n{log_path.read_text()[-3000:]}")


def process_stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class AppServer:
    """The app under Daphne in a subprocess, restartable; its CPU time is summed over restarts."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._cpu_before = 0.0  # of the processes already stopped

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        self.process = daphne_start(self.port, self.log_path)

    def stop(self) -> None:
        if self.process is not None:
            self._cpu_before = self.cpu()
            process_stop(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cpu(self) -> float:
        if self.process is None or self.process.poll() is not None:
            return self._cpu_before
        return self._cpu_before + cpu_seconds(self.process.pid)


# --- app data ---------------------------------------------------------------------------


@dataclass
class AppData:
    api_key: str
    session_cookie: str
    conversations: Iterator[str]  # uuids of fresh conversations, one per websocket stream
    model_ids: dict[tuple[str, str], str]  # (protocol, fake model name) -> app model id


def app_data_create(*, upstream_url: str, fake_models: list[str], conversations: int) -> AppData:
    """A user with a session, an API key, both providers with their models synced, and conversations."""
    from django.contrib.auth.models import User
    from django.test import Client

    from chat.api_keys import api_key_create
    from chat.models import ApiKey, Conversation
    from models_registry.models import Provider
    from models_registry.services import provider_sync_models

    user, _ = User.objects.get_or_create(username="relaybench")
    # Earlier runs' conversations (and their API exchanges) would only slow the queries down.
    Conversation.objects.filter(owner=user).delete()
    ApiKey.objects.filter(user=user).delete()
    model_ids = {}
    for protocol, name in UPSTREAMS.items():
        kind = Provider.Kind.OPENAI_COMPATIBLE if protocol == "openai" else Provider.Kind.OLLAMA
        provider, _ = Provider.objects.update_or_create(
            name=name, defaults={"kind": kind, "base_url": upstream_url, "api_key": "", "enabled": True}
        )
        result = provider_sync_models(provider=provider)
        if result.error:
            raise SystemExit(f"syncing {name} failed: {result.error}")
        for model in fake_models:
            model_ids[protocol, model] = f"{name}/{model}"
    _, raw_key = api_key_create(user=user, name="relay benchmark")
    client = Client()
    client.force_login(user)
    rows = Conversation.objects.bulk_create(Conversation(owner=user, title="relay") for _ in range(conversations))
    return AppData(raw_key, client.cookies["sessionid"].value, iter([str(row.uuid) for row in rows]), model_ids)


# --- clients ----------------------------------------------------------------------------


@dataclass
class Stream:
    """One answer as a client received it, on time.monotonic()."""

    key: str
    sent_at: float = 0.0
    marks: list[tuple[float, int]] = field(default_factory=list)  # (arrival, length of the text so far)
    text: str = ""
    ended: bool = False
    saved: str | None = None  # websocket: the content of `message.done`
    error: str = ""

    def take(self, piece: str) -> None:
        self.text += piece
        self.marks.append((time.monotonic(), len(self.text)))

    def first_token(self) -> float | None:
        return self.marks[0][0] - self.sent_at if self.marks else None

    def complete(self, expected: str) -> bool:
        return self.ended and not self.error and self.text == expected and self.saved in (None, expected)


async def read_sse(response: Any, stream: Stream) -> None:
    async for line in response.aiter_lines():
        if not line.startswith("data: "):
            continue
        if line == "data: [DONE]":
            stream.ended = True
            return
        event = json.loads(line[6:])
        if "error" in event:
            stream.error = str(event["error"])[:200]
        for choice in event.get("choices") or []:
            if piece := (choice.get("delta") or {}).get("content"):
                stream.take(piece)


async def read_ndjson(response: Any, stream: Stream) -> None:
    async for line in response.aiter_lines():
        if not line:
            continue
        part = json.loads(line)
        if "error" in part:
            stream.error = str(part["error"])[:200]
        if piece := (part.get("message") or {}).get("content"):
            stream.take(piece)
        if part.get("done"):
            stream.ended = True
            return


async def http_stream(client: Any, url: str, body: dict[str, Any], stream: Stream, ndjson: bool = False) -> None:
    stream.sent_at = time.monotonic()
    async with client.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            stream.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
            return
        await (read_ndjson if ndjson else read_sse)(response, stream)


async def ws_stream(socket: Any, model_id: str, stream: Stream) -> None:
    """Send the prompt on an open chat socket and merge the answer's deltas by offset."""
    stream.sent_at = time.monotonic()
    await socket.send(json.dumps({"type": "send", "content": stream.key, "models": [model_id]}))
    answer = None
    async for raw in socket:
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "message.created" and frame["message"]["role"] == "assistant":
            answer = frame["message"]["id"]
        elif kind == "delta" and frame["message"] == answer:
            offset, piece = frame["offset"], frame["text"]
            if offset > len(stream.text):
                stream.error = stream.error or f"a delta at offset {offset} left a gap after {len(stream.text)}"
            elif offset + len(piece) > len(stream.text):
                stream.text = stream.text[:offset]
                stream.take(piece)
        elif kind == "message.done" and frame["message"] == answer:
            stream.saved = frame.get("content")
            stream.ended = frame.get("status") == "complete"
            if not stream.ended:
                stream.error = stream.error or f"status {frame.get('status')}: {frame.get('error')}"
            return
        elif kind == "error":
            stream.error = f"{frame.get('code')}: {frame.get('detail')}"
            if answer is None:
                return
    stream.error = stream.error or f"the socket closed before message.done (code {socket.close_code})"


async def bounded(run: Awaitable[None], stream: Stream, timeout: float) -> Stream:
    try:
        await asyncio.wait_for(run, timeout)
    except TimeoutError:
        stream.error = stream.error or f"no end after {timeout:g} s"
    except Exception as exc:
        stream.error = stream.error or f"{type(exc).__name__}: {exc}"
    return stream


# --- measurements -----------------------------------------------------------------------

ROUNDS_BUDGET = 30.0  # seconds of sequential rounds per measurement, to bound a run on a failing app
RESTART_FROM = 50  # concurrent app runs of this many streams or more get a fresh Daphne


class DatabaseWatch:
    """The most connections open at once to the app's Postgres database while inside `async with`,
    sampled every 50 ms. Its own connection is opened once, before the app can use them all up,
    and is not counted."""

    def __init__(self) -> None:
        self.before: int | None = None  # open when the first round of a measurement started
        self.peak: int | None = None
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None

    async def open(self, settings: dict[str, Any]) -> None:
        if "postgresql" not in settings["ENGINE"]:
            return
        import psycopg

        self._connection = await psycopg.AsyncConnection.connect(
            host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
            password=settings["PASSWORD"] or None, dbname=settings["NAME"], autocommit=True,
        )  # fmt: skip

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def reset(self) -> None:
        self.before = self.peak = None

    def summary(self) -> str | None:
        return None if self.peak is None else f"{self.peak} ({self.before} before)"

    async def __aenter__(self) -> DatabaseWatch:
        if self._connection is not None:
            self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            cursor = await self._connection.execute(
                "SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database()"
            )
            (count,) = await cursor.fetchone()
            self.before = count if self.before is None else self.before
            self.peak = max(self.peak or 0, count)
            await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


@dataclass
class Measured:
    streams: list[Stream]
    emitted: dict[str, list[float]]  # stream key -> when the fake wrote each token
    expected: str  # the answer every stream should have got
    cpu: float | None = None  # Daphne's CPU time / wall time, for app paths
    database_connections: str | None = None  # app paths: the most open at once (and how many before)


class Bench:
    def __init__(self, args: argparse.Namespace, upstream_url: str, app: AppServer, data: AppData) -> None:
        from django.conf import settings

        from tests.fakes.upstream import LONG_MODEL, answer_tokens, model_name

        self.args = args
        self.upstream_url = upstream_url
        self.app = app
        self.data = data
        self.database = settings.DATABASES["default"]
        self.watch = DatabaseWatch()
        self.tokens = answer_tokens(args.tokens)
        self.expected = "".join(self.tokens)
        self.ends = list(itertools.accumulate(len(token) for token in self.tokens))  # where each token ends
        self.burst_model, self.paced_model, self.long_model = model_name(0), model_name(args.interval), LONG_MODEL
        self.long_tokens = answer_tokens(args.rate_tokens)
        self.tls = ssl.create_default_context()  # shared: building one per client costs ~10 ms
        self.serial = 0

    def key(self, label: str) -> str:
        self.serial += 1
        return f"relay {label} #{self.serial}"

    def http_client(self, base_url: str, headers: dict[str, str] | None = None) -> Any:
        import httpx

        return httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=self.stream_budget, trust_env=False, verify=self.tls
        )

    @property
    def stream_budget(self) -> float:
        """Seconds a stream may take: its schedule, then `--timeout`."""
        return self.args.timeout + len(self.tokens) * self.args.interval / 1000

    async def fake_streams(self) -> dict[str, list[float]]:
        async with self.http_client(self.upstream_url) as client:
            response = await client.get("/_bench/streams")
            await client.post("/_bench/reset")
        return {key: record["emitted"] for key, record in response.json()["streams"].items()}

    async def settle(self) -> None:
        """Wait until Daphne is idle (5 s at most): background saves of the last run must not slow the next."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            before = self.app.cpu()
            await asyncio.sleep(0.25)
            if self.app.cpu() - before < 0.02:
                return

    async def restart_app(self, protocol: str, warm: tuple[str, ...] = ()) -> None:
        """A fresh Daphne, warmed by one answer on each of the `warm` paths: what earlier runs left
        behind (open database connections, stuck generations) must not decide the next run."""
        await asyncio.to_thread(self.app.restart)
        for path in warm:
            await self.measure(path, protocol, self.burst_model, concurrency=1, runs=1)
        progress(f"restarted Daphne on :{self.app.port}{', warmed up on ' + ', '.join(warm) if warm else ''}")

    # One stream on each path. `client` is an httpx client, or for ws an open socket.

    def one(self, path: str, protocol: str, model: str) -> Callable[[Any, Stream], Awaitable[None]]:
        messages = lambda stream: [{"role": "user", "content": stream.key}]  # noqa: E731
        if path == "direct" and protocol == "openai":
            return lambda client, stream: http_stream(client, "/v1/chat/completions", {
                "model": model, "messages": messages(stream), "stream": True,
                "stream_options": {"include_usage": True}}, stream)  # fmt: skip
        if path == "direct":
            return lambda client, stream: http_stream(
                client, "/api/chat", {"model": model, "messages": messages(stream), "stream": True}, stream, True
            )
        model_id = self.data.model_ids[protocol, model]
        if path == "api":
            return lambda client, stream: http_stream(
                client, "/api/v1/chat/completions", {"model": model_id, "messages": messages(stream), "stream": True},
                stream,
            )  # fmt: skip
        return lambda socket, stream: ws_stream(socket, model_id, stream)

    async def clients(self, path: str, count: int) -> list[Any]:
        """`count` connected clients (httpx clients with their connection made, or open chat sockets),
        or for each that could not connect, the error."""
        gate = asyncio.Semaphore(25)  # Daphne listens with Twisted's backlog of 50

        async def connect() -> Any:
            async with gate:
                if path == "ws":
                    return await self.ws_open()
                if path == "direct":
                    client = self.http_client(self.upstream_url)
                    await client.get("/api/version")
                else:
                    client = self.http_client(self.app.url, {"Authorization": f"Bearer {self.data.api_key}"})
                    await client.get("/healthz")
                return client

        return list(await asyncio.gather(*(connect() for _ in range(count)), return_exceptions=True))

    async def ws_open(self) -> Any:
        from websockets.asyncio.client import connect

        return await connect(
            f"ws://127.0.0.1:{self.app.port}/ws/chat/{next(self.data.conversations)}/", origin=self.app.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"sessionid={self.data.session_cookie}"}, proxy=None,
            open_timeout=30, ping_interval=None, max_size=None,
        )  # fmt: skip

    @staticmethod
    async def close(clients: list[Any]) -> None:
        await asyncio.gather(*(client.close() if hasattr(client, "recv") else client.aclose() for client in clients))

    async def measure(self, path: str, protocol: str, model: str, *, concurrency: int, runs: int) -> Measured:
        """`runs` rounds of `concurrency` simultaneous streams, one round after another
        (fewer when the rounds have taken ROUNDS_BUDGET seconds)."""
        run_one = self.one(path, protocol, model)
        streams: list[Stream] = []
        cpu_used = wall = 0.0
        self.watch.reset()
        await self.fake_streams()  # resets the fake's record
        for _ in range(runs):
            if wall > ROUNDS_BUDGET:
                break
            clients = await self.clients(path, concurrency)
            batch = [Stream(self.key(f"{path} {protocol} {model} c={concurrency}")) for _ in clients]
            pending = []
            for client, stream in zip(clients, batch, strict=True):
                if isinstance(client, BaseException):
                    stream.error = f"could not connect: {type(client).__name__}: {str(client)[:100]}"
                else:
                    pending.append(bounded(run_one(client, stream), stream, self.stream_budget))
            cpu_before, started = self.app.cpu(), time.monotonic()
            async with self.watch:
                await asyncio.gather(*pending)
            cpu_used, wall = cpu_used + self.app.cpu() - cpu_before, wall + time.monotonic() - started
            await self.close([client for client in clients if not isinstance(client, BaseException)])
            streams += batch
            if path != "direct":
                await self.settle()
        emitted = await self.fake_streams()
        app = path != "direct"
        expected = "".join(self.long_tokens) if model == self.long_model else self.expected
        return Measured(streams, emitted, expected, cpu_used / wall if app else None,
                        self.watch.summary() if app else None)  # fmt: skip

    def token_delays(self, measured: Measured) -> list[float]:
        delays = []
        for stream in measured.streams:
            emitted = measured.emitted.get(stream.key, [])
            mark = 0
            for index, end in enumerate(self.ends[: len(emitted)]):
                while mark < len(stream.marks) and stream.marks[mark][1] < end:
                    mark += 1
                if mark == len(stream.marks):
                    break
                delays.append(stream.marks[mark][0] - emitted[index])
        return delays

    def rate(self, stream: Stream) -> float | None:
        """Tokens a second of the long answer after its first piece: the tokens that arrived after
        the first read (a relay may pass on several at once) over the time from the first piece to
        the last. None unless the whole answer came, in two pieces at least."""
        ends = itertools.accumulate(len(token) for token in self.long_tokens)
        if len(stream.marks) < 2 or stream.marks[-1][1] < sum(len(token) for token in self.long_tokens):
            return None
        later = sum(1 for end in ends if end > stream.marks[0][1])
        span = stream.marks[-1][0] - stream.marks[0][0]
        return later / span if span > 0 else None

    def completed(self, measured: Measured) -> str:
        return f"{sum(s.complete(measured.expected) for s in measured.streams)}/{len(measured.streams)}"

    def errors(self, measured: Measured) -> list[str]:
        """Why streams were not complete, each reason once."""
        reasons = set()
        expected = measured.expected
        for stream in measured.streams:
            if stream.error:
                reasons.add(stream.error)
            elif not stream.ended:
                reasons.add("no end marker")
            elif stream.text != expected:
                reasons.add(f"text differs ({len(stream.text)} of {len(expected)} characters)")
            elif stream.saved not in (None, expected):
                reasons.add(f"saved content differs ({len(stream.saved or '')} of {len(expected)} characters)")
        return sorted(reasons)


# --- the run ----------------------------------------------------------------------------


@dataclass
class Row:
    path: str
    upstream: str
    scenario: str
    direct: str
    app: str
    compare: str
    complete: str
    cpu: str
    connections: str


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.2f}"


def p50_p99(values: list[float]) -> tuple[float, float] | None:
    return (percentile(values, 0.5), percentile(values, 0.99)) if values else None


def pair(values: tuple[float, float] | None) -> str:
    return "n/a" if values is None else f"{values[0] * 1000:.2f} / {values[1] * 1000:.2f}"


def added(app: tuple[float, float] | None, direct: tuple[float, float] | None) -> str:
    if app is None or direct is None:
        return "n/a"
    return f"{(app[0] - direct[0]) * 1000:+.2f} / {(app[1] - direct[1]) * 1000:+.2f} ms"


class Report:
    """The table's rows and, per aim, each path's verdict."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.rows: list[Row] = []
        self.aims: dict[str, list[str]] = {}

    def progress(self, path: str, protocol: str, what: str, got: Measured) -> None:
        reasons = self.bench.errors(got)
        cpu = "" if got.cpu is None else f", Daphne cpu {got.cpu:.0%}, db connections {got.database_connections}"
        why = f"; not complete: {'; '.join(reasons[:3])}" if reasons else ""
        progress(f"{path:6} {protocol:6} {what}, {self.bench.completed(got)} complete{cpu}{why}")

    def row(self, path: str, protocol: str, scenario: str, direct: str, app: str, compare: str, got: Measured) -> None:
        cpu = "" if got.cpu is None else f"{got.cpu:.0%}"
        connections = got.database_connections or ""
        self.rows.append(
            Row(path, protocol, scenario, direct, app, compare, self.bench.completed(got), cpu, connections)
        )

    def aim(self, aim: str, path: str, protocol: str, value: str, ok: bool) -> None:
        self.aims.setdefault(aim, []).append(f"{path}/{protocol} {value} {'ok' if ok else 'MISS'}")


async def first_token(report: Report, protocol: str) -> None:
    """Sequential runs at zero interval, after 2 warm-ups (imports, caches, connections)."""
    bench = report.bench
    medians: dict[str, float | None] = {}
    for path in ("direct", *PATHS):
        await bench.measure(path, protocol, bench.burst_model, concurrency=1, runs=2)
        got = await bench.measure(path, protocol, bench.burst_model, concurrency=1, runs=bench.args.runs)
        firsts = [t for s in got.streams if (t := s.first_token()) is not None]
        medians[path] = statistics.median(firsts) if firsts else None
        report.progress(path, protocol, f"first token: median {ms(medians[path])} ms of {len(firsts)}", got)
        app, direct = medians[path], medians["direct"]
        if path == "direct":
            continue
        more = None if app is None or direct is None else app - direct
        compare = "n/a" if more is None else f"{more * 1000:+.2f} ms"
        report.row(path, protocol, "first token ms p50", ms(direct), ms(app), compare, got)
        report.aim("first token added < 5 ms (p50)", path, protocol, compare, more is not None and more < 0.005)


async def relay_rate(report: Report, protocol: str) -> None:
    """One long answer (`--rate-tokens`) at zero interval, `--rate-runs` times: long enough to span
    many network reads, so that what is measured is the relay's pace, not one read's luck."""
    bench = report.bench
    rates: dict[str, float | None] = {}
    for path in ("direct", *PATHS):
        got = await bench.measure(path, protocol, bench.long_model, concurrency=1, runs=bench.args.rate_runs)
        measured = [r for s in got.streams if (r := bench.rate(s)) is not None]
        rates[path] = statistics.median(measured) if measured else None
        report.progress(path, protocol, f"rate: median {rates[path] or 0:.0f} tok/s", got)
        app, direct = rates[path], rates["direct"]
        if path == "direct":
            continue
        ratio = app / direct if app and direct else None
        scenario = f"tok/s 1 stream 0ms ({len(bench.long_tokens)} tok)"
        compare = "n/a" if ratio is None else f"{ratio:.2f}x"
        report.row(path, protocol, scenario, f"{direct or 0:.0f}", f"{app or 0:.0f}", compare, got)
        aim = "relay >= 90% of the upstream's zero-interval rate"
        report.aim(aim, path, protocol, "n/a" if ratio is None else f"{ratio:.0%}", ratio is not None and ratio >= 0.9)


async def concurrent(report: Report, protocol: str, concurrency: int) -> None:
    """`concurrency` streams started at once on the paced schedule."""
    bench = report.bench
    firsts: dict[str, tuple[float, float] | None] = {}
    delays: dict[str, tuple[float, float] | None] = {}
    for path in ("direct", *PATHS):
        if path != "direct" and concurrency >= RESTART_FROM:
            await bench.restart_app(protocol, warm=(path,))
        started = time.monotonic()
        got = await bench.measure(path, protocol, bench.paced_model, concurrency=concurrency, runs=1)
        firsts[path] = p50_p99([t for s in got.streams if (t := s.first_token()) is not None])
        delays[path] = p50_p99(bench.token_delays(got))
        report.progress(path, protocol, f"c={concurrency}: first token {pair(firsts[path])} ms, token "
                        f"{pair(delays[path])} ms, {time.monotonic() - started:.1f} s", got)  # fmt: skip
        if path == "direct":
            continue
        scenario = f"c={concurrency} first token ms p50/p99"
        report.row(path, protocol, scenario, pair(firsts["direct"]), pair(firsts[path]),
                   added(firsts[path], firsts["direct"]), got)  # fmt: skip
        scenario = f"c={concurrency} token ms p50/p99"
        report.row(path, protocol, scenario, pair(delays["direct"]), pair(delays[path]),
                   added(delays[path], delays["direct"]), got)  # fmt: skip
        if concurrency == max(bench.args.concurrency):
            done = sum(s.complete(got.expected) for s in got.streams)
            aim = f"{concurrency} concurrent streams, every token delivered"
            report.aim(aim, path, protocol, f"{done}/{len(got.streams)}", done == len(got.streams) == concurrency)


async def run(report: Report) -> None:
    bench = report.bench
    await bench.watch.open(bench.database)
    try:
        for index, protocol in enumerate(UPSTREAMS):
            if index:
                await bench.restart_app(protocol)
            await first_token(report, protocol)
            await relay_rate(report, protocol)
            for concurrency in bench.args.concurrency:
                await concurrent(report, protocol, concurrency)
    finally:
        await bench.watch.close()


def table(rows: list[Row]) -> str:
    header = Row("path", "upstream", "scenario", "direct", "app", "added / ratio", "complete", "app cpu", "db conns")
    widths = [max(len(getattr(row, name)) for row in [header, *rows]) for name in Row.__dataclass_fields__]
    lines = []
    for index, row in enumerate([header, *rows]):
        cells = [getattr(row, name) for name in Row.__dataclass_fields__]
        lines.append("  ".join(cell.ljust(width) if i < 3 else cell.rjust(width)
                               for i, (cell, width) in enumerate(zip(cells, widths, strict=True))))  # fmt: skip
        if index == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def log_summary(log_path: Path) -> str:
    text = log_path.read_text(errors="replace")
    tracebacks = text.count("Traceback (most recent call last)")
    warnings = sum(1 for line in text.splitlines() if " WARNING " in line or " ERROR " in line)
    return f"Daphne log {log_path}: {tracebacks} tracebacks, {warnings} WARNING/ERROR lines"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=200, help="tokens per answer")
    parser.add_argument("--interval", type=float, default=20, help="ms between tokens for the concurrent runs")
    parser.add_argument("--runs", type=int, default=20, help="sequential runs for the first token")
    parser.add_argument("--rate-runs", type=int, default=5, help="runs for the zero-interval rate")
    parser.add_argument("--rate-tokens", type=int, default=5000, help="tokens of the answer for the rate")
    parser.add_argument("--concurrency", default="1,10,50,200", help="concurrent streams, comma-separated")
    parser.add_argument("--timeout", type=float, default=30, help="seconds a stream may take beyond its schedule")
    args = parser.parse_args()
    args.concurrency = [int(value) for value in args.concurrency.split(",")]

    ensure_postgres_database()
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.conf import settings
    from django.db import connections

    try:
        import websockets  # noqa: F401
    except ImportError:
        raise SystemExit(
            "bench/relay.py needs the websockets client: .venv/bin/pip install -r requirements/dev.txt"
        ) from None

    fake, upstream_url = fake_start(args.tokens, args.interval, args.rate_tokens)
    app = AppServer(Path(os.environ["VAR_DIR"]) / "daphne.log")
    try:
        from tests.fakes.upstream import LONG_MODEL, model_name

        restarts = len(UPSTREAMS) * (1 + 2 * sum(c >= RESTART_FROM for c in args.concurrency))
        per_upstream = args.runs + 2 + args.rate_runs + sum(args.concurrency)
        fake_models = [model_name(0), model_name(args.interval), LONG_MODEL]
        data = app_data_create(upstream_url=upstream_url, fake_models=fake_models,
                               conversations=per_upstream * len(UPSTREAMS) + restarts)  # fmt: skip
        connections.close_all()  # the bench's own connection would count against the app's
        app.start()
        progress(f"fake upstream {upstream_url} (pid {fake.pid}), Daphne on :{app.port}")
        report = Report(Bench(args, upstream_url, app, data))
        cpu_before = {"daphne": app.cpu(), "fake": cpu_seconds(fake.pid), "bench": time.process_time()}
        wall = time.monotonic()
        asyncio.run(run(report))
        wall = time.monotonic() - wall
        cpu_after = {"daphne": app.cpu(), "fake": cpu_seconds(fake.pid), "bench": time.process_time()}
        cpu = {name: (cpu_after[name] - cpu_before[name]) / wall for name in cpu_before}
    finally:
        app.stop()
        process_stop(fake)

    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(f"relay: {args.tokens} tokens per answer, concurrent runs at {args.interval:g} ms between tokens; "
          f"database {database}, channel layer {layer}, {os.cpu_count()} CPUs")  # fmt: skip
    print("direct = an httpx client on the fake upstream's own protocol (the same numbers on api and ws rows)")
    print(table(report.rows))
    print()
    print("aims:")
    for aim, results in report.aims.items():
        print(f"  {aim}: {', '.join(results)}")
    print(f"mean CPU over the measurements: Daphne {cpu['daphne']:.0%}, fake upstream {cpu['fake']:.0%}, "
          f"bench clients {cpu['bench']:.0%}")  # fmt: skip
    print(log_summary(app.log_path))
    print(f"run took {time.monotonic() - STARTED:.0f} s")


if __name__ == "__main__":
    main()
