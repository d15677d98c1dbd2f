"""Our versions of Django's middleware (multillm.middleware) in the async chain, where they run
their hooks on the event loop: sessions, login, CSRF and messages must behave as Django's do.

`AsyncClient` runs requests through Django's ASGI handler, so the async chain; the rest of the
suite's `Client` covers the sync chain, where the classes are Django's own.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import AsyncClient
from django.utils.module_loading import import_string

from multillm import middleware
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


async def login(client: AsyncClient, username: str) -> None:
    page = await client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = await client.post(
        "/accounts/login/", {"username": username, "password": f"{username}-password-123", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302, response.content[:300]


async def test_anonymous_page_request_is_sent_to_the_login_page() -> None:
    response = await AsyncClient().get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


async def test_login_saves_the_session_and_later_pages_see_the_user() -> None:
    await sync_to_async(make_user)("carol")
    client = AsyncClient(enforce_csrf_checks=True)
    await login(client, "carol")

    assert client.cookies["sessionid"].value, "the session was saved and its cookie set"
    home = await client.get("/")
    assert home.status_code == 200
    assert b"carol" in home.content
    assert "Cookie" in home.get("Vary", ""), "a page that read the session varies on the cookie"


async def test_a_form_post_without_the_csrf_token_is_refused() -> None:
    await sync_to_async(make_user)("dave")
    client = AsyncClient(enforce_csrf_checks=True)
    await login(client, "dave")

    response = await client.post("/accounts/logout/")
    assert response.status_code == 403
    assert (await client.get("/")).status_code == 200, "still logged in"


async def test_logout_with_the_token_ends_the_session() -> None:
    await sync_to_async(make_user)("erin")
    client = AsyncClient(enforce_csrf_checks=True)
    await login(client, "erin")
    token = client.cookies["csrftoken"].value

    response = await client.post("/accounts/logout/", headers={"X-CSRFToken": token})
    assert response.status_code in (200, 302)
    assert (await client.get("/")).status_code == 302


async def test_api_requests_skip_login_and_csrf_and_get_openai_errors() -> None:
    response = await AsyncClient(enforce_csrf_checks=True).post(
        "/api/v1/chat/completions", data={"model": "x"}, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"


async def test_security_headers_are_still_set() -> None:
    response = await AsyncClient().get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response


def test_hooks_that_may_touch_the_database_say_so() -> None:
    """The cases left to a thread: a session to save, messages to store, a token in the session."""

    class Session:
        modified, accessed = True, True

        def is_empty(self) -> bool:
            return False

    class Request:
        session = Session()

    assert middleware.SessionMiddleware(lambda r: None)._needs_thread_for_response(Request(), None)  # type: ignore[arg-type]
    Request.session.modified = False
    assert not middleware.SessionMiddleware(lambda r: None)._needs_thread_for_response(Request(), None)  # type: ignore[arg-type]


def test_django_deploy_checks_see_our_subclasses_of_its_middleware():
    """`check --deploy` skips its HSTS, SSL and cookie checks unless it finds Django's middleware
    by path: MIDDLEWARE answers for each of our subclasses, and each really is one."""
    for django_path, ours in type(settings.MIDDLEWARE).SUBCLASSES.items():
        assert issubclass(import_string(ours), import_string(django_path))
        assert ours in settings.MIDDLEWARE
        assert django_path in settings.MIDDLEWARE
    assert "django.middleware.gzip.GZipMiddleware" not in settings.MIDDLEWARE
