"""The realtime protocol, in one place: group names, the frames of the chat websocket, and
publishing them from async code (consumers, generations) and sync code (services, Celery).

Every frame a server sends is built by a function here and typed by a `TypedDict` here;
`FRAMES` lists them with the frames clients send, and the README's protocol table is
generated from it (`protocol_table`; a test keeps the two equal).

Messages travel with their HTML, rendered by the templates the page itself uses
(`chat/_turn.html` for a prompt and its answers, `chat/_message.html` for an answer): the
page's script places that HTML and applies text deltas, and never builds a message itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, get_type_hints

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from chat.models import Conversation, Message
from chat.tree import Shown, Turn, answer_shown, turn_of_prompt
from ingestion.models import Source

logger = logging.getLogger(__name__)

# The channel-layer message type that carries frames to sockets (ChatConsumer.chat_event).
EVENT = "chat.event"
# Control messages to running generations (chat.generation.Generation._listen).
STOP = "generation.stop"
SYNC = "generation.sync"


# Group names.


def _hex(conversation_uuid: Any) -> str:
    return conversation_uuid.hex if hasattr(conversation_uuid, "hex") else str(conversation_uuid).replace("-", "")


def conversation_group(conversation_uuid: Any) -> str:
    """Sockets showing the conversation: its messages, deltas and changes."""
    return f"chat.{_hex(conversation_uuid)}"


def control_group(conversation_uuid: Any) -> str:
    """The conversation's running generations: they hear stop and resync requests here."""
    return f"chatctl.{_hex(conversation_uuid)}"


def user_group(user_id: int) -> str:
    """Every socket of a user: the progress of their sources."""
    return f"user.{user_id}"


# Frames a server sends.


class Usage(TypedDict):
    prompt_tokens: int | None
    completion_tokens: int | None


class MessagePayload(TypedDict):
    """A message as frames carry it. `html` is the page's own rendering: a prompt's whole turn
    (the prompt and its answers so far), or an answer's article."""

    id: int
    parent: int | None
    column: int
    role: str
    content: str
    html: str
    status: str
    model: str
    blind: bool
    is_current: bool
    error: str
    usage: Usage
    first_token_ms: int | None
    latency_ms: int | None
    citations: list[dict[str, Any]]


class MessageCreated(TypedDict):
    type: Literal["message.created"]
    message: MessagePayload


class Delta(TypedDict):
    type: Literal["delta"]
    message: int
    text: str
    offset: int


class MessageDone(MessagePayload):
    type: Literal["message.done"]
    message: int


class ErrorFrame(TypedDict):
    type: Literal["error"]
    message: int | None
    code: str
    detail: str


class ConversationRef(TypedDict):
    id: str
    title: str


class ConversationUpdated(TypedDict):
    type: Literal["conversation.updated"]
    conversation: ConversationRef


class ConversationModels(TypedDict):
    type: Literal["conversation.models"]
    selected_models: list[str]
    blind: bool


class VoteRecorded(TypedDict):
    type: Literal["vote.recorded"]
    prompt: int
    winner: int | None
    models: list[str]


class PathChanged(TypedDict):
    type: Literal["path.changed"]


class SourcePayload(TypedDict):
    id: str
    conversations: list[str]
    url: str
    file_name: str
    title: str
    status: str
    error: str
    size_bytes: int | None
    chunk_count: int | None


class SourceStatus(TypedDict):
    type: Literal["source.status"]
    source: SourcePayload


ServerFrame = (
    MessageCreated
    | Delta
    | MessageDone
    | ErrorFrame
    | ConversationUpdated
    | ConversationModels
    | VoteRecorded
    | PathChanged
    | SourceStatus
)


# Frames a client sends (parsed and checked by chat.consumers.ChatConsumer).


class SendFrame(TypedDict):
    type: Literal["send"]
    content: str
    models: list[str]
    blind: bool


class StopFrame(TypedDict):
    type: Literal["stop"]
    message: int | None


class SyncFrame(TypedDict):
    type: Literal["sync"]
    after: int
    refresh: list[int]


class RegenerateFrame(TypedDict):
    type: Literal["regenerate"]
    message: int


class EditFrame(TypedDict):
    type: Literal["edit"]
    message: int
    content: str
    models: list[str]
    blind: bool


class SwitchFrame(TypedDict):
    type: Literal["switch"]
    message: int


class ChooseFrame(TypedDict):
    type: Literal["choose"]
    prompt: int
    message: int | None


class VoteFrame(TypedDict):
    type: Literal["vote"]
    prompt: int
    winner: int | None


