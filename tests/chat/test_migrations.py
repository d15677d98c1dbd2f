"""The move of the source-to-conversation link from ingestion to chat keeps every link, both
ways: chat 0007 copies `Source.conversation` into `Conversation.sources` before ingestion 0002
drops the column, and migrating back copies the links back."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("chat", "0006_vote"), ("ingestion", "0001_initial")]
AFTER = [("chat", "0007_conversation_sources"), ("ingestion", "0002_source_conversation_moves_to_chat")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_links_survive_the_move_to_chat_and_back() -> None:
    try:
        old = _migrate(BEFORE)
        user = old.get_model("auth", "User").objects.create(username="carol")
        Conversation = old.get_model("chat", "Conversation")
        Source = old.get_model("ingestion", "Source")
        talk, other = Conversation.objects.create(owner=user), Conversation.objects.create(owner=user)
        kinds = {"url": "https://example.org/"}
        linked = [Source.objects.create(owner=user, conversation=talk, **kinds) for _ in range(2)]
        elsewhere = Source.objects.create(owner=user, conversation=other, **kinds)
        loose = Source.objects.create(owner=user, conversation=None, **kinds)

        new = _migrate(AFTER)
        NewConversation = new.get_model("chat", "Conversation")
        assert {s.pk for s in NewConversation.objects.get(pk=talk.pk).sources.all()} == {s.pk for s in linked}
        assert [s.pk for s in NewConversation.objects.get(pk=other.pk).sources.all()] == [elsewhere.pk]
        assert "conversation" not in {f.name for f in new.get_model("ingestion", "Source")._meta.concrete_fields}

        back = _migrate(BEFORE)
        OldSource = back.get_model("ingestion", "Source")
        assert dict(OldSource.objects.values_list("pk", "conversation_id")) == {
            linked[0].pk: talk.pk, linked[1].pk: talk.pk, elsewhere.pk: other.pk, loose.pk: None,
        }  # fmt: skip
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
