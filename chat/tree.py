"""Reads of a conversation's tree of messages: the branch it shows, the versions of each
message, and the history a model is given.

A user message's parent is the prompt of the turn before; an answer's parent is the prompt
it answers; side-by-side answers are siblings in different columns; siblings with the same
parent, role and column are versions, and `is_current` marks the one shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from chat.models import Conversation, Message, Vote
from models_registry.providers.base import ChatMessage

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


def turn_of_prompt(prompt: Message) -> Turn:
    """The turn of one prompt as the page shows it: its versions, its current answer in each
    column with their versions, and its vote. Three queries."""
    siblings = list(
        Message.objects.filter(
            conversation_id=prompt.conversation_id, parent_id=prompt.parent_id, role=Message.Role.USER
        ).values_list("id", flat=True)
    )
    columns: dict[int, list[Message]] = {}
    for reply in prompt.children.filter(role=Message.Role.ASSISTANT).order_by("id"):
        columns.setdefault(reply.column, []).append(reply)
    return Turn(
        prompt,
        [c for col in sorted(columns) if (c := _current_child(columns[col])) is not None],
        prompt_versions=sorted(siblings),
        reply_versions={col: [m.pk for m in columns[col]] for col in sorted(columns)},
        vote=Vote.objects.filter(prompt_id=prompt.pk).first(),
    )


def answer_shown(answer: Message) -> tuple[Shown, bool]:
    """An answer as the page shows it, and whether its turn is side by side (several columns)."""
    prompt = (
        Message.objects.filter(pk=answer.parent_id).values("blind", "chosen_reply_id", "vote__id").first()
        if answer.parent_id is not None
        else None
    )
    siblings = Message.objects.filter(parent_id=answer.parent_id, role=Message.Role.ASSISTANT)
    versions = sorted(m for m in siblings.filter(column=answer.column).values_list("id", flat=True))
    side_by_side = siblings.filter(is_current=True).exclude(column=answer.column).exists()
    hidden = bool(prompt and prompt["blind"] and prompt["vote__id"] is None)
    chosen = bool(prompt and prompt["chosen_reply_id"] == answer.pk)
    return Shown(answer, versions or [answer.pk], hidden=hidden, chosen=chosen), side_by_side


def _reply_for(prompt: Message, answers: list[Message], answer: Message) -> Message | None:
    """Which earlier answer to `prompt` the model writing `answer` sees as history.

    The answer the user picked ("continue with this") wins; otherwise the model's own
    answer (each model gets its own side of a side-by-side history), then the answer in
    the same column, then the first column's.
    """
    shown = [m for m in answers if m.is_current and m.content]
    if prompt.chosen_reply_id is not None:
        chosen = next((m for m in answers if m.pk == prompt.chosen_reply_id and m.content), None)
        if chosen is not None:
            return chosen
    for same in (
        lambda m: answer.model_id is not None and m.model_id == answer.model_id,
        lambda m: m.column == answer.column,
        lambda m: True,
    ):
        found = next((m for m in shown if same(m)), None)
        if found is not None:
            return found
    return None


def history_for_generation(*, assistant_message: Message) -> list[ChatMessage]:
    """The branch up to this answer as its model should see it: the conversation's system
    prompt, then each earlier prompt with one answer, ending with the prompt being answered.

    The branch is the answer's ancestry (not whatever the page shows now), so an answer
    being regenerated or written beside others sees the history it was asked with.
    Failed answers with no text are left out; a partial answer counts as what was said.
    """
    conversation = assistant_message.conversation
    rows = list(conversation.messages.exclude(role=Message.Role.SYSTEM).order_by("id"))
    by_id = {m.pk: m for m in rows}
    answers: dict[int, list[Message]] = {}
    for m in rows:
        if m.role == Message.Role.ASSISTANT and m.parent_id is not None:
            answers.setdefault(m.parent_id, []).append(m)
    prompts: list[Message] = []
    prompt = by_id.get(assistant_message.parent_id) if assistant_message.parent_id else None
    while prompt is not None:
        prompts.append(prompt)
        prompt = by_id.get(prompt.parent_id) if prompt.parent_id else None
    prompts.reverse()
    history: list[ChatMessage] = []
    if conversation.system_prompt.strip():
        history.append({"role": "system", "content": conversation.system_prompt.strip()})
    for index, prompt in enumerate(prompts):
        history.append({"role": "user", "content": prompt.content})
        if index < len(prompts) - 1:
            reply = _reply_for(prompt, answers.get(prompt.pk, []), assistant_message)
            if reply is not None:
                history.append({"role": "assistant", "content": reply.content})
    return history
