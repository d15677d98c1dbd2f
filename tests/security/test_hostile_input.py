"""The hostile-string sweep: every page route, every admin form, every websocket frame type and
every API body takes hostile text (NUL, lone surrogates, control and bidirectional characters,
invalid UTF-8 where bytes are taken, 1 MB strings) without a server error, without an unhandled
consumer exception, and without keeping a quota ticket.

The routes come from the URL resolver and the frame types from chat.realtime: a new route or
frame fails `test_every_route_and_frame_is_in_the_sweep` until it is registered below, with
the fields it reads. Property-based (hypothesis), bounded for a 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import AsyncClient, Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chat import generation, realtime
from chat.api_keys import api_key_create
from chat.exchanges import exchange_start, message_finish
from chat.models import ApiKey, Conversation, Message, Preset, UserLimits, Vote
from chat.presets import ModelSettings, preset_create
from ingestion.models import Chunk, Document, FetchedUrl, Source
from models_registry.models import LLMModel, Provider
from tests.conftest import make_conversation, make_user, open_socket
from tests.security.test_isolation import url_routes

LLAMA = "ollama/llama3.2:1b"
QWEN = "ollama/qwen2.5:0.5b"

# Pieces of hostile text; hypothesis joins them with arbitrary text.
PIECES = [
    "\x00", "\ud800", "\udfff", "\ud83d", "\u202e", "\u2066", "\u200f", "\x1b[31m", "\x7f", "\x85", "\r\n",
    "\u2028", "\ufeff", "\u200b", "\t", " ", "é", "東京", "🙂", "<script>alert(1)</script>", "' OR '1'='1",
    "%00", "\\", "{{ x }}", "</textarea>", "a" * 300,
]  # fmt: skip
HOSTILE = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), max_size=10).map("".join)
HUGE = "\u202e" + "x" * (1024 * 1024) + "\x00\ud800"  # a 1 MB string, with the worst at its ends


def bounded(examples: int) -> Any:
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def wire(value: str) -> bytes:
    """Text as a client could put it on the wire: lone surrogates as the (invalid) UTF-8 bytes
    that a careless encoder writes, which is what a server sees of them over HTTP."""
    return value.encode("utf-8", "surrogatepass")


def form_body(fields: dict[str, str]) -> bytes:
    return "&".join(f"{quote(name)}={quote(wire(value))}" for name, value in fields.items()).encode()


def multipart_body(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "hostileboundary7f3a"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + wire(value))
    for name, (file_name, body) in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="'.encode()
        parts.append(head + wire(file_name.replace('"', "")) + b'"\r\nContent-Type: text/plain\r\n\r\n' + body)
    return b"\r\n".join(parts) + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@dataclass
class World:
    """A staff user (the admin and staff pages are swept too) with one of each object."""

    user: User
    conversation: Conversation
    prompt: Message
    answer: Message
    preset: Preset
    source: Source
    key: ApiKey
    raw_key: str
    client: Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = Client()
        self.client.force_login(self.user)

    def fresh_conversation(self) -> Conversation:
        return make_conversation(self.user, title="fresh")


def make_world(user: User, llama: LLMModel, qwen: LLMModel) -> World:
    conversation = make_conversation(user, title="A conversation")
    exchange = exchange_start(conversation=conversation, content="Compare these", models=[llama, qwen])
    for answer in exchange.assistant_messages:
        message_finish(message_id=answer.pk, content="An answer", status="complete")
    preset = preset_create(owner=user, name="A preset", model_settings=ModelSettings("Be brief.", 0.5, 100))
    source = Source.objects.create(owner=user, url="https://example.com/a.html")
    conversation.sources.add(source)
    key, raw_key = api_key_create(user=user, name="sweep")
    return World(
        user, conversation, exchange.user_message, exchange.assistant_messages[0], preset, source, key, raw_key
    )


@pytest.fixture
def world(db: None, llama: LLMModel, settings: Any) -> World:
    settings.QUOTA_REQUESTS_PER_MINUTE = 0  # the sweep sends many requests; the limits it checks are the others
    user = make_user("mallory", is_staff=True, is_superuser=True)
    return make_world(user, llama, LLMModel.objects.get(provider=llama.provider, name="qwen2.5:0.5b"))


# Page routes: the fields each reads (GET query or POST form), with valid values for the
# others, so that the hostile one reaches the service behind the view. `None`: no input to sweep
# beyond the URL itself (walked with a hostile query string all the same).


@dataclass(frozen=True)
class Entry:
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    kwargs: Callable[[World], dict[str, Any]] = lambda w: {}
    files: tuple[str, ...] = ()


def _in_conversation(w: World) -> dict[str, Any]:
    return {"conversation_uuid": w.conversation.uuid}


def _fresh(w: World) -> dict[str, Any]:
    return {"conversation_uuid": w.fresh_conversation().uuid}


SETTINGS_FIELDS = {"system_prompt": "Be kind.", "temperature": "0.7", "max_tokens": "200"}
PAGE_ROUTES: dict[str, list[Entry]] = {
    "chat:home": [Entry("GET", {"q": "budget"})],
    "chat:conversation_new": [Entry("POST")],
    "chat:conversation_detail": [Entry("GET", {"q": "budget"}, _in_conversation)],
    "chat:conversation_turns": [Entry("GET", {"before": "1"}, _in_conversation)],
    "chat:leaderboard": [Entry("GET")],
    "chat:source_attach": [
        Entry("POST", {"url": "https://example.com/b.html"}, _fresh),
        Entry("POST", {}, _fresh, files=("file",)),
    ],
    "chat:conversation_rename": [Entry("POST", {"title": "Renamed"}, _in_conversation)],
    "chat:conversation_pin": [Entry("POST", {"pinned": "1"}, _in_conversation)],
    "chat:conversation_delete": [Entry("POST", {}, _fresh), Entry("GET", {}, _in_conversation)],
    "chat:conversation_settings": [Entry("POST", SETTINGS_FIELDS, _in_conversation)],
    "chat:conversation_settings_new": [Entry("POST", SETTINGS_FIELDS)],
    "chat:preset_apply": [Entry("POST", {"preset": "<preset>"}, _in_conversation)],
    "chat:preset_apply_new": [Entry("POST", {"preset": "<preset>"})],
    "chat:conversation_export": [
        Entry("GET", {}, lambda w, kind=kind: {**_in_conversation(w), "kind": kind}) for kind in ("json", "md")
    ],
    "chat:conversation_import": [Entry("POST", {}, files=("file",))],
    "chat:sidebar": [Entry("GET", {"q": "budget", "page": "2", "current": "x"})],
    "chat:preset_save": [
        Entry("POST", {"preset_name": "Mine", "shared": "on", "conversation": "<conversation>", **SETTINGS_FIELDS})
    ],
    "chat:preset_delete": [Entry("POST", {"preset": "<preset>", "conversation": "<conversation>"})],
    "chat:usage": [Entry("GET", {"format": "csv"})],
    "chat:usage_everyone": [Entry("GET", {"format": "csv"})],
    "chat:source_detach": [Entry("POST", {}, lambda w: {"source_uuid": w.source.uuid})],
    "chat:api_keys": [Entry("POST", {"name": "Laptop"})],
    "chat:api_key_revoke": [Entry("POST", {}, lambda w: {"key_uuid": w.key.uuid})],
    "login": [Entry("POST", {"username": "mallory", "password": "wrong", "next": "/"})],
    "logout": [Entry("POST", {"next": "/"})],
    "healthz": [Entry("GET")],
    "metrics": [Entry("GET")],
    "api_openapi": [Entry("GET")],
    "api_docs": [Entry("GET")],
}
# The API's routes are swept with JSON bodies (API_BODIES) and bearer keys, below.
API_ROUTES = {"api_models", "api_chat_completions", "api_embeddings", "api_sources"}
# Routes that read nothing from a request. (`/readyz` opens connections of its own, which a test
# inside a transaction cannot.)
NO_INPUT = {"readyz", "favicon"}


def _valid(w: World, value: str) -> str:
    return {"<preset>": str(w.preset.uuid), "<conversation>": str(w.conversation.uuid)}.get(value, value)


def _export_with(value: str) -> bytes:
    """A conversation export with the hostile text in every string it has."""
    data = {
        "format": "multi-llm-chat/conversation",
        "version": 1,
        "exported_at": value,
        "conversation": {"title": value, "system_prompt": value, "selected_models": [value], "blind": False},
        "messages": [
            {"id": 1, "role": "user", "content": value},
            {"id": 2, "parent": 1, "role": "assistant", "content": value, "model": value, "error": value,
             "error_code": value, "citations": [{value: value, "title": value, "excerpt": value}]},
        ],
    }  # fmt: skip
    return json.dumps(data).encode()  # ASCII: NUL and lone surrogates as \u escapes


def _requests(w: World, entry: Entry, value: str) -> list[tuple[dict[str, str], dict[str, tuple[str, bytes]]]]:
    """(fields, files) of each request for one hostile value: in each field in turn, the
    others valid; in the query of a route without fields; in each file's name and body."""
    valid = {name: _valid(w, default) for name, default in entry.fields.items()}
    variants: list[tuple[dict[str, str], dict[str, tuple[str, bytes]]]] = []
    for name in entry.fields:
        variants.append(({**valid, name: value}, {}))
    if not entry.fields and not entry.files:
        variants.append(({"q": value}, {}))
    for name in entry.files:
        variants.append((valid, {name: (value + ".txt", wire(value))}))
        variants.append((valid, {name: ("notes.json", _export_with(value))}))
        variants.append((valid, {name: ("notes.txt", b"\xff\xfe\xfa invalid \xc3\x28 utf-8 \xed\xa0\x80")}))
    return variants


