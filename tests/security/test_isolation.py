"""Isolation sweep: every URL pattern, websocket route and API endpoint, walked with a
second user's session and API key, never reaches or shows the first user's objects.

The patterns are read from the URL resolver and the ASGI application, not listed by
hand: a new route that takes an identifier fails this test until an object factory is
registered for it below (OBJECT_KWARGS / SOCKET_KWARGS), so no route can be missed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from chat.api_keys import api_key_create
from chat.models import ApiKey, Conversation, Message
from chat.services import conversation_source_attach_file, conversation_source_attach_url
from ingestion.models import Source
from tests.conftest import ORIGIN, make_conversation, session_cookie

SECRET = "zq7-alice-secret"


@dataclass
class AliceObjects:
    """One of each kind of object alice owns, every one carrying SECRET somewhere."""

    user: User
    conversation: Conversation
    user_message: Message
    assistant_message: Message
    upload: Source
    url_source: Source
    key: ApiKey
    raw_key: str
    markers: list[str] = field(default_factory=list)


def alice_objects(alice: User) -> AliceObjects:
    conversation = make_conversation(alice, title=f"{SECRET} title")
    user_message = Message.objects.create(conversation=conversation, role="user", content=f"{SECRET} question")
    assistant_message = Message.objects.create(
        conversation=conversation,
        parent=user_message,
        role="assistant",
        content=f"{SECRET} answer",
        content_html=f"<p>{SECRET} answer</p>",
    )
    upload = conversation_source_attach_file(
        owner=alice,
        conversation=conversation,
        upload=SimpleUploadedFile(f"{SECRET}-notes.txt", f"{SECRET} file body".encode(), content_type="text/plain"),
    )
    url_source = conversation_source_attach_url(
        owner=alice, conversation=conversation, url=f"http://10.255.255.1/{SECRET}.html"
    )
    # (a private address: the fetcher refuses it without a lookup or a connection)
    key, raw_key = api_key_create(user=alice, name=f"{SECRET} key")
    markers = [
        SECRET,
        str(conversation.uuid),
        str(upload.uuid),
        str(url_source.uuid),
        str(key.uuid),
        key.prefix,
    ]
    return AliceObjects(alice, conversation, user_message, assistant_message, upload, url_source, key, raw_key, markers)


# Route name -> the URL kwargs (or a list of them) that point at one of alice's objects. A new
# route that takes an identifier must be added here (and its view must use a *_get_for_user
# helper). Entries may precede their route: branches land in either order.
def _conversation(a: AliceObjects) -> dict[str, Any]:
    return {"conversation_uuid": a.conversation.uuid}


OBJECT_KWARGS: dict[str, Callable[[AliceObjects], dict[str, Any] | list[dict[str, Any]]]] = {
    "chat:conversation_detail": _conversation,
    "chat:conversation_turns": _conversation,
    "chat:source_attach": _conversation,
    "chat:conversation_rename": _conversation,
    "chat:conversation_pin": _conversation,
    "chat:conversation_delete": _conversation,
    "chat:conversation_settings": _conversation,
    "chat:preset_apply": _conversation,
    "chat:conversation_export": lambda a: [{**_conversation(a), "kind": kind} for kind in ("json", "md")],
    "chat:source_detach": lambda a: {"source_uuid": a.upload.uuid},
    "chat:api_key_revoke": lambda a: {"key_uuid": a.key.uuid},
}

# Websocket route (as written in its routing module) -> kwargs naming alice's object.
SOCKET_KWARGS: dict[str, Callable[[AliceObjects], dict[str, Any]]] = {
    "ws/chat/<uuid:conversation_uuid>/": lambda a: {"conversation_uuid": a.conversation.uuid},
}
# Websocket routes without an identifier, and who may open them.
SOCKET_WITHOUT_OBJECT = {"ws/admin/pull/": "staff"}
# Admin pages anyone may open (the login form tells a logged-in non-staff user so).
ADMIN_PUBLIC = {"admin:login", "admin:logout"}


@dataclass(frozen=True)
class Route:
    pattern: str
    name: str
    kwargs: tuple[str, ...]


def _kwarg_names(pattern: Any) -> tuple[str, ...]:
    converters = getattr(pattern, "converters", None)
    if converters:
        return tuple(converters)
    regex = getattr(pattern, "regex", None)
    return tuple(regex.groupindex) if regex is not None else ()


def url_routes(patterns: list[Any] | None = None, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    """Every pattern of the URL configuration, with its full name and identifier kwargs."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace or "") if part)
            yield from (
                Route(route.pattern, route.name, _kwarg_names(entry.pattern) + route.kwargs)
                for route in url_routes(entry.url_patterns, prefix + str(entry.pattern), inner)
            )
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else (entry.name or "")
            yield Route(prefix + str(entry.pattern), name, _kwarg_names(entry.pattern))


