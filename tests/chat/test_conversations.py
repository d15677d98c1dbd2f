"""Managing conversations: the sidebar (date groups, pins, pages), rename, pin, delete, search."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat import search, selectors
from chat.models import Conversation, Message
from chat.search import conversations_search
from chat.selectors import date_group, sidebar_for_user
from chat.services import ChatError, conversation_delete, conversation_rename, conversation_set_pinned
from tests.conftest import make_conversation

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def aged(conversation: Conversation, days: float) -> Conversation:
    when = timezone.now() - timedelta(days=days)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=when)
    conversation.updated_at = when
    return conversation


def say(conversation: Conversation, text: str, role: str = Message.Role.USER) -> Message:
    return Message.objects.create(conversation=conversation, role=role, content=text)


@pytest.mark.parametrize(
    ("age", "key", "label"),
    [
        (0, "today", "Today"),
        (1, "yesterday", "Yesterday"),
        (2, "week", "Previous 7 days"),
        (7, "week", "Previous 7 days"),
        (8, "month", "Previous 30 days"),
        (30, "month", "Previous 30 days"),
        (31, "2026-05", "May 2026"),
    ],
)
def test_date_groups(age, key, label) -> None:
    today = date(2026, 6, 1)

    assert date_group(today - timedelta(days=age), today) == (key, label)


def test_sidebar_groups_by_date_newest_first_with_pinned_on_top(alice) -> None:
    old = aged(make_conversation(alice, title="Old one"), 100)
    week = aged(make_conversation(alice, title="Last week"), 4)
    yesterday = aged(make_conversation(alice, title="Yesterday's"), 1)
    today = make_conversation(alice, title="Today's")
    pinned = aged(make_conversation(alice, title="Pinned old", pinned=True), 200)

    sidebar = sidebar_for_user(user=alice)

    assert [c.pk for c in sidebar.pinned] == [pinned.pk]
    assert [(g.label, [c.pk for c in g.conversations]) for g in sidebar.groups] == [
        ("Today", [today.pk]),
        ("Yesterday", [yesterday.pk]),
        ("Previous 7 days", [week.pk]),
        (f"{timezone.localtime(old.updated_at):%B %Y}", [old.pk]),
    ]
    assert sidebar.next_page is None


def test_sidebar_pages_and_its_query_count_does_not_grow(alice, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "SIDEBAR_PAGE", 3)
    for index in range(7):
        aged(make_conversation(alice, title=f"Chat {index}"), index)

    with CaptureQueriesContext(connection) as queries:
        first = sidebar_for_user(user=alice)
    second = sidebar_for_user(user=alice, page=2)
    third = sidebar_for_user(user=alice, page=3)

    titles = [[c.title for g in page.groups for c in g.conversations] for page in (first, second, third)]
    assert titles == [["Chat 0", "Chat 1", "Chat 2"], ["Chat 3", "Chat 4", "Chat 5"], ["Chat 6"]]
    assert (first.next_page, second.next_page, third.next_page) == (2, 3, None)
    assert len(queries) == 2


def test_sidebar_page_view_renders_list_items_with_group_labels(alice, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "SIDEBAR_PAGE", 2)
    for index in range(3):
        make_conversation(alice, title=f"Chat {index}")

    first = logged_in(alice).get("/conversations/").content.decode()
    second = logged_in(alice).get("/conversations/?page=2").content.decode()

    assert 'data-group="today"' in first and 'data-page="2"' in first
    assert first.count('class="conversation-item') == 2 and second.count('class="conversation-item') == 1
    assert "Show more" not in second


def test_rename_changes_the_title_without_moving_the_conversation(alice) -> None:
    conversation = aged(make_conversation(alice, title="Old title"), 3)

    response = logged_in(alice).post(
        f"/c/{conversation.uuid}/rename/", {"title": "  A   better title "}, HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 200 and response.json()["title"] == "A better title"
    conversation.refresh_from_db()
    assert conversation.title == "A better title"
    assert timezone.now() - conversation.updated_at > timedelta(days=2)


@pytest.mark.parametrize(("title", "code"), [("   ", "empty_title"), ("x" * 201, "title_too_long")])
def test_rename_refuses_empty_and_long_titles(alice, title, code) -> None:
    conversation = make_conversation(alice, title="Kept")

    with pytest.raises(ChatError) as error:
        conversation_rename(conversation=conversation, title=title)
    response = logged_in(alice).post(
        f"/c/{conversation.uuid}/rename/", {"title": title}, HTTP_ACCEPT="application/json"
    )

    assert error.value.code == code
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert Conversation.objects.get(pk=conversation.pk).title == "Kept"


def test_rename_by_form_post_redirects_back(alice) -> None:
    conversation = make_conversation(alice, title="Old")

    response = logged_in(alice).post(f"/c/{conversation.uuid}/rename/", {"title": "New"})

    assert response.status_code == 302 and response["Location"] == conversation.get_absolute_url()


def test_pin_and_unpin(alice) -> None:
    conversation = make_conversation(alice, title="Important")
    client = logged_in(alice)

    pinned = client.post(f"/c/{conversation.uuid}/pin/", {"pinned": "1"}, HTTP_ACCEPT="application/json")
    assert pinned.json()["pinned"] is True
    assert [c.pk for c in sidebar_for_user(user=alice).pinned] == [conversation.pk]

    client.post(f"/c/{conversation.uuid}/pin/", {"pinned": "0"})
    assert sidebar_for_user(user=alice).pinned == []
    conversation_set_pinned(conversation=conversation, pinned=True)
    assert Conversation.objects.get(pk=conversation.pk).pinned


def test_delete_asks_first_then_deletes_with_messages(alice) -> None:
    conversation = make_conversation(alice, title="Doomed")
    say(conversation, "hello")
    client = logged_in(alice)

    confirm = client.get(f"/c/{conversation.uuid}/delete/")
    assert confirm.status_code == 200 and "Delete “Doomed”?" in confirm.content.decode()
    assert Conversation.objects.filter(pk=conversation.pk).exists()

    response = client.post(f"/c/{conversation.uuid}/delete/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()


def test_delete_service_and_json_answer(alice) -> None:
    first, second = make_conversation(alice), make_conversation(alice)

    conversation_delete(conversation=first)
    response = logged_in(alice).post(f"/c/{second.uuid}/delete/", HTTP_ACCEPT="application/json")

    assert response.json() == {"id": str(second.uuid), "deleted": True}
    assert not Conversation.objects.filter(owner=alice).exists()


# Search


def test_search_finds_titles_and_message_text_with_highlights(alice) -> None:
    by_title = make_conversation(alice, title="Quarterly budget review")
    by_message = make_conversation(alice, title="Planning")
    say(by_message, "We should revise the budgets before Friday.")
    make_conversation(alice, title="Unrelated")

    hits = conversations_search(user=alice, query="budget")

    assert {h.conversation.pk for h in hits} == {by_title.pk, by_message.pk}
    title_hit = next(h for h in hits if h.conversation.pk == by_title.pk)
    message_hit = next(h for h in hits if h.conversation.pk == by_message.pk)
    assert "<mark>budget</mark>" in title_hit.title_html
    assert "<mark>budgets</mark>" in message_hit.snippet_html  # stemmed on Postgres


def test_search_matches_prefixes_while_typing(alice) -> None:
    conversation = make_conversation(alice, title="Photosynthesis basics")

    assert [h.conversation.pk for h in conversations_search(user=alice, query="photosyn")] == [conversation.pk]


def test_search_needs_every_word(alice) -> None:
    both = make_conversation(alice, title="Paris trip")
    say(both, "museums and food")
    make_conversation(alice, title="Paris weather")

    assert [h.conversation.pk for h in conversations_search(user=alice, query="paris museums")] == [both.pk]


def test_search_results_escape_everything_but_the_marks(alice) -> None:
    conversation = make_conversation(alice, title="<b>bold</b> <script>alert(1)</script> payload")
    say(conversation, '<img src=x onerror="alert(2)"> payload <mark>fake</mark>')

    hits = conversations_search(user=alice, query="payload")
    page = logged_in(alice).get("/conversations/?q=payload").content.decode()

    assert len(hits) == 1
    for html in (hits[0].title_html, hits[0].snippet_html, page):
        assert "<script>" not in html and "<img" not in html and "<b>" not in html
        assert "<mark>fake</mark>" not in html
    assert "&lt;script&gt;" in hits[0].title_html
    assert "<mark>payload</mark>" in hits[0].title_html and "<mark>payload</mark>" in hits[0].snippet_html


def test_search_with_only_punctuation_or_tsquery_syntax_is_safe(alice) -> None:
    make_conversation(alice, title="C++ & Rust")

    assert conversations_search(user=alice, query="!!! ()") == []
    assert [h.conversation.title for h in conversations_search(user=alice, query="rust & | ! :*")] == ["C++ & Rust"]


def test_search_says_when_only_the_most_recent_matches_are_shown(alice, monkeypatch) -> None:
    monkeypatch.setattr("chat.views.SEARCH_LIMIT", 2)
    for index in range(3):
        make_conversation(alice, title=f"Recipe {index}")

    page = logged_in(alice).get("/conversations/?q=recipe").content.decode()

    assert page.count('class="conversation-item') == 2
    assert "The 2 most recent matches are shown" in page


def test_search_page_shows_a_clear_empty_result(alice) -> None:
    response = logged_in(alice).get("/conversations/?q=nothinglikethis")

    assert "No conversation matches “nothinglikethis”." in response.content.decode()


def test_search_query_count_does_not_grow_with_matches(alice) -> None:
    for index in range(3):
        say(make_conversation(alice, title=f"Chat {index}"), "a common word")
    with CaptureQueriesContext(connection) as few:
        conversations_search(user=alice, query="common")
    for index in range(20):
        say(make_conversation(alice, title=f"More {index}"), "a common word again")
    with CaptureQueriesContext(connection) as many:
        hits = conversations_search(user=alice, query="common")

    assert len(hits) == 23
    assert len(many) == len(few)


def test_search_on_the_full_page_without_script(alice) -> None:
    make_conversation(alice, title="Findable thing")

    page = logged_in(alice).get("/?q=findable").content.decode()

    assert "<mark>Findable</mark> thing" in page


def test_postgres_search_uses_the_gin_index(alice) -> None:
    from django.contrib.postgres.search import SearchQuery, SearchVector

    say(make_conversation(alice), "indexed words")
    query = (
        Message.objects.annotate(v=SearchVector("content", config="english"))
        .filter(v=SearchQuery("indexed", config="english"))
        .values("id")
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = query.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = on")

    assert "message_content_search" in plan


# Who may do what


def test_nobody_manages_another_users_conversations(alice, bob) -> None:
    secret = make_conversation(bob, title="Bob's secret")
    say(secret, "bob's private words")
    client = logged_in(alice)

    assert client.post(f"/c/{secret.uuid}/rename/", {"title": "Mine now"}).status_code == 404
    assert client.post(f"/c/{secret.uuid}/pin/", {"pinned": "1"}).status_code == 404
    assert client.get(f"/c/{secret.uuid}/delete/").status_code == 404
    assert client.post(f"/c/{secret.uuid}/delete/").status_code == 404
    secret.refresh_from_db()
    assert (secret.title, secret.pinned) == ("Bob's secret", False)


def test_search_and_sidebar_show_only_own_conversations(alice, bob) -> None:
    say(make_conversation(bob, title="Bob's private plan"), "private plan details")
    make_conversation(alice, title="Alice's plan")

    assert [h.conversation.title for h in conversations_search(user=alice, query="plan")] == ["Alice's plan"]
    page = logged_in(alice).get("/conversations/?q=private").content.decode()
    listing = logged_in(alice).get("/conversations/").content.decode()
    assert "Bob" not in page and "Bob" not in listing


def test_the_sqlite_fallback_search_finds_and_escapes(alice, bob) -> None:
    """The LIKE search that `make run` uses on SQLite (called directly: the tests run on Postgres)."""
    conversation = make_conversation(alice, title="Budget <b>plan</b>")
    say(conversation, "Numbers for the BUDGET <script>x()</script> are in.")
    say(make_conversation(bob, title="Bob's budget"), "budget")

    hits = search._search_fallback(user=alice, terms=["budget"], limit=10)

    assert [h.conversation.pk for h in hits] == [conversation.pk]
    assert hits[0].title_html == "<mark>Budget</mark> &lt;b&gt;plan&lt;/b&gt;"
    assert "<mark>BUDGET</mark> &lt;script&gt;" in hits[0].snippet_html


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_deleting_a_conversation_stops_its_running_answer(alice, llama, fake_ollama) -> None:
    from asgiref.sync import sync_to_async

    from tests.chat.test_consumer import LLAMA, finish_generations
    from tests.conftest import open_socket

    fake_ollama.reply = lambda messages: " ".join(["word"] * 400)
    fake_ollama.token_delay = 0.05
    conversation = await sync_to_async(make_conversation)(alice)
    connected, _, ws = await open_socket(conversation.uuid, user=alice)
    assert connected
    await ws.send({"type": "send", "content": "Talk for a long time", "models": [LLAMA]})
    await ws.receive_until(lambda frame: frame["type"] == "delta")

    started = time.monotonic()
    await sync_to_async(conversation_delete)(conversation=conversation)
    await finish_generations()
    await ws.close()

    assert time.monotonic() - started < 5, "the 20 s answer was stopped"
    for _ in range(50):  # the fake notices the closed connection at its next write
        if fake_ollama.streams_closed_by_client:
            break
        await asyncio.sleep(0.05)
    assert fake_ollama.streams_closed_by_client == 1, "the upstream request was ended"
    assert not await Message.objects.filter(conversation_id=conversation.pk).aexists()


def test_the_chat_page_has_no_inline_script_or_handlers(alice) -> None:
    """A strict Content-Security-Policy must not break the sidebar and the settings panel."""
    conversation = make_conversation(alice, title="x", pinned=True)
    make_conversation(alice, title="y")

    for url in ("/", conversation.get_absolute_url(), "/conversations/", "/conversations/?q=x", "/usage/"):
        page = logged_in(alice).get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), url
        assert not re.search(r"\son[a-z]+\s*=", page), url
        assert " style=" not in page, url


def test_a_title_with_nul_control_and_bidi_characters_is_saved_clean(alice) -> None:
    """Once a 500: PostgreSQL cannot store NUL. The one validation layer removes what text cannot
    hold or should not show: NUL, escapes, a right-to-left override that would reverse the title."""
    conversation = make_conversation(alice, title="Old")

    response = logged_in(alice).post(
        f"/c/{conversation.uuid}/rename/", {"title": "Bud\x00get\x1b[2J \u202eplan\u202c\n2025"},
        HTTP_ACCEPT="application/json",
    )  # fmt: skip

    assert response.status_code == 200 and response.json()["title"] == "Budget[2J plan 2025"
    assert Conversation.objects.get(pk=conversation.pk).title == "Budget[2J plan 2025"
