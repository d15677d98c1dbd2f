"""Usage pages: tokens per model per day for each user, per user and model for staff, as CSV too."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from chat.models import Message
from chat.usage import usage_for_everyone, usage_for_user
from chat.views import csv_safe
from tests.conftest import make_conversation, make_user

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def answer(owner, model: str, prompt: int, completion: int, days_ago: float = 0) -> Message:
    conversation = make_conversation(owner)
    message = Message.objects.create(
        conversation=conversation,
        role="assistant",
        model_label=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
    )
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return message


def test_usage_per_model_per_day_of_the_last_30_days(alice, bob) -> None:
    answer(alice, "ollama/llama3.2:1b", 10, 5)
    answer(alice, "ollama/llama3.2:1b", 20, 7)
    answer(alice, "azure/gpt-4o", 3, 4, days_ago=2)
    answer(alice, "ollama/llama3.2:1b", 1000, 1000, days_ago=40)
    answer(bob, "ollama/llama3.2:1b", 99, 99)
    Message.objects.create(conversation=make_conversation(alice), role="user", content="not counted")

    rows = usage_for_user(user=alice)

    today = timezone.localdate()
    assert [(r.day, r.model, r.answers, r.prompt_tokens, r.completion_tokens, r.total_tokens) for r in rows] == [
        (today, "ollama/llama3.2:1b", 2, 30, 12, 42),
        (today - timedelta(days=2), "azure/gpt-4o", 1, 3, 4, 7),
    ]


def test_answers_without_counts_count_as_zero_tokens(alice) -> None:
    Message.objects.create(conversation=make_conversation(alice), role="assistant", model_label="m")

    (row,) = usage_for_user(user=alice)

    assert (row.answers, row.total_tokens) == (1, 0)


def test_usage_page_and_csv(alice) -> None:
    answer(alice, "ollama/llama3.2:1b", 10, 5)
    client = logged_in(alice)

    page = client.get("/usage/").content.decode()
    response = client.get("/usage/?format=csv")

    assert "ollama/llama3.2:1b" in page and "<td>15</td>" in page
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        ["day", "model", "answers", "prompt_tokens", "completion_tokens", "total_tokens"],
        [timezone.localdate().isoformat(), "ollama/llama3.2:1b", "1", "10", "5", "15"],
    ]


def test_staff_see_usage_per_user_and_model(alice, bob) -> None:
    admin = make_user("admin", is_staff=True)
    answer(alice, "m1", 1, 2)
    answer(alice, "m1", 1, 2, days_ago=3)
    answer(bob, "m2", 5, 5)

    rows = usage_for_everyone()
    page = logged_in(admin).get("/usage/all/").content.decode()
    exported = list(csv.reader(io.StringIO(logged_in(admin).get("/usage/all/?format=csv").content.decode())))

    assert [(r.username, r.model, r.answers, r.total_tokens) for r in rows] == [
        ("alice", "m1", 2, 6),
        ("bob", "m2", 1, 10),
    ]
    assert "Usage of every user" in page and "bob" in page
    assert exported[0][0] == "user" and exported[1:] == [
        ["alice", "m1", "2", "2", "4", "6"],
        ["bob", "m2", "1", "5", "5", "10"],
    ]


def test_only_staff_see_everyones_usage(alice, bob) -> None:
    answer(bob, "bobs-model", 1, 1)

    assert logged_in(alice).get("/usage/all/").status_code == 404
    assert logged_in(alice).get("/usage/all/?format=csv").status_code == 404
    own = logged_in(alice).get("/usage/").content.decode() + logged_in(alice).get("/usage/?format=csv").content.decode()
    assert "bobs-model" not in own
    assert Client().get("/usage/").status_code == 302


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("ollama/llama3.2:1b", "ollama/llama3.2:1b"),
        ("", ""),
    ],
)
def test_csv_cells_cannot_start_a_formula(cell, safe) -> None:
    assert csv_safe(cell) == safe


def test_a_model_or_user_named_like_a_formula_is_defused_in_the_csv(alice) -> None:
    admin = make_user("=cmd|' /C calc'!A0", is_staff=True)
    answer(admin, "=1+1", 1, 1)

    mine = list(csv.reader(io.StringIO(logged_in(admin).get("/usage/?format=csv").content.decode())))
    everyone = list(csv.reader(io.StringIO(logged_in(admin).get("/usage/all/?format=csv").content.decode())))

    assert mine[1][1] == "'=1+1"
    assert everyone[1][:2] == ["'=cmd|' /C calc'!A0", "'=1+1"]
