"""The chat websocket: `/ws/chat/<conversation uuid>/`.

Thin by design: it checks who is asking, parses frames, calls a service and forwards
the conversation group's events. Generations run on their own (chat.generation), so a
socket closing never stops an answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.http import Http404

from chat import exchanges, realtime
from chat.generation import generation_start
from chat.models import Conversation, Message
from chat.quotas import QuotaExceeded, QuotaTicket, quota_hold
from chat.selectors import conversation_get_for_user
from chat.services import ChatError
from chat.tree import path_message_ids
from models_registry.models import LLMModel
from models_registry.selectors import model_get_usable

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_FLOODING = 4429
# Frames whose session check rides with their first database work (see `_session_and_models`).
SESSION_CHECKED_WITH_MODELS = ("send", "edit")
# A frame may carry a full message plus a little JSON around it.
FRAME_OVERHEAD = 4096


class FrameRateLimit:
    """A socket's frame budget: `burst` frames at once, refilled at `rate` a second.

    Frames over it are dropped before any work (no database read); the client hears it at
    most once a second, and a socket that keeps flooding is closed.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.dropped = 0  # since the budget was last full
        self.warned_at = float("-inf")

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= self.burst:  # quiet long enough to refill: earlier floods are forgiven
            self.dropped = 0
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.dropped += 1
        return False

    def should_warn(self) -> bool:
        now = time.monotonic()
        if now - self.warned_at < 1:
            return False
        self.warned_at = now
        return True