@dataclass(frozen=True)
class FrameSpec:
    shape: type
    sender: Literal["client", "server"]
    about: str
    embeds: type | None = None  # a payload whose fields the frame carries at its top level

    @property
    def type(self) -> str:
        return get_type_hints(self.shape)["type"].__args__[0]


FRAMES = [
    FrameSpec(SendFrame, "client", "a new prompt to 1 to 4 models (`blind`: hide their names until a vote)"),
    FrameSpec(StopFrame, "client", "stop one answer (`message`), or every answer being written (no `message`)"),
    FrameSpec(
        SyncFrame,
        "client",
        "sent on every (re)connect: the shown branch's messages after `after`, the "
        "state of the answers in `refresh`, and the live text of running answers",
    ),
    FrameSpec(RegenerateFrame, "client", "a new version of an answer, by the same model"),
    FrameSpec(EditFrame, "client", "an edited prompt: a new branch beside the old one"),
    FrameSpec(SwitchFrame, "client", "show that version of a prompt or an answer"),
    FrameSpec(ChooseFrame, "client", "continue with this answer (`message`), or with all (null)"),
    FrameSpec(VoteFrame, "client", "the best side-by-side answer (`winner`), or a tie (null)"),
    FrameSpec(MessageCreated, "server", "a prompt or an answer was saved (an answer starts streaming)"),
    FrameSpec(Delta, "server", "more text of a streaming answer; `offset` is the length of the text before it"),
    FrameSpec(MessageDone, "server", "an answer ended: `message` is its id", embeds=MessagePayload),
    FrameSpec(ErrorFrame, "server", "a refused frame (`message` null or the message it was about) or a failed answer"),
    FrameSpec(ConversationUpdated, "server", "the conversation's title changed"),
    FrameSpec(ConversationModels, "server", "the composer's choice of models changed"),
    FrameSpec(VoteRecorded, "server", "a vote was saved; the models' names are shown now"),
    FrameSpec(PathChanged, "server", "the shown branch changed: the page fetches `/c/<uuid>/turns/`"),
    FrameSpec(SourceStatus, "server", "a source of the user moved on (queued … ready, or failed with `error`)"),
]
CLIENT_FRAME_TYPES = {spec.type for spec in FRAMES if spec.sender == "client"}


def _fields(shape: type, embeds: type | None = None) -> str:
    """`name` (type) for every key but `type`; the keys of an embedded payload are named by it."""
    inherited = embeds.__annotations__ if embeds is not None else {}
    fields = [
        f"`{name}` ({getattr(annotation, '__forward_arg__', annotation)})".replace(" | ", " or ")
        for name, annotation in shape.__annotations__.items()
        if name != "type" and name not in inherited
    ]
    if embeds is not None:
        fields.append(f"the fields of a `{embeds.__name__}`")
    return ", ".join(fields) or "none"


def protocol_table() -> str:
    """The README's table of frames, from FRAMES (and the message and source payloads)."""
    rows = ["| from | `type` | fields | meaning |", "|---|---|---|---|"]
    rows += [
        f"| {spec.sender} | `{spec.type}` | {_fields(spec.shape, spec.embeds)} | {spec.about} |" for spec in FRAMES
    ]
    rows += [
        f"| (payload) | `MessagePayload` | {_fields(MessagePayload)} | a message in `message.created` "
        "and `message.done`; `html` is the page's own rendering: a prompt's whole turn, or an answer's article |",
        f"| (payload) | `Usage` | {_fields(Usage)} | the tokens of an answer, as its provider counted them |",
        f"| (payload) | `ConversationRef` | {_fields(ConversationRef)} | the conversation in `conversation.updated` |",
        f"| (payload) | `SourcePayload` | {_fields(SourcePayload)} | a source in `source.status` |",
    ]
    return "\n".join(rows) + "\n"


# Building frames.