def _send(client: Client, method: str, url: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> int:
    if method == "GET":
        response = client.generic("GET", url + "?" + form_body(fields).decode())
    elif files:
        body, content_type = multipart_body(fields, files)
        response = client.generic("POST", url, body, content_type=content_type)
    else:
        response = client.generic("POST", url, form_body(fields), content_type="application/x-www-form-urlencoded")
    _drain(response)
    return response.status_code


def _drain(response: Any) -> None:
    """Read a streamed body to its end (an async one, from the API, too)."""
    if not response.streaming:
        return
    if response.is_async:

        async def read() -> None:
            async for _ in response.streaming_content:
                pass

        async_to_sync(read)()
    else:
        b"".join(response.streaming_content)


def test_every_route_and_frame_is_in_the_sweep() -> None:
    # The admin's routes are swept by the admin test below (some of them have no name).
    names = {route.name for route in url_routes() if not str(route.pattern).startswith("admin/")}
    missing = sorted(names - set(PAGE_ROUTES) - API_ROUTES - NO_INPUT)
    assert not missing, (
        "These routes are not in the hostile-string sweep (tests/security/test_hostile_input.py "
        f"PAGE_ROUTES or API_ROUTES): {', '.join(missing)}"
    )
    assert set(FRAMES) == realtime.CLIENT_FRAME_TYPES, "a client frame type is missing from FRAMES below"
    assert {"chat_completions", "embeddings", "models", "sources"} == set(API_BODIES)


@pytest.mark.django_db
@bounded(12)
@given(value=HOSTILE)
@example(value=HUGE)
@example(value="\x00")
@example(value="\ud800")
def test_page_routes_take_hostile_text_without_a_server_error(world, value, caplog) -> None:
    failures = []
    for name, entries in PAGE_ROUTES.items():
        for entry in entries:
            url = reverse(name, kwargs=entry.kwargs(world))
            for fields, files in _requests(world, entry, value):
                world.client.force_login(world.user)  # logout is swept too
                status = _send(world.client, entry.method, url, fields, files)
                if status >= 500:
                    failures.append(f"{entry.method} {url} {sorted(fields)} {sorted(files)}: {status}")
    assert not failures, failures
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-3000:]


