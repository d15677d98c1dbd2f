"""Reads for chat. Every user-owned object is loaded through a `*_get_for_user` helper."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from chat.models import Conversation, Message, Vote
from chat.ratings import Standing, VoteOutcome, rank_models

SIDEBAR_LIMIT = 100


def conversation_get_for_user(
    *, user: AbstractBaseUser | AnonymousUser, conversation_uuid: uuid.UUID | str
) -> Conversation:
    """The user's conversation, or Http404 (for other users' conversations too)."""
    if not user.is_authenticated:
        raise Http404("No such conversation.")
    try:
        return Conversation.objects.get(uuid=conversation_uuid, owner_id=user.pk)
    except (Conversation.DoesNotExist, ValueError, TypeError):
        raise Http404("No such conversation.") from None


def conversations_for_sidebar(*, user: AbstractBaseUser) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(owner_id=user.pk)
        .order_by("-updated_at")
        .only("uuid", "title", "updated_at")[:SIDEBAR_LIMIT]
    )


COLUMN_LETTERS = "ABCD"


def error_without_model(message: Message) -> str:
    """The answer's error text with its model's name (which a provider may quote) taken out."""
    error = message.error
    if message.model_label:
        for name in sorted({message.model_label, message.model_label.split("/", 1)[-1]}, key=len, reverse=True):
            error = error.replace(name, "this model")
    return error


@dataclass(frozen=True)
class Shown:
    """A message as the page shows it: its place among its versions and its label."""

    message: Message
    versions: list[int]
    hidden: bool = False
    chosen: bool = False

    @property
    def position(self) -> int:
        return self.versions.index(self.message.pk) + 1 if self.message.pk in self.versions else 1

    @property
    def count(self) -> int:
        return max(len(self.versions), 1)

    @property
    def previous_id(self) -> int | None:
        return self.versions[self.position - 2] if self.position > 1 else None

    @property
    def next_id(self) -> int | None:
        return self.versions[self.position] if self.position < len(self.versions) else None

    @property
    def label(self) -> str:
        if self.message.role == Message.Role.USER:
            return "You"
        if self.hidden:
            return f"Model {COLUMN_LETTERS[self.message.column % len(COLUMN_LETTERS)]}"
        return self.message.model_label or "Assistant"

    @property
    def error(self) -> str:
        return error_without_model(self.message) if self.hidden else self.message.error

    @property
    def tokens_per_second(self) -> float | None:
        m = self.message
        if not m.completion_tokens or m.latency_ms is None:
            return None
        streaming_ms = m.latency_ms - (m.first_token_ms or 0)
        return round(m.completion_tokens * 1000 / streaming_ms, 1) if streaming_ms > 0 else None


@dataclass
class Turn:
    """One prompt on the shown branch and its current answer in each column.

    `prompt_versions` lists the ids of the prompt and its sibling versions (edits), oldest
    first; `reply_versions` does the same for each column's answers (regenerations).
    """

    prompt: Message
    replies: list[Message] = field(default_factory=list)
    prompt_versions: list[int] = field(default_factory=list)
    reply_versions: dict[int, list[int]] = field(default_factory=dict)
    vote: Vote | None = None

    @property
    def hidden(self) -> bool:
        """Blind answers hide their models until the vote."""
        return self.prompt.blind and self.vote is None

    @property
    def side_by_side(self) -> bool:
        return len(self.replies) > 1

    @property
    def shown_prompt(self) -> Shown:
        return Shown(self.prompt, self.prompt_versions)

    @property
    def shown_replies(self) -> list[Shown]:
        return [
            Shown(
                reply,
                self.reply_versions.get(reply.column, [reply.pk]),
                hidden=self.hidden,
                chosen=self.prompt.chosen_reply_id == reply.pk,
            )
            for reply in self.replies
        ]

    @property
    def finished(self) -> bool:
        return all(reply.is_finished for reply in self.replies)

    @property
    def winner_label(self) -> str:
        """After a vote: who won, named."""
        if self.vote is None:
            return ""
        if self.vote.winner_id is None:
            return "a tie"
        winner = next((s for s in self.shown_replies if s.message.pk == self.vote.winner_id), None)
        return winner.label if winner else self.vote.winner_model


def _current_child(children: list[Message]) -> Message | None:
    return next((m for m in reversed(children) if m.is_current), children[-1] if children else None)


def active_path(messages: Iterable[Message]) -> list[Turn]:
    """The branch the conversation shows, from the conversation's messages (one query's rows).

    From the current first prompt, follow each prompt's current next prompt; for each
    prompt take the current version of the answer in every column.
    """
    prompts: dict[int | None, list[Message]] = {}
    replies: dict[int, dict[int, list[Message]]] = {}
    for message in sorted(messages, key=lambda m: m.pk):
        if message.role == Message.Role.USER:
            prompts.setdefault(message.parent_id, []).append(message)
        elif message.role == Message.Role.ASSISTANT and message.parent_id is not None:
            replies.setdefault(message.parent_id, {}).setdefault(message.column, []).append(message)
    path: list[Turn] = []
    siblings = prompts.get(None, [])
    prompt = _current_child(siblings)
    while prompt is not None:
        columns = replies.get(prompt.pk, {})
        path.append(
            Turn(
                prompt,
                [c for col in sorted(columns) if (c := _current_child(columns[col])) is not None],
                prompt_versions=[m.pk for m in siblings],
                reply_versions={col: [m.pk for m in columns[col]] for col in sorted(columns)},
            )
        )
        siblings = prompts.get(prompt.pk, [])
        prompt = _current_child(siblings)
    return path


# The conversation id too: a related manager sets it on every row it loads.
TREE_FIELDS = ("id", "conversation_id", "parent_id", "role", "column", "is_current")
TURNS_PER_PAGE = 50


@dataclass
class TurnPage:
    turns: list[Turn]
    has_older: bool

    @property
    def oldest_prompt_id(self) -> int | None:
        return self.turns[0].prompt.pk if self.turns else None


def conversation_turns(
    *, conversation: Conversation, before: int | None = None, limit: int = TURNS_PER_PAGE
) -> TurnPage:
    """The last `limit` turns of the shown branch (before the prompt `before`, when given),
    with their messages and votes loaded in full: three queries, however long the conversation.
    """
    path = active_path(conversation.messages.only(*TREE_FIELDS))
    end = len(path)
    if before is not None:
        end = next((i for i, turn in enumerate(path) if turn.prompt.pk == before), 0)
    turns = path[max(0, end - limit) : end]
    ids = [m.pk for turn in turns for m in (turn.prompt, *turn.replies)]
    full = {m.pk: m for m in conversation.messages.filter(id__in=ids)} if ids else {}
    votes = {v.prompt_id: v for v in Vote.objects.filter(prompt_id__in=[t.prompt.pk for t in turns])} if ids else {}
    for turn in turns:
        turn.prompt = full[turn.prompt.pk]
        turn.replies = [full[m.pk] for m in turn.replies]
        turn.vote = votes.get(turn.prompt.pk)
    return TurnPage(turns=turns, has_older=end - limit > 0)


def path_message_ids(*, conversation: Conversation) -> set[int]:
    return {
        m.pk for turn in active_path(conversation.messages.only(*TREE_FIELDS)) for m in (turn.prompt, *turn.replies)
    }


def message_model_hidden(message: Message) -> bool:
    """Whether an answer's model is still secret: its prompt is blind and not voted on."""
    if message.role != Message.Role.ASSISTANT or message.parent_id is None:
        return False
    return Message.objects.filter(pk=message.parent_id, blind=True, vote__isnull=True).exists()