def _payload(message: Message, shown: Shown, html: str) -> MessagePayload:
    return {
        "id": message.pk,
        "parent": message.parent_id,
        "column": message.column,
        "role": message.role,
        "content": message.content,
        "html": html,
        "status": message.status,
        "model": "" if shown.hidden else message.model_label,
        "blind": shown.hidden,
        "is_current": message.is_current,
        "error": shown.error,
        "usage": {"prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens},
        "first_token_ms": message.first_token_ms,
        "latency_ms": message.latency_ms,
        "citations": message.citations,
    }


def _turn_html(turn: Turn) -> str:
    return render_to_string("chat/_turn.html", {"turn": turn})


def _answer_html(shown: Shown, side_by_side: bool) -> str:
    return render_to_string("chat/_message.html", {"item": shown, "side_by_side": side_by_side})


def message_payload(message: Message) -> MessagePayload:
    """A message with its HTML (a few queries: call it from sync code)."""
    if message.role == Message.Role.ASSISTANT:
        shown, side_by_side = answer_shown(message)
        return _payload(message, shown, _answer_html(shown, side_by_side))
    turn = turn_of_prompt(message)
    return _payload(message, turn.shown_prompt, _turn_html(turn))


def turn_created(prompt: Message) -> list[MessageCreated]:
    """`message.created` for a new prompt and each of its answers, from one read of its turn."""
    turn = turn_of_prompt(prompt)
    frames: list[MessageCreated] = [
        {"type": "message.created", "message": _payload(prompt, turn.shown_prompt, _turn_html(turn))}
    ]
    for shown in turn.shown_replies:
        html = _answer_html(shown, turn.side_by_side)
        frames.append({"type": "message.created", "message": _payload(shown.message, shown, html)})
    return frames


def message_created(message: Message) -> MessageCreated:
    return {"type": "message.created", "message": message_payload(message)}


def message_done(message: Message) -> MessageDone:
    payload = message_payload(message)
    return {"type": "message.done", **payload, "message": message.pk}


def delta(*, message_id: int, text: str, offset: int) -> Delta:
    return {"type": "delta", "message": message_id, "text": text, "offset": offset}


def error(code: str, detail: str, message_id: int | None = None) -> ErrorFrame:
    return {"type": "error", "message": message_id, "code": code, "detail": detail}


def conversation_updated(conversation: Conversation) -> ConversationUpdated:
    return {"type": "conversation.updated", "conversation": {"id": str(conversation.uuid), "title": conversation.title}}


def conversation_models(conversation: Conversation) -> ConversationModels:
    return {"type": "conversation.models", "selected_models": conversation.selected_models,
            "blind": conversation.blind}  # fmt: skip


def vote_recorded(*, prompt_id: int, winner_id: int | None, models: list[str]) -> VoteRecorded:
    return {"type": "vote.recorded", "prompt": prompt_id, "winner": winner_id, "models": models}


def path_changed() -> PathChanged:
    return {"type": "path.changed"}


def source_payload(source: Source) -> SourcePayload:
    """A source as the page's script and the `source.status` frame see it."""
    document = source.document
    return {
        "id": str(source.uuid),
        "conversations": [str(u) for u in source.conversations.values_list("uuid", flat=True)],
        "url": source.url,
        "file_name": source.file_name,
        "title": source.name,
        "status": source.status,
        "error": source.error,
        "size_bytes": document.size_bytes if document else None,
        "chunk_count": document.chunk_count if document else None,
    }


def source_status(source: Source) -> SourceStatus:
    return {"type": "source.status", "source": source_payload(source)}


# Publishing.


def _event(frames: tuple[ServerFrame, ...] | list[ServerFrame]) -> dict[str, Any]:
    return {"type": EVENT, "frames": list(frames)}


async def publish(group: str, *frames: ServerFrame) -> None:
    """Send frames to every socket in a group, in order, as one channel-layer message."""
    await get_channel_layer().group_send(group, _event(frames))


async def send_to(channel: str, *frames: ServerFrame) -> None:
    """Send frames to one socket (its channel name)."""
    await get_channel_layer().send(channel, _event(frames))


def publish_from_sync(group: str, *frames: ServerFrame) -> bool:
    """`publish` for sync code (services, Celery tasks). A courtesy that never fails its caller:
    False (and a warning logged) when the channel layer could not take the frames."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(layer.group_send)(group, _event(frames))
    except Exception:
        logger.warning("could not publish %s to %s", [f["type"] for f in frames], group, exc_info=True)
        return False
    return True


def source_status_publish(*, source: Source, **_: Any) -> None:
    """Tell the owner's sockets how a source is doing (the receiver of ingestion's
    `source_status_changed` signal, connected in chat.apps)."""
    publish_from_sync(user_group(source.owner_id), source_status(source))


# Control of running generations.


async def generation_request_stop(*, conversation_uuid: Any, message_id: int | None = None) -> None:
    await get_channel_layer().group_send(control_group(conversation_uuid), {"type": STOP, "message": message_id})


async def generation_request_sync(*, conversation_uuid: Any, reply_to: str) -> None:
    await get_channel_layer().group_send(control_group(conversation_uuid), {"type": SYNC, "reply_to": reply_to})


def generations_stop_from_sync(*, conversation_uuid: Any) -> None:
    """Stop every answer of a conversation (it was deleted), wherever it runs; never raises."""
    try:
        async_to_sync(get_channel_layer().group_send)(control_group(conversation_uuid), {"type": STOP})
    except Exception:  # the conversation is gone either way; its answers end at their next save
        logger.warning("could not stop the answers of deleted conversation %s", conversation_uuid, exc_info=True)