# The admin: every change form of every registered model, one text field at a time made hostile.


class _FormFields(HTMLParser):
    """The named fields of the page's main form, with their current values."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self.text: set[str] = set()
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name", "")
        if tag == "input" and name and a.get("type", "text") not in ("submit", "button", "file", "image"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:  # a browser sends "on" for a checked box without a value
                    self.values.setdefault(name, []).append(a.get("value") or "on")
                return
            self.values.setdefault(name, []).append(a.get("value", ""))
            if a.get("type", "text") in ("text", "url", "email", "search", "number", "password", "tel"):
                self.text.add(name)
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = [""]
            self.text.add(name)
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.values.setdefault(self._select, []).append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea][-1] += data


def _admin_objects(world: World) -> dict[type, Any]:
    # Looked up by key, not by name: an earlier example may have renamed them through the admin.
    provider = Provider.objects.order_by("pk").first()
    document, _ = Document.objects.get_or_create(content_hash="e" * 64, defaults={"kind": "text", "title": "Doc"})
    Chunk.objects.get_or_create(document=document, index=0, defaults={"text": "A chunk", "heading_path": ["Intro"]})
    vote, _ = Vote.objects.get_or_create(owner=world.user, prompt=world.prompt, defaults={"contenders": [LLAMA, QWEN]})
    limits, _ = UserLimits.objects.get_or_create(user=world.user)
    group, _ = Group.objects.get_or_create(name="sweepers")
    return {
        Group: group, User: world.user, Provider: provider, LLMModel: LLMModel.objects.order_by("pk").first(),
        Conversation: world.conversation, Message: world.answer, ApiKey: world.key, UserLimits: limits,
        Preset: world.preset, Vote: vote, Source: world.source, Document: document,
        FetchedUrl: FetchedUrl.objects.get_or_create(url="https://example.com/f", defaults={"etag": '"x"'})[0],
    }  # fmt: skip


@pytest.mark.django_db
@bounded(4)
@given(value=HOSTILE)
@example(value="\x00\ud800\u202e")
def test_admin_forms_take_hostile_text_without_a_server_error(world, value, caplog) -> None:
    objects = _admin_objects(world)
    unswept = [model._meta.label for model in admin.site._registry if model not in objects]
    assert not unswept, f"give the hostile sweep an object of {unswept}"
    failures = []
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[objects[model].pk])
        world.client.force_login(world.user)  # a change to mallory herself may have ended her session
        page = world.client.get(url)
        assert page.status_code == 200, url
        parser = _FormFields()
        parser.feed(page.content.decode())
        fields = {name: values[-1] for name, values in parser.values.items()}
        for name in sorted(parser.text):
            if name == "password" or name.startswith("_"):
                continue
            world.client.force_login(world.user)
            status = _send(world.client, "POST", url, {**fields, name: value}, {})
            if status >= 500:
                failures.append(f"{model._meta.label}.{name}: {status}")
    assert not failures, failures
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-3000:]


# The API: each body field in turn hostile (as a string, and where the type differs too).

API_BODIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "chat_completions": (
        "POST",
        "/api/v1/chat/completions",
        {"model": LLAMA, "messages": [{"role": "user", "content": "Hi"}], "stop": ["x"], "sources": []},
    ),
    "embeddings": ("POST", "/api/v1/embeddings", {"model": "ollama/all-minilm:22m", "input": ["a text"]}),
    "models": ("GET", "/api/v1/models", {}),
    "sources": ("GET", "/api/v1/sources", {}),
}


def _api_variants(base: dict[str, Any], value: str) -> list[Any]:
    """The base body with the value put in each place a string can go, one place at a time."""
    variants: list[Any] = []

    def walk(node: Any, replace: Callable[[Any], Any]) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                walk(item, lambda new, key=key, node=node: replace({**node, key: new}))
            variants.append(replace({**node, value: "x"}))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, lambda new, index=index, node=node: replace([*node[:index], new, *node[index + 1 :]]))
        else:
            variants.append(replace(value))

    walk(base, lambda body: body)
    variants.append({**base, "messages": [{"role": "user", "content": [{"type": "text", "text": value}]}]})
    variants.append({**base, "stream": True, "messages": [{"role": "user", "content": value}]})
    return variants


@pytest.fixture
def api_world(transactional_db: None, llama: LLMModel, settings: Any) -> World:
    settings.QUOTA_REQUESTS_PER_MINUTE = 0
    user = make_user("mallory")
    return make_world(user, llama, LLMModel.objects.get(provider=llama.provider, name="qwen2.5:0.5b"))


@pytest.mark.django_db(transaction=True)  # the API's async views reach the database from other threads
@pytest.mark.usefixtures("close_thread_connections")
@bounded(10)
@given(value=HOSTILE)
@example(value=HUGE)
@example(value="\x00\ud800")
async def test_api_bodies_take_hostile_text_without_a_server_error_or_a_held_ticket(api_world, value, caplog) -> None:
    client = AsyncClient(headers={"Authorization": f"Bearer {api_world.raw_key}"})
    failures = []
    for method, path, base in API_BODIES.values():
        if method == "GET":
            requests = [(path + "?" + form_body({"q": value, "after": value}).decode(), None)]
        else:
            requests = [(path, json.dumps(body).encode()) for body in _api_variants(base, value)]
            requests.append((path, wire(json.dumps(base)[:-1] + f', "x": "{value}"}}')))  # raw, maybe invalid
            requests.append((path, b'{"model": "\xff\xfe", "input": "\xc3\x28"}'))
        for url, body in requests:
            response = await client.generic(method, url, body or b"", content_type="application/json")
            if response.streaming:
                async for _ in response.streaming_content:
                    pass
            if response.status_code >= 500:
                failures.append(f"{method} {url} {body[:120] if body else ''!r}: {response.status_code}")
    assert not failures, failures
    assert await sync_to_async(_held_tickets)(api_world.user) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-3000:]


def _held_tickets(user: User) -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return int(client.get(f"{settings.CHANNEL_LAYER_PREFIX}:quota:{user.pk}:concurrent") or 0)
    finally:
        client.close()


# The websocket: every client frame type, each field in turn hostile (as a string, in a list,
# and in place of the frame type itself), then a probe that must be answered.

FRAMES: dict[str, Callable[[World], dict[str, Any]]] = {
    "send": lambda w: {"content": "Hello", "models": [LLAMA], "blind": False},
    "stop": lambda w: {"message": w.answer.pk},
    "sync": lambda w: {"after": 0, "refresh": [w.answer.pk]},
    "regenerate": lambda w: {"message": w.answer.pk},
    "edit": lambda w: {"message": w.prompt.pk, "content": "Again", "models": [LLAMA, QWEN], "blind": True},
    "switch": lambda w: {"message": w.answer.pk},
    "choose": lambda w: {"prompt": w.prompt.pk, "message": None},
    "vote": lambda w: {"prompt": w.prompt.pk, "winner": None},
}
_probes = iter(range(10**9))


def _frame_variants(world: World, value: str) -> list[str | bytes]:
    variants: list[str | bytes] = []
    for kind, make in FRAMES.items():
        base = {"type": kind, **make(world)}
        for name in base:
            for hostile in (value, [value], {value: value}):
                variants.append(json.dumps({**base, name: hostile}))
        variants.append(json.dumps({**base, value: value}))
    variants += [b"\xff\xfe\x00", wire(json.dumps({"type": "send"})[:-1] + f', "content": "{value}"}}')]
    if value:
        variants.append(wire(value))
    return variants


async def _probe(ws: Any) -> list[dict[str, Any]]:
    """Frames up to the answer to a probe (a frame of an unknown, numbered type): the consumer
    took the frames before it, and lives."""
    name = f"probe-{next(_probes)}"
    await ws.send({"type": name})
    return await ws.receive_until(lambda f: f["type"] == "error" and name in f["detail"], timeout=20)


@pytest.fixture
def socket_world(transactional_db: None, llama: LLMModel, fake_ollama: Any, settings: Any) -> World:
    """mallory, allowed one answer at once: a leaked ticket would refuse every later message."""
    settings.CHAT_SOCKET_FRAMES_PER_SECOND, settings.CHAT_SOCKET_FRAME_BURST = 10_000, 10_000
    settings.QUOTA_REQUESTS_PER_MINUTE = 0
    user = make_user("mallory")
    UserLimits.objects.create(user=user, concurrent_generations=1)
    return make_world(user, llama, LLMModel.objects.get(provider=llama.provider, name="qwen2.5:0.5b"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
@bounded(4)
@given(values=st.lists(HOSTILE, min_size=3, max_size=3))
@example(values=[HUGE, "\x00", "\ud800\u202e\x1b[2J"])
async def test_websocket_frames_take_hostile_text_without_an_unhandled_error_or_a_held_ticket(
    socket_world, caplog, values
) -> None:
    world = socket_world
    connected, _, ws = await open_socket(world.conversation.uuid, user=world.user)
    assert connected

    seen: list[dict[str, Any]] = []
    for value in values:
        for frame in _frame_variants(world, value):
            if isinstance(frame, bytes):
                await ws.communicator.send_to(bytes_data=frame)
            else:
                await ws.send(frame)
            seen += await _probe(ws)
    await asyncio.wait_for(asyncio.gather(*generation._RUNNING.values(), return_exceptions=True), timeout=30)

    internal = [f for f in seen if f["type"] == "error" and f["code"] == "internal"]
    assert not internal, internal
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-3000:]
    assert await sync_to_async(_held_tickets)(world.user) == 0, "a quota ticket was kept"
    # With a limit of one answer at once, the user can still ask (no ticket was leaked).
    await ws.send({"type": "send", "content": "Still here?", "models": [LLAMA]})
    frames = await ws.receive_until(lambda f: f["type"] in ("message.done", "error"), timeout=20)
    assert frames[-1]["type"] == "message.done" and frames[-1]["status"] == "complete", frames[-1]
    await ws.close()


def test_the_hostile_pieces_cover_what_the_issue_names() -> None:
    names = {"NUL": "\x00", "lone surrogate": "\ud800", "RTL override": "\u202e"}
    assert all(piece in PIECES for piece in names.values())
    assert len(HUGE) > 1024 * 1024 and re.search("[\x00\ud800]", HUGE)
