"""The tree of turns: which branch is shown, what each model is told, and the services that
grow the tree (side by side, regenerate, edit, switch versions, continue with this, votes)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chat import exchanges, tree
from chat.models import Message, Vote
from chat.tree import active_path, conversation_turns, path_message_ids
from models_registry.models import LLMModel
from tests.conftest import make_conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def qwen(ollama_provider) -> LLMModel:
    return LLMModel.objects.get(provider=ollama_provider, name="qwen2.5:0.5b")


def say(conversation, role, content, parent=None, **extra) -> Message:
    return Message.objects.create(conversation=conversation, role=role, content=content, parent=parent, **extra)


def answer(conversation, prompt, content, model, column=0, **extra) -> Message:
    return say(conversation, "assistant", content, prompt, model=model, model_label=model.model_id, column=column,
               **extra)  # fmt: skip


def finish_all(conversation) -> None:
    conversation.messages.filter(status="streaming").update(status="complete", content="done")


def test_active_path_follows_current_versions_and_lists_siblings(alice, llama, qwen) -> None:
    c = make_conversation(alice)
    first = say(c, "user", "first", is_current=False)
    edited = say(c, "user", "first, edited")
    a_old = answer(c, edited, "old", llama, is_current=False)
    a_new = answer(c, edited, "new", llama)
    b = answer(c, edited, "qwen says", qwen, column=1)
    second = say(c, "user", "second", edited)
    answer(c, first, "answer on the old branch", llama)
    say(c, "user", "on the old branch", first)

    path = active_path(c.messages.all())

    assert [t.prompt.pk for t in path] == [edited.pk, second.pk]
    assert [m.pk for m in path[0].replies] == [a_new.pk, b.pk]
    assert path[0].prompt_versions == [first.pk, edited.pk]
    assert path[0].reply_versions == {0: [a_old.pk, a_new.pk], 1: [b.pk]}
    assert path[1].replies == [] and path[1].prompt_versions == [second.pk]


def test_each_model_hears_its_own_side_of_the_history(alice, llama, qwen) -> None:
    c = make_conversation(alice, system_prompt="Be brief.")
    p1 = say(c, "user", "q1")
    answer(c, p1, "llama a1", llama)
    answer(c, p1, "qwen a1", qwen, column=1)
    p2 = say(c, "user", "q2", p1)
    llama_now = answer(c, p2, "", llama, status="streaming")
    qwen_now = answer(c, p2, "", qwen, column=1, status="streaming")

    assert tree.history_for_generation(assistant_message=llama_now) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "llama a1"},
        {"role": "user", "content": "q2"},
    ]
    assert tree.history_for_generation(assistant_message=qwen_now)[2] == {"role": "assistant", "content": "qwen a1"}


def test_the_chosen_answer_is_everyones_history(alice, llama, qwen) -> None:
    c = make_conversation(alice)
    p1 = say(c, "user", "q1")
    answer(c, p1, "llama a1", llama)
    picked = answer(c, p1, "qwen a1", qwen, column=1)
    p1.chosen_reply = picked
    p1.save()
    p2 = say(c, "user", "q2", p1)
    later = answer(c, p2, "", llama, status="streaming")

    history = tree.history_for_generation(assistant_message=later)

    assert history[1] == {"role": "assistant", "content": "qwen a1"}


def test_history_is_the_answers_own_branch_and_skips_empty_failures(alice, llama) -> None:
    c = make_conversation(alice)
    p1 = say(c, "user", "q1")
    answer(c, p1, "", llama, status="error")
    old = say(c, "user", "old q2", p1, is_current=False)
    new = say(c, "user", "new q2", p1)
    on_old = answer(c, old, "", llama, status="streaming")
    answer(c, new, "", llama, status="streaming")

    assert tree.history_for_generation(assistant_message=on_old) == [
        {"role": "user", "content": "q1"},
        {"role": "user", "content": "old q2"},
    ]


def test_exchange_start_fans_out_to_every_model_in_columns(alice, llama, qwen) -> None:
    c = make_conversation(alice)

    exchange = exchanges.exchange_start(conversation=c, content="compare", models=[llama, qwen])

    assert [(m.column, m.model_id, m.status) for m in exchange.assistant_messages] == [
        (0, llama.pk, "streaming"),
        (1, qwen.pk, "streaming"),
    ]
    assert all(m.parent_id == exchange.user_message.pk for m in exchange.assistant_messages)
    c.refresh_from_db()
    assert c.selected_models == [llama.model_id, qwen.model_id] and not c.blind
    with pytest.raises(exchanges.ChatError) as busy:
        exchanges.exchange_start(conversation=c, content="again", models=[llama])
    assert busy.value.code == "busy"


def test_blind_prompts_are_marked_and_remembered(alice, llama, qwen) -> None:
    c = make_conversation(alice)

    exchange = exchanges.exchange_start(conversation=c, content="who?", models=[llama, qwen], blind=True)

    assert exchange.user_message.blind
    assert sorted(m.model_id for m in exchange.assistant_messages) == sorted([llama.pk, qwen.pk])
    c.refresh_from_db()
    assert c.blind
    single = make_conversation(alice)
    assert not exchanges.exchange_start(conversation=single, content="x", models=[llama], blind=True).user_message.blind


def test_regenerate_adds_a_current_version_in_the_same_column(alice, llama, qwen) -> None:
    c = make_conversation(alice)
    exchange = exchanges.exchange_start(conversation=c, content="q", models=[llama, qwen])
    finish_all(c)
    old = exchange.assistant_messages[1]

    new = exchanges.answer_regenerate(conversation=c, message_id=old.pk)

    assert (new.parent_id, new.column, new.model_id, new.status) == (old.parent_id, 1, qwen.pk, "streaming")
    turn = active_path(c.messages.all())[0]
    assert [m.pk for m in turn.replies] == [exchange.assistant_messages[0].pk, new.pk]
    assert turn.reply_versions[1] == [old.pk, new.pk]
    with pytest.raises(exchanges.ChatError) as busy:
        exchanges.answer_regenerate(conversation=c, message_id=new.pk)
    assert busy.value.code == "busy", "a column cannot be regenerated while it streams"

    exchanges.version_show(conversation=c, message_id=old.pk)

    assert [m.pk for m in active_path(c.messages.all())[0].replies][1] == old.pk


def test_regenerating_the_chosen_answer_keeps_it_chosen(alice, llama, qwen) -> None:
    c = make_conversation(alice)
    exchange = exchanges.exchange_start(conversation=c, content="q", models=[llama, qwen])
    finish_all(c)
    exchanges.reply_choose(conversation=c, prompt_id=exchange.user_message.pk, message_id=exchange.assistant_message.pk)

    new = exchanges.answer_regenerate(conversation=c, message_id=exchange.assistant_message.pk)

    exchange.user_message.refresh_from_db()
    assert exchange.user_message.chosen_reply_id == new.pk


def test_edit_starts_a_branch_and_switching_back_restores_the_old_one(alice, llama, qwen) -> None:
    c = make_conversation(alice)
    first = exchanges.exchange_start(conversation=c, content="q1", models=[llama])
    finish_all(c)
    second = exchanges.exchange_start(conversation=c, content="q2", models=[llama])
    finish_all(c)

    edited = exchanges.prompt_edit(conversation=c, message_id=first.user_message.pk, content="q1 again",
                                  models=[llama, qwen])  # fmt: skip

    assert edited.user_message.parent_id is None and len(edited.assistant_messages) == 2
    path = active_path(c.messages.all())
    assert [t.prompt.content for t in path] == ["q1 again"], "the new branch has no later turns yet"
    assert path[0].prompt_versions == [first.user_message.pk, edited.user_message.pk]
    finish_all(c)

    exchanges.version_show(conversation=c, message_id=first.user_message.pk)

    path = active_path(c.messages.all())
    assert [t.prompt.pk for t in path] == [first.user_message.pk, second.user_message.pk]
    assert path_message_ids(conversation=c) == {
        first.user_message.pk, first.assistant_message.pk, second.user_message.pk, second.assistant_message.pk
    }  # fmt: skip


def test_continue_with_this_picks_the_model_and_with_all_restores_them(alice, llama, qwen) -> None:
    c = make_conversation(alice)
    exchange = exchanges.exchange_start(conversation=c, content="q", models=[llama, qwen])
    finish_all(c)

    exchanges.reply_choose(
        conversation=c, prompt_id=exchange.user_message.pk, message_id=exchange.assistant_messages[1].pk
    )

    c.refresh_from_db()
    exchange.user_message.refresh_from_db()
    assert exchange.user_message.chosen_reply_id == exchange.assistant_messages[1].pk
    assert c.selected_models == [qwen.model_id]

    exchanges.reply_choose(conversation=c, prompt_id=exchange.user_message.pk, message_id=None)

    c.refresh_from_db()
    exchange.user_message.refresh_from_db()
    assert exchange.user_message.chosen_reply_id is None
    assert c.selected_models == [llama.model_id, qwen.model_id]


def test_votes_need_finished_answers_one_per_prompt_and_blind_picks_wait_for_them(alice, bob, llama, qwen) -> None:
    c = make_conversation(alice)
    exchange = exchanges.exchange_start(conversation=c, content="q", models=[llama, qwen], blind=True)
    prompt_id = exchange.user_message.pk
    with pytest.raises(exchanges.ChatError) as streaming:
        exchanges.vote_cast(owner=alice, conversation=c, prompt_id=prompt_id, winner_id=None)
    assert streaming.value.code == "busy"
    finish_all(c)
    with pytest.raises(exchanges.ChatError) as early:
        exchanges.reply_choose(conversation=c, prompt_id=prompt_id, message_id=exchange.assistant_message.pk)
    assert early.value.code == "vote_first"
    winner = next(m for m in exchange.assistant_messages if m.model_id == qwen.pk)

    vote = exchanges.vote_cast(owner=alice, conversation=c, prompt_id=prompt_id, winner_id=winner.pk)

    assert (vote.owner, vote.winner_id, vote.winner_model) == (alice, winner.pk, qwen.model_id)
    assert sorted(vote.contenders) == sorted([llama.model_id, qwen.model_id])
    with pytest.raises(exchanges.ChatError) as again:
        exchanges.vote_cast(owner=alice, conversation=c, prompt_id=prompt_id, winner_id=None)
    assert again.value.code == "already_voted"
    with pytest.raises(exchanges.ChatError) as foreign:
        exchanges.vote_cast(owner=bob, conversation=c, prompt_id=prompt_id, winner_id=None)
    assert foreign.value.code == "not_found"
    assert Vote.objects.count() == 1


def test_a_single_answer_cannot_be_voted_on(alice, llama) -> None:
    c = make_conversation(alice)
    exchange = exchanges.exchange_start(conversation=c, content="q", models=[llama])
    finish_all(c)

    with pytest.raises(exchanges.ChatError) as caught:
        exchanges.vote_cast(owner=alice, conversation=c, prompt_id=exchange.user_message.pk, winner_id=None)

    assert caught.value.code == "not_comparable"


def test_messages_of_another_conversation_are_not_found(alice, llama) -> None:
    mine, other = make_conversation(alice), make_conversation(alice)
    exchange = exchanges.exchange_start(conversation=other, content="q", models=[llama])
    finish_all(other)

    for call in (
        lambda: exchanges.answer_regenerate(conversation=mine, message_id=exchange.assistant_message.pk),
        lambda: exchanges.version_show(conversation=mine, message_id=exchange.user_message.pk),
        lambda: exchanges.prompt_edit(
            conversation=mine, message_id=exchange.user_message.pk, content="x", models=[llama]
        ),
        lambda: exchanges.reply_choose(conversation=mine, prompt_id=exchange.user_message.pk, message_id=None),
    ):
        with pytest.raises(exchanges.ChatError) as caught:
            call()
        assert caught.value.code == "not_found"
    assert other.messages.count() == 2


def seed_turns(conversation, model, count: int) -> None:
    parent = None
    for i in range(count):
        parent = say(conversation, "user", f"q{i}", parent)
        answer(conversation, parent, f"a{i}", model)


def test_conversation_page_shows_the_last_turns_and_pages_back(alice, llama) -> None:
    c = make_conversation(alice)
    seed_turns(c, llama, 120)

    page = conversation_turns(conversation=c, limit=50)

    assert [t.prompt.content for t in page.turns][:1] == ["q70"] and page.turns[-1].prompt.content == "q119"
    assert page.has_older and page.turns[-1].replies[0].content == "a119"
    older = conversation_turns(conversation=c, before=page.oldest_prompt_id, limit=50)
    assert (older.turns[0].prompt.content, older.turns[-1].prompt.content, older.has_older) == ("q20", "q69", True)
    oldest = conversation_turns(conversation=c, before=older.oldest_prompt_id, limit=50)
    assert (oldest.turns[0].prompt.content, len(oldest.turns), oldest.has_older) == ("q0", 20, False)


def test_conversation_page_queries_do_not_grow_with_the_messages(alice, llama) -> None:
    short, long = make_conversation(alice), make_conversation(alice)
    seed_turns(short, llama, 3)
    seed_turns(long, llama, 150)

    counts = []
    for conversation in (short, long):
        with CaptureQueriesContext(connection) as queries:
            page = conversation_turns(conversation=conversation)
            [(t.prompt.content, [r.content for r in t.replies], t.vote) for t in page.turns]
        counts.append(len(queries))

    assert counts[0] == counts[1] == 3


@pytest.mark.django_db(transaction=True)
def test_the_end_of_an_answer_keeps_a_version_switch_made_while_it_was_saved(alice, llama) -> None:
    """A switch to another version (is_current) commits between the answer's read and write of
    its row: the end of the answer writes only its own columns, so the switch is kept. The
    interleaving is forced with a row lock, on the real PostgreSQL."""
    import threading
    import time

    from django.db import connections, transaction

    c = make_conversation(alice)
    streaming = exchanges.exchange_start(conversation=c, content="q", models=[llama]).assistant_message
    locked, errors = threading.Event(), []

    def switch_version() -> None:
        try:
            with transaction.atomic():
                Message.objects.select_for_update().get(pk=streaming.pk)
                locked.set()
                deadline = time.monotonic() + 10
                with connection.cursor() as cursor:  # until the answer's write waits for this lock
                    while time.monotonic() < deadline:
                        cursor.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND datname = current_database()"
                        )
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.02)
                Message.objects.filter(pk=streaming.pk).update(is_current=False)
        except Exception as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    def finish() -> None:
        try:
            exchanges.message_finish(message_id=streaming.pk, content="done", status="complete")
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    switcher = threading.Thread(target=switch_version)
    switcher.start()
    assert locked.wait(10)
    finisher = threading.Thread(target=finish)
    finisher.start()
    switcher.join(20)
    finisher.join(20)

    assert not errors, errors
    saved = Message.objects.get(pk=streaming.pk)
    assert (saved.status, saved.content) == ("complete", "done")
    assert saved.is_current is False, "the end of the answer overwrote the version switch"
