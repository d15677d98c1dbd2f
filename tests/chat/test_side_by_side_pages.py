"""The conversation page's turns, its pages of older turns, blind labels and the leaderboard."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chat import exchanges
from chat.models import Message, Vote
from models_registry.models import LLMModel
from tests.conftest import make_conversation, make_user

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def qwen(ollama_provider) -> LLMModel:
    return LLMModel.objects.get(provider=ollama_provider, name="qwen2.5:0.5b")


def finish_all(conversation) -> None:
    for m in conversation.messages.filter(status="streaming"):
        exchanges.message_finish(message_id=m.pk, content=f"answer by column {m.column}", status="complete",
                                completion_tokens=10, first_token_ms=100, latency_ms=1100)  # fmt: skip


def seed_turns(conversation, model, count: int) -> None:
    parent = None
    for i in range(count):
        parent = Message.objects.create(conversation=conversation, role="user", content=f"question {i}", parent=parent)
        Message.objects.create(conversation=conversation, role="assistant", content=f"answer {i}", parent=parent,
                               model=model, model_label=model.model_id)  # fmt: skip


def test_side_by_side_answers_render_in_columns_with_their_stats(alice, llama, qwen) -> None:
    c = make_conversation(alice)
    exchanges.exchange_start(conversation=c, content="compare", models=[llama, qwen])
    finish_all(c)

    html = logged_in(alice).get(c.get_absolute_url()).content.decode()

    assert 'data-columns="2"' in html
    assert html.count("Continue with this") == 2
    assert "10 tokens · first token 100 ms · 10.0 tokens/s" in html
    assert llama.model_id in html and qwen.model_id in html
    assert 'value="ollama/llama3.2:1b" checked' in html and 'value="ollama/qwen2.5:0.5b" checked' in html


def test_blind_answers_are_unnamed_on_the_page_until_the_vote(alice, llama, qwen) -> None:
    c = make_conversation(alice)
    exchange = exchanges.exchange_start(conversation=c, content="who?", models=[llama, qwen], blind=True)
    finish_all(c)
    client = logged_in(alice)

    before = client.get(c.get_absolute_url()).content.decode()
    turns = client.get(f"/c/{c.uuid}/turns/").content.decode()

    for html in (before, turns):
        replies = html[html.index('class="replies"') :].split("</section>")[0]
        assert "llama" not in replies and "qwen" not in replies
        assert "Model A" in replies and "Model B" in replies
        assert "Continue with this" not in replies and "Which answer is best?" in replies
    exchanges.vote_cast(owner=alice, conversation=c, prompt_id=exchange.user_message.pk, winner_id=None)

    after = client.get(c.get_absolute_url()).content.decode()

    assert "You voted: a tie" in after and "llama3.2:1b" in after and "Which answer is best?" not in after


def test_exports_keep_blind_models_secret_until_the_vote(alice, llama, qwen) -> None:
    c = make_conversation(alice)
    exchange = exchanges.exchange_start(conversation=c, content="who?", models=[llama, qwen], blind=True)
    finish_all(c)
    client = logged_in(alice)

    data = client.get(f"/c/{c.uuid}/export.json").json()
    markdown = client.get(f"/c/{c.uuid}/export.md").content.decode()

    # The models picked are no secret (the composer shows them); which answer is whose is.
    assert [m["model"] for m in data["messages"] if m["role"] == "assistant"] == [None, None]
    assert "llama" not in markdown and "qwen" not in markdown and "A hidden model" in markdown
    exchanges.vote_cast(owner=alice, conversation=c, prompt_id=exchange.user_message.pk, winner_id=None)
    after = client.get(f"/c/{c.uuid}/export.json").json()
    assert {m["model"] for m in after["messages"] if m["role"] == "assistant"} == {llama.model_id, qwen.model_id}


def test_the_page_shows_the_last_fifty_turns_and_older_ones_load_on_request(alice, llama) -> None:
    c = make_conversation(alice)
    seed_turns(c, llama, 60)
    client = logged_in(alice)

    html = client.get(c.get_absolute_url()).content.decode()

    assert "question 10<" in html and "question 9<" not in html
    before = re.search(r'class="link older-turns" data-before="(\d+)"', html).group(1)
    older = client.get(f"/c/{c.uuid}/turns/?before={before}").content.decode()
    assert "question 0<" in older and "question 9<" in older and "question 10<" not in older
    assert "older-turns" not in older
    assert client.get(f"/c/{c.uuid}/turns/?before=x").status_code == 400


def test_the_conversation_page_runs_as_many_queries_for_200_messages_as_for_4(alice, llama) -> None:
    short, long = make_conversation(alice), make_conversation(alice)
    seed_turns(short, llama, 2)
    seed_turns(long, llama, 100)
    client = logged_in(alice)
    client.get(short.get_absolute_url())  # session and caches warm

    counts = []
    for conversation in (short, long):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(conversation.get_absolute_url()).status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]


def test_other_users_turns_are_not_found(alice, bob, llama) -> None:
    c = make_conversation(alice)
    seed_turns(c, llama, 1)

    assert logged_in(bob).get(f"/c/{c.uuid}/turns/").status_code == 404
    assert Client().get(f"/c/{c.uuid}/turns/").status_code == 302


def test_the_empty_state_lists_the_models_and_sources(alice, llama, qwen) -> None:
    html = logged_in(alice).get("/").content.decode()

    empty = html[html.index('id="empty-state"') : html.index("</section>")]
    assert "Models you can use" in empty and llama.model_id in empty and qwen.model_id in empty
    assert "None attached" in empty


def test_leaderboard_ranks_models_by_rating_with_counts(alice, bob, llama, qwen) -> None:
    for owner, winner in ((alice, llama), (bob, llama), (alice, qwen)):
        Vote.objects.create(owner=owner, contenders=[llama.model_id, qwen.model_id], winner_model=winner.model_id)
    Vote.objects.create(owner=bob, contenders=[llama.model_id, qwen.model_id, "azure/secret-model"], winner_model="")

    html = logged_in(alice).get("/leaderboard/").content.decode()

    rows = re.findall(r'<tr data-model="([^"]+)">', html)
    assert rows == [llama.model_id, qwen.model_id]
    assert "secret-model" not in html, "models the user cannot use are not listed"
    llama_row = html[html.index(f'data-model="{llama.model_id}"') :]
    assert '<td class="win-rate">50%</td><td class="votes">4</td>' in llama_row
    admin = make_user("root", is_staff=True)
    assert "azure/secret-model" in logged_in(admin).get("/leaderboard/").content.decode()


def test_leaderboard_without_votes_says_how_to_vote(alice) -> None:
    html = logged_in(alice).get("/leaderboard/").content.decode()

    assert 'id="no-votes"' in html