def socket_routes() -> Iterator[Route]:
    """Every websocket route of the ASGI application, found through its middleware."""
    from multillm.asgi import application

    def walk(app: Any, prefix: str) -> Iterator[Route]:
        if isinstance(app, URLRouter):
            for route in app.routes:
                callback = route.callback
                inner = getattr(callback, "consumer_class", None) is None and isinstance(callback, URLRouter)
                if inner:
                    yield from walk(callback, prefix + str(route.pattern))
                else:
                    yield Route(prefix + str(route.pattern), "", _kwarg_names(route.pattern))
            return
        for attribute in ("inner", "application", "app"):
            if hasattr(app, attribute):
                yield from walk(getattr(app, attribute), prefix)
                return
        raise AssertionError(f"cannot see inside {app!r}: teach socket_routes() how to walk it")

    yield from walk(application.application_mapping["websocket"], "")


def _is_admin(route: Route) -> bool:
    return route.name.startswith("admin:") or route.pattern.startswith("admin/")


def _admin_url(route: Route, objects: AliceObjects) -> str:
    """Any admin URL, filled with alice's conversation: the admin is staff-only as a whole."""
    values = {"app_label": "chat", "object_id": str(objects.conversation.pk), "url": "chat/conversation/"}
    values["content_type_id"] = "1"
    path = route.pattern.lstrip("^").rstrip("$")
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values.get(m.group(1), "1"), path)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values.get(m.group(1), "1"), path)
    return "/" + path


def _bob_client(bob: User, raw_key: str) -> Client:
    client = Client(headers={"Authorization": f"Bearer {raw_key}"})
    client.force_login(bob)
    return client


def _assert_no_leak(body: bytes, markers: list[str], where: str) -> None:
    text = body.decode("utf-8", "replace")
    leaked = [marker for marker in markers if marker in text]
    assert not leaked, f"{where} shows alice's {leaked} to bob"


def _assert_alice_unchanged(objects: AliceObjects) -> None:
    assert Conversation.objects.filter(pk=objects.conversation.pk, title=f"{SECRET} title").exists()
    assert Message.objects.filter(conversation=objects.conversation).count() == 2
    assert set(Source.objects.filter(owner=objects.user).values_list("pk", flat=True)) == {
        objects.upload.pk,
        objects.url_source.pk,
    }
    assert ApiKey.objects.get(pk=objects.key.pk).revoked_at is None


