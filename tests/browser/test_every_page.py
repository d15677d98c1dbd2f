"""Every page a user or an admin opens loads with nothing in the browser console: no 404 for
a resource (the favicon was one), no script error, no Content-Security-Policy violation.
The page fixtures fail a test on any console error; this test opens each page once."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from chat.models import Conversation, Message
from ingestion.models import Source
from models_registry.models import Provider
from tests.browser.conftest import console_errors, log_in
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _pages(conversation: Conversation) -> list[str]:
    pages = [
        "/",
        f"/c/{conversation.uuid}/",
        "/usage/",
        "/usage/all/",
        "/leaderboard/",
        "/settings/keys/",
        "/api/v1/docs",
        reverse("admin:index"),
        reverse("admin:models_registry_llmmodel_pull"),
    ]
    for model in admin.site._registry:
        meta = model._meta
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        row = model._default_manager.order_by("pk").first()
        if row is not None:
            pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[row.pk]))
    return pages


def test_no_page_logs_a_console_error(ollama_provider: Provider, llama, page_under_csp) -> None:
    page = page_under_csp
    root = make_user("root", is_staff=True, is_superuser=True)
    conversation = Conversation.objects.create(owner=root, title="Harbour")
    prompt = Message.objects.create(conversation=conversation, role="user", content="Budget?")
    Message.objects.create(conversation=conversation, role="assistant", parent=prompt, content="**4.2 M€**",
                           model=llama, model_label=llama.name)  # fmt: skip
    conversation.sources.add(Source.objects.create(owner=root, url="https://example.org/harbour"))

    page.goto("/accounts/login/")
    page.wait_for_load_state("networkidle")
    log_in(page, "root", "root-password-123")
    visited = []
    for path in _pages(conversation):
        response = page.goto(path)
        page.wait_for_load_state("networkidle")
        assert response.status == 200, (path, response.status)
        visited.append(path)
        assert not console_errors(page).unexpected(), (path, console_errors(page).unexpected())

    assert len(visited) > 20
    # The icon is there for pages without a link to it, too, logged in or not.
    assert page.request.get("/favicon.ico").status == 200
    page.context.clear_cookies()
    anonymous = page.request.get("/favicon.ico", max_redirects=0)
    assert anonymous.status == 301 and anonymous.headers["location"].endswith("/static/favicon.svg")