def messages_for_conversation(*, conversation: Conversation, after_id: int = 0) -> QuerySet[Message]:
    return conversation.messages.filter(id__gt=after_id).order_by("id")


def message_as_frame(message: Message, *, hide_model: bool = False) -> dict[str, object]:
    """The message as the websocket and the page's script see it.

    With `hide_model` (a blind answer before the vote) nothing names the model: not the
    label, and not an error text that would quote it.
    """
    error = error_without_model(message) if hide_model else message.error
    return {
        "id": message.pk,
        "parent": message.parent_id,
        "column": message.column,
        "role": message.role,
        "content": message.content,
        "html": message.content_html,
        "status": message.status,
        "model": "" if hide_model else message.model_label,
        "blind": hide_model,
        "is_current": message.is_current,
        "error": error,
        "usage": {"prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens},
        "first_token_ms": message.first_token_ms,
        "latency_ms": message.latency_ms,
        "citations": message.citations,
    }


def model_leaderboard(*, user: AbstractBaseUser) -> list[Standing]:
    """Every vote of the organisation, ranked (see chat.ratings); a user sees the rows of the
    models they may use (admins see all), rated against every model."""
    from models_registry.selectors import models_usable_by

    outcomes = [
        VoteOutcome(contenders=list(contenders), winner=winner)
        for contenders, winner in Vote.objects.order_by("created_at", "id").values_list("contenders", "winner_model")
    ]
    standings = rank_models(outcomes)
    if getattr(user, "is_staff", False):
        return standings
    usable = {m.model_id for m in models_usable_by(user=user)}
    return [s for s in standings if s.model in usable]