@pytest.mark.django_db(transaction=True)
def test_every_route_with_an_identifier_is_404_for_another_users_object(alice, bob) -> None:
    objects = alice_objects(alice)
    _, bob_key = api_key_create(user=bob, name="bob's key")
    client = _bob_client(bob, bob_key)
    routes = [route for route in url_routes() if route.kwargs]
    unregistered = [r for r in routes if not _is_admin(r) and r.name not in OBJECT_KWARGS]
    assert not unregistered, (
        "These URL patterns take an identifier but have no object factory in "
        "tests/security/test_isolation.py OBJECT_KWARGS, so nobody has proven that another user "
        "cannot reach them: " + ", ".join(f"{r.name or '(unnamed)'} -> {r.pattern}" for r in unregistered)
    )

    checked = []
    for route in routes:
        if _is_admin(route):
            continue
        made = OBJECT_KWARGS[route.name](objects)
        for kwargs in made if isinstance(made, list) else [made]:
            url = reverse(route.name, kwargs=kwargs)
            statuses = {}
            for method in ("get", "post"):
                data = {"url": "https://example.com/x.html", "title": "bob was here"} if method == "post" else None
                response = getattr(client, method)(url, data)
                statuses[method] = response.status_code
                body = b"".join(response.streaming_content) if response.streaming else response.content
                _assert_no_leak(body, objects.markers, f"{method.upper()} {url}")
            assert set(statuses.values()) <= {403, 404, 405}, f"{route.name} {url} answered bob with {statuses}"
            assert {403, 404} & set(statuses.values()), f"{route.name} {url} never refused bob: {statuses}"
        checked.append(route.name)

    assert checked, "no route with an identifier was found"
    _assert_alice_unchanged(objects)


@pytest.mark.django_db(transaction=True)
def test_every_admin_route_refuses_a_non_staff_user(alice, bob) -> None:
    objects = alice_objects(alice)
    client = _bob_client(bob, "")
    admin_routes = [route for route in url_routes() if _is_admin(route)]
    assert len(admin_routes) > 20, "the admin's routes were not found"

    for route in admin_routes:
        url = _admin_url(route, objects)
        for method in ("get", "post"):
            client.force_login(bob)  # the admin's logout ends bob's session
            response = getattr(client, method)(url)
            if route.name in ADMIN_PUBLIC:
                _assert_no_leak(response.content, objects.markers, f"{method.upper()} {url}")
                continue
            assert response.status_code in {302, 403, 404}, (
                f"{method.upper()} {url} answered bob {response.status_code}"
            )
            if response.status_code == 302:
                assert response["Location"].startswith("/admin/login/"), f"{url} sent bob to {response['Location']}"
            _assert_no_leak(response.content, objects.markers, f"{method.upper()} {url}")
    _assert_alice_unchanged(objects)


@pytest.mark.django_db(transaction=True)
def test_no_page_or_api_endpoint_without_an_identifier_shows_another_users_data(alice, bob) -> None:
    objects = alice_objects(alice)
    _, bob_key = api_key_create(user=bob, name="bob's key")
    client = _bob_client(bob, bob_key)
    routes = [route for route in url_routes() if not route.kwargs and not _is_admin(route)]
    assert any(route.name.startswith("api_") for route in routes) and any(route.name == "chat:home" for route in routes)

    for route in routes:
        url = "/" + route.pattern.lstrip("^").rstrip("$")
        response = client.get(url)
        assert response.status_code != 500, f"GET {url} failed with {response.status_code}"
        body = b"".join(response.streaming_content) if response.streaming else response.content
        _assert_no_leak(body, objects.markers, f"GET {url}")
    _assert_alice_unchanged(objects)


@pytest.mark.django_db(transaction=True)
def test_revoking_a_key_ends_it_and_leaves_other_users_keys_working(alice, bob) -> None:
    objects = alice_objects(alice)
    bob_api_key, bob_key = api_key_create(user=bob, name="bob's key")
    client = Client()

    models = client.get("/api/v1/models", headers={"Authorization": f"Bearer {bob_key}"})
    assert models.status_code == 200
    bob_client = _bob_client(bob, bob_key)
    assert bob_client.post(reverse("chat:api_key_revoke", kwargs={"key_uuid": bob_api_key.uuid})).status_code == 302
    assert client.get("/api/v1/models", headers={"Authorization": f"Bearer {bob_key}"}).status_code == 401
    assert client.get("/api/v1/models", headers={"Authorization": f"Bearer {objects.raw_key}"}).status_code == 200
    _assert_alice_unchanged(objects)