class ChatConsumer(AsyncWebsocketConsumer):
    conversation: Conversation
    group: str
    frame_limit: FrameRateLimit

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        try:
            self.conversation = await database_sync_to_async(conversation_get_for_user)(
                user=user, conversation_uuid=self.scope["url_route"]["kwargs"]["conversation_uuid"]
            )
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = realtime.conversation_group(self.conversation.uuid)
        self.user_group = realtime.user_group(user.pk)  # progress of the user's sources
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        self.frame_limit = FrameRateLimit(settings.CHAT_SOCKET_FRAMES_PER_SECOND, settings.CHAT_SOCKET_FRAME_BURST)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.channel_layer.group_discard(self.user_group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.frame_limit.allow():
            await self._on_flood()
            return
        frame, problem = self._parse(text_data)
        # `send` and `edit` check the session on the same trip to the database as their models.
        if (frame or {}).get("type") not in SESSION_CHECKED_WITH_MODELS and not await self._session_still_valid():
            await self._end_session()
            return
        if frame is None:
            await self._send_error(*problem)
            return
        kind = frame.get("type")
        handler = self._handlers().get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self._send_error("unknown_type", f"Unknown frame type {str(frame.get('type'))[:50]!r}.")
            return
        try:
            await handler(frame)
        except (Conversation.DoesNotExist, Http404):  # deleted meanwhile, in another tab say
            await self._send_error("not_found", "This conversation no longer exists.")
            await self.close(code=CLOSE_NOT_FOUND)
        except Exception:
            # A bug must cost the user one frame, not the socket (and never a quota ticket:
            # the handlers hold them in `quota_hold`).
            logger.exception("chat frame %r of user %s failed", frame.get("type"), self.scope["user"].pk)
            await self._send_error("internal", "Something went wrong on the server. Try again.")

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        """One handler per client frame of the protocol (chat.realtime.FRAMES)."""
        return {
            "send": self._on_send,
            "stop": self._on_stop,
            "sync": self._on_sync,
            "regenerate": self._on_regenerate,
            "edit": self._on_edit,
            "switch": self._on_switch,
            "choose": self._on_choose,
            "vote": self._on_vote,
        }

    @staticmethod
    def _parse(text_data: str | None) -> tuple[dict[str, Any] | None, tuple[str, str]]:
        """The frame, or None and the error to answer."""
        if text_data is None:
            return None, ("bad_frame", "Frames must be JSON text.")
        if len(text_data) > settings.CHAT_MAX_MESSAGE_CHARS * 4 + FRAME_OVERHEAD:
            return None, ("too_large", "That frame is too large.")
        try:
            frame = json.loads(text_data)
        except (json.JSONDecodeError, RecursionError):
            return None, ("bad_frame", "Frames must be JSON objects.")
        if not isinstance(frame, dict):
            return None, ("bad_frame", "Frames must be JSON objects.")
        return frame, ("", "")

    async def _end_session(self) -> None:
        await self._send_error("unauthenticated", "Your session has ended. Log in again.")
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _on_flood(self) -> None:
        limit = self.frame_limit
        if limit.dropped > limit.burst * 5:
            logger.warning("closing a flooding chat socket of user %s", self.scope["user"].pk)
            await self.close(code=CLOSE_FLOODING)
        elif limit.should_warn():
            await self._send_error(
                "too_many_frames", f"Too many frames: at most {limit.rate:g} a second. That one was ignored."
            )

    async def _models_from(self, frame: dict[str, Any]) -> list[LLMModel] | None:
        """The usable models a frame names (1 to 4, each once), or None after an error frame."""
        ids = frame.get("models")
        if not isinstance(ids, list) or not ids or not all(isinstance(m, str) for m in ids):
            await self._send_error("bad_frame", "`models` must be a list of model ids.")
            return None
        if len(ids) > exchanges.MAX_SIDE_BY_SIDE:
            await self._send_error(
                "too_many_models", f"Pick at most {exchanges.MAX_SIDE_BY_SIDE} models to compare side by side."
            )
            return None
        if len(set(ids)) != len(ids):
            await self._send_error("duplicate_model", "Each model can be picked only once.")
            return None
        valid, models = await database_sync_to_async(self._session_and_models)(ids)
        if not valid:
            await self._end_session()
            return None
        for model_id, model in zip(ids, models, strict=True):
            if model is None:
                await self._send_error("model_unavailable", f"The model {model_id[:200]!r} is not available to you.")
                return None
        return [model for model in models if model is not None]

    def _session_and_models(self, ids: list[str]) -> tuple[bool, list[LLMModel | None]]:
        """Whether the session still holds, and the usable model of each id (None where not)."""
        if not self._session_valid():
            return False, []
        return True, [model_get_usable(user=self.scope["user"], model_id=model_id) for model_id in ids]

    async def _answer(
        self,
        *,
        count: int,
        prompt_chars: int,
        write: Callable[[], tuple[list[Message], list[realtime.ServerFrame]]],
        about: int | None = None,
    ) -> bool:
        """Take a quota ticket per answer (all or none: a turn whose answers cannot all start is
        refused whole, so the user never gets half a comparison), save the turn with `write`
        (returning its streaming answers and the frames announcing them), and start the answers.
        False after an error frame. Tickets go back on every path but a started answer's."""
        announced = asyncio.Event()
        try:
            async with quota_hold(user_id=self.scope["user"].pk, count=count, prompt_chars=prompt_chars) as hold:
                answers, frames = await database_sync_to_async(write)()
                self._start(answers, hold.hand_over(), announced)
        except QuotaExceeded as exc:
            detail = exc.detail
            if count > 1 and exc.code == "too_many_generations":
                detail += f" This message asks {count} models at once: pick fewer, or wait."
            await self._send_error(exc.code, detail)
            return False
        except ChatError as exc:
            await self._send_error(exc.code, exc.detail, about)
            return False
        try:
            # One publish for them all: at 200 sends at once, a publish per frame was a tenth of the work.
            await realtime.publish(self.group, *frames)
        finally:
            announced.set()
        return True

    def _start(self, answers: list[Message], tickets: list[QuotaTicket], announced: asyncio.Event) -> None:
        """Start the answers before the page hears of them: they load their context and call
        their models meanwhile, and send no text before `announced` is set."""
        for message, ticket in zip(answers, tickets, strict=True):
            generation_start(message_id=message.pk, conversation_uuid=self.conversation.uuid,
                             ticket=ticket, message=message, announced=announced)  # fmt: skip

    async def _on_send(self, frame: dict[str, Any]) -> None:
        content = frame.get("content")
        if not isinstance(content, str):
            await self._send_error("bad_frame", "`content` must be a string.")
            return
        models = await self._models_from(frame)
        if models is None:
            return

        def write() -> tuple[list[Message], list[realtime.ServerFrame]]:
            exchange = exchanges.exchange_start(
                conversation=self.conversation, content=content, models=models, blind=frame.get("blind") is True
            )
            frames: list[realtime.ServerFrame] = [realtime.conversation_models(exchange.conversation)]
            if exchange.title_changed:
                frames.insert(0, realtime.conversation_updated(exchange.conversation))
            return exchange.assistant_messages, [*frames, *realtime.turn_created(exchange.user_message)]

        await self._answer(count=len(models), prompt_chars=len(content), write=write)

    async def _on_edit(self, frame: dict[str, Any]) -> None:
        message_id, content = frame.get("message"), frame.get("content")
        if not isinstance(message_id, int) or not isinstance(content, str):
            await self._send_error("bad_frame", "`message` must be a message id and `content` a string.")
            return
        models = await self._models_from(frame)
        if models is None:
            return

        def write() -> tuple[list[Message], list[realtime.ServerFrame]]:
            exchange = exchanges.prompt_edit(conversation=self.conversation, message_id=message_id, content=content,
                                             models=models, blind=frame.get("blind") is True)  # fmt: skip
            frames: list[realtime.ServerFrame] = [realtime.conversation_models(exchange.conversation)]
            return exchange.assistant_messages, [*frames, *realtime.turn_created(exchange.user_message)]

        if await self._answer(count=len(models), prompt_chars=len(content), write=write, about=message_id):
            await self._broadcast(realtime.path_changed())

    async def _on_regenerate(self, frame: dict[str, Any]) -> None:
        message_id = frame.get("message")
        if not isinstance(message_id, int):
            await self._send_error("bad_frame", "`message` must be a message id.")
            return
        label = await database_sync_to_async(self._model_label_of)(message_id)
        if label is None:
            await self._send_error("not_found", "That message is not in this conversation.", message_id)
            return
        model = await database_sync_to_async(model_get_usable)(user=self.scope["user"], model_id=label)
        if model is None:
            await self._send_error("model_unavailable", "The model of this answer is not available to you.", message_id)
            return

        def write() -> tuple[list[Message], list[realtime.ServerFrame]]:
            answer = exchanges.answer_regenerate(conversation=self.conversation, message_id=message_id)
            return [answer], [realtime.message_created(answer)]

        if await self._answer(count=1, prompt_chars=0, write=write, about=message_id):
            await self._broadcast(realtime.path_changed())

    def _model_label_of(self, message_id: int) -> str | None:
        """The model id of one of this conversation's answers (None: no such answer here)."""
        row = self.conversation.messages.filter(pk=message_id, role=Message.Role.ASSISTANT).first()
        return row.model_label if row is not None else None

    async def _on_switch(self, frame: dict[str, Any]) -> None:
        """Show another version of a prompt or an answer (the version arrows)."""
        message_id = frame.get("message")
        if not isinstance(message_id, int):
            await self._send_error("bad_frame", "`message` must be a message id.")
            return
        try:
            await database_sync_to_async(exchanges.version_show)(conversation=self.conversation, message_id=message_id)
        except ChatError as exc:
            await self._send_error(exc.code, exc.detail, message_id)
            return
        await self._broadcast(realtime.path_changed())

    async def _on_choose(self, frame: dict[str, Any]) -> None:
        prompt_id, message_id = frame.get("prompt"), frame.get("message")
        if not isinstance(prompt_id, int) or (message_id is not None and not isinstance(message_id, int)):
            await self._send_error("bad_frame", "`prompt` must be a message id and `message` an id or null.")
            return
        try:
            conversation = await database_sync_to_async(exchanges.reply_choose)(
                conversation=self.conversation, prompt_id=prompt_id, message_id=message_id
            )
        except ChatError as exc:
            await self._send_error(exc.code, exc.detail, prompt_id)
            return
        await realtime.publish(self.group, realtime.conversation_models(conversation), realtime.path_changed())

    async def _on_vote(self, frame: dict[str, Any]) -> None:
        prompt_id, winner_id = frame.get("prompt"), frame.get("winner")
        if not isinstance(prompt_id, int) or (winner_id is not None and not isinstance(winner_id, int)):
            await self._send_error("bad_frame", "`prompt` must be a message id and `winner` an id or null.")
            return
        try:
            vote = await database_sync_to_async(exchanges.vote_cast)(
                owner=self.scope["user"], conversation=self.conversation, prompt_id=prompt_id, winner_id=winner_id
            )
        except ChatError as exc:
            await self._send_error(exc.code, exc.detail, prompt_id)
            return
        recorded = realtime.vote_recorded(prompt_id=prompt_id, winner_id=winner_id, models=vote.contenders)
        await realtime.publish(self.group, recorded, realtime.path_changed())

    async def _on_stop(self, frame: dict[str, Any]) -> None:
        message_id = frame.get("message")
        if message_id is not None and not isinstance(message_id, int):
            await self._send_error("bad_frame", "`message` must be a message id.")
            return
        await realtime.generation_request_stop(conversation_uuid=self.conversation.uuid, message_id=message_id)

    async def _on_sync(self, frame: dict[str, Any]) -> None:
        """Send what the client has missed: messages after `after`, the current state of the
        messages listed in `refresh` (those it shows as streaming), and live text of running answers.
        """
        after = frame.get("after", 0)
        refresh = frame.get("refresh", [])
        if not isinstance(after, int):
            await self._send_error("bad_frame", "`after` must be a message id.")
            return
        if not isinstance(refresh, list) or not all(isinstance(i, int) for i in refresh) or len(refresh) > 100:
            await self._send_error("bad_frame", "`refresh` must be a list of at most 100 message ids.")
            return
        frames, streaming = await database_sync_to_async(self._messages_since)(after, refresh)
        if frames:
            await self._send_frames(frames)
        if streaming:
            await realtime.generation_request_sync(conversation_uuid=self.conversation.uuid, reply_to=self.channel_name)

    def _messages_since(self, after: int, refresh: list[int]) -> tuple[list[realtime.ServerFrame], bool]:
        """`message.created` for the shown branch's messages after `after` and for those in
        `refresh`; and whether an answer is still being written."""
        exchanges.generations_reap_stale(conversation=self.conversation)
        shown = path_message_ids(conversation=self.conversation)
        wanted = {i for i in shown if i > after} | {i for i in refresh if i <= after}
        messages = list(self.conversation.messages.filter(id__in=wanted).order_by("id"))
        streaming = self.conversation.messages.filter(status=Message.Status.STREAMING).exists()
        return [realtime.message_created(m) for m in messages], streaming

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every handler, a hop to a thread and
        # back: relayed events (each delta) touch no database, so they skip it.
        if message["type"] == realtime.EVENT:
            await self.chat_event(message)
        else:
            await super().dispatch(message)

    async def chat_event(self, event: dict[str, Any]) -> None:
        """Frames published to one of this socket's groups (chat.realtime.publish)."""
        await self._send_frames(event["frames"])

    async def _broadcast(self, frame: realtime.ServerFrame) -> None:
        await realtime.publish(self.group, frame)

    async def _send_frames(self, frames: Sequence[realtime.ServerFrame] | Sequence[dict[str, Any]]) -> None:
        for frame in frames:
            await self.send(text_data=json.dumps(frame))

    async def _send_error(self, code: str, detail: str, message: int | None = None) -> None:
        await self._send_frames([realtime.error(code, detail, message)])

    async def _session_still_valid(self) -> bool:
        return await database_sync_to_async(self._session_valid)()

    def _session_valid(self) -> bool:
        """Re-read the session from its store: a logout elsewhere ends this socket too."""
        session = self.scope.get("session")
        user = self.scope.get("user")
        if session is None or user is None or not session.session_key:
            return False
        store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session.session_key)
        if str(store.get(SESSION_KEY)) != str(user.pk) or not store.get(BACKEND_SESSION_KEY):
            return False
        session_hash = store.get(HASH_SESSION_KEY)
        return bool(session_hash) and session_hash == user.get_session_auth_hash()