async def _open(path: str, user: User | None) -> tuple[bool, int | None, WebsocketCommunicator]:
    from multillm.asgi import application

    headers = [(b"origin", ORIGIN)]
    if user is not None:
        headers.append((b"cookie", f"sessionid={await sync_to_async(session_cookie)(user)}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return connected, code, communicator


def _socket_path(route: Route, kwargs: dict[str, Any]) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(kwargs[m.group(1)]), route.pattern)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_every_websocket_route_refuses_another_users_object(alice, bob, llama) -> None:
    objects = await sync_to_async(alice_objects)(alice)
    routes = list(socket_routes())
    with_object = [route for route in routes if route.kwargs]
    missing = [r.pattern for r in with_object if r.pattern not in SOCKET_KWARGS]
    missing += [r.pattern for r in routes if not r.kwargs and r.pattern not in SOCKET_WITHOUT_OBJECT]
    assert not missing, (
        "These websocket routes have no entry in tests/security/test_isolation.py (SOCKET_KWARGS for "
        "routes with an identifier, SOCKET_WITHOUT_OBJECT for the others): " + ", ".join(missing)
    )

    for route in with_object:
        path = _socket_path(route, SOCKET_KWARGS[route.pattern](objects))
        connected, code, _ = await _open(path, bob)
        assert not connected, f"bob joined {path}"
        assert code in {4403, 4404}, f"{path} refused bob with {code}: use 4403/4404 so the page can say why"
        connected, _, _ = await _open(path, None)
        assert not connected, f"an anonymous socket joined {path}"
    for route in routes:
        if not route.kwargs and SOCKET_WITHOUT_OBJECT[route.pattern] == "staff":
            connected, _, _ = await _open(_socket_path(route, {}), bob)
            assert not connected, f"non-staff bob opened {route.pattern}"
    await sync_to_async(_assert_alice_unchanged)(objects)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_frames_naming_another_users_messages_reveal_nothing(alice, bob, llama) -> None:
    """Bob's own socket, asked for alice's message ids (sync, stop), answers with bob's data only."""
    objects = await sync_to_async(alice_objects)(alice)
    bob_conversation = await sync_to_async(make_conversation)(bob)
    ids = [objects.user_message.pk, objects.assistant_message.pk]
    connected, _, communicator = await _open(f"/ws/chat/{bob_conversation.uuid}/", bob)
    assert connected

    await communicator.send_to(text_data=json.dumps({"type": "sync", "after": 0, "refresh": ids}))
    await communicator.send_to(text_data=json.dumps({"type": "stop", "message": ids[1]}))
    await communicator.send_to(text_data=json.dumps({"type": "sync", "after": ids[0] - 1}))
    frames = []
    while not await communicator.receive_nothing(timeout=0.5):
        frames.append(await communicator.receive_from())

    _assert_no_leak("\n".join(frames).encode(), objects.markers, "bob's socket")
    await communicator.disconnect()
    await sync_to_async(_assert_alice_unchanged)(objects)


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["", "not-a-uuid", "1", "../x", "00000000-0000-0000-0000-000000000000"])
def test_malformed_identifiers_are_404_not_500(alice, raw) -> None:
    """Views that take an id from a form field pass strings: Django's UUID field raises
    ValidationError for a malformed one (found by this sweep: a 500)."""
    from django.http import Http404

    from chat.api_keys import api_key_get_for_user
    from chat.selectors import conversation_get_for_user
    from ingestion.selectors import source_get_for_user

    for lookup in (
        lambda: conversation_get_for_user(user=alice, conversation_uuid=raw),
        lambda: source_get_for_user(user=alice, source_uuid=raw),
        lambda: api_key_get_for_user(user=alice, key_uuid=raw),
    ):
        with pytest.raises(Http404):
            lookup()
