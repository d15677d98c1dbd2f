"""Server-owned generations: one asyncio task per answer, independent of any socket.

A generation streams from the provider, sends deltas to the conversation's group (the
first at once, later ones coalesced), saves its text every few seconds, and saves the
outcome at the end. It listens on its own channel in the conversation's control group,
so a Stop or a resync request from any socket, on any replica, reaches it.

Deltas carry `offset`, the length of the text before them, so a client that joined late
or missed frames can merge a snapshot and later deltas without duplicates or gaps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from chat import realtime
from chat.exchanges import message_checkpoint, message_finish
from chat.models import Message
from chat.quotas import QuotaTicket
from chat.selectors import sources_for_conversation
from chat.tree import history_for_generation
from ingestion.selectors import grounding_for
from models_registry.models import LLMModel
from models_registry.providers import ProviderError, provider_client
from models_registry.providers.base import ChatMessage, ChatOptions
from multillm.observability import generation_observed

logger = logging.getLogger(__name__)

# Keeps a reference to every running generation (asyncio only holds weak ones).
_RUNNING: dict[int, asyncio.Task[None]] = {}


def _delta_interval() -> float:
    """Seconds between an answer's deltas after the first: CHAT_DELTA_INTERVAL, or longer when so
    many answers run that their deltas would pass CHAT_DELTAS_PER_SECOND for the process (each
    costs a publish, a receive and a socket write per watcher): then deltas grow instead of the
    event loop falling behind the upstreams."""
    return max(settings.CHAT_DELTA_INTERVAL, len(_RUNNING) / settings.CHAT_DELTAS_PER_SECOND)


# Partial answers a process saves per second, at most, over all its answers; and the longest
# wait between two saves of one answer (well under exchanges.STALE_AFTER).
CHECKPOINTS_PER_SECOND = 20
CHECKPOINT_INTERVAL_MAX = 20.0


def _checkpoint_interval() -> float:
    """CHAT_CHECKPOINT_INTERVAL, or longer when many answers run: a save per answer every 2 s kept
    the database (and the process) busier than relaying their text did."""
    spread = len(_RUNNING) / CHECKPOINTS_PER_SECOND
    return min(max(settings.CHAT_CHECKPOINT_INTERVAL, spread), CHECKPOINT_INTERVAL_MAX)


@dataclass(frozen=True)
class _Context:
    message_id: int
    conversation_uuid: Any
    model: LLMModel
    history: list[ChatMessage]
    citations: list[dict[str, Any]]
    notice: str
    options: ChatOptions


def _load_context(message_id: int, message: Message | None = None) -> _Context:
    """What the answer needs to start: its model, the history it answers and the passages of
    the conversation's sources. `message` is the row as the caller already has it (with its
    conversation and model's provider loaded), saving a read."""
    if message is None:
        message = Message.objects.select_related("conversation", "model__provider").get(pk=message_id)
    if message.model is None:
        raise ProviderError("The model of this answer no longer exists.", permanent=True, code="model_missing")
    history = history_for_generation(assistant_message=message)
    grounding = grounding_for(
        sources=list(sources_for_conversation(conversation_id=message.conversation_id)),
        history=history,
        context_length=message.model.context_length,
    )
    if grounding.system_message:
        history = [{"role": "system", "content": grounding.system_message}, *history]
    return _Context(
        message_id=message.pk,
        conversation_uuid=message.conversation.uuid,
        model=message.model,
        history=history,
        citations=grounding.citations,
        notice=grounding.notice,
        options=ChatOptions(
            context_length=message.model.context_length,
            temperature=message.conversation.temperature,
            max_tokens=message.conversation.max_tokens,
        ),
    )


class Generation:
    def __init__(
        self,
        message_id: int,
        conversation_uuid: Any,
        ticket: QuotaTicket | None = None,
        *,
        message: Message | None = None,
        announced: asyncio.Event | None = None,
    ) -> None:
        self.message_id = message_id
        self.ticket = ticket
        self.message = message
        # Set once the page has been told of this answer (`message.created`): deltas wait for it,
        # so the generation can load its context and call the model meanwhile.
        self.announced = announced
        self.group = realtime.conversation_group(conversation_uuid)
        self.control = realtime.control_group(conversation_uuid)
        self.layer = get_channel_layer()
        self.text = ""
        self.sent_length = 0
        self.last_sent_at: float | None = None
        self.started_at = time.monotonic()
        self.first_token_at: float | None = None
        self.stop_requested = False
        self.send_lock = asyncio.Lock()
        self.citations: list[dict[str, Any]] = []
        self.notice = ""

    async def run(self) -> None:
        # The default prefix matters: channels_redis reads every specific channel of a
        # process through one shared connection keyed by that prefix.
        channel = await self.layer.new_channel()
        await self.layer.group_add(self.control, channel)
        listener = asyncio.create_task(self._listen(channel))
        checkpointer = asyncio.create_task(self._checkpoint_loop())
        stream = asyncio.create_task(self._stream())
        self._stream_task = stream
        outcome: dict[str, Any] = {"status": Message.Status.COMPLETE}
        try:
            outcome.update(await stream)
        except asyncio.CancelledError:
            if not self.stop_requested:
                # The server itself is shutting down: record what we have, then stop.
                outcome = {"status": Message.Status.INTERRUPTED, "error_code": "shutdown",
                           "error": "The server shut down while writing this answer."}  # fmt: skip
            else:
                outcome = {"status": Message.Status.STOPPED}
        except ProviderError as exc:
            logger.info("generation %s failed: %s (%s)", self.message_id, exc.message, exc.code)
            outcome = {
                "status": Message.Status.INTERRUPTED if self.text else Message.Status.ERROR,
                "error_code": exc.code,
                "error": exc.message,
            }
        except Exception:
            logger.exception("generation %s failed unexpectedly", self.message_id)
            outcome = {
                "status": Message.Status.INTERRUPTED if self.text else Message.Status.ERROR,
                "error_code": "internal",
                "error": "Something went wrong on the server while writing this answer.",
            }
        finally:
            listener.cancel()
            checkpointer.cancel()
            await self.layer.group_discard(self.control, channel)
        try:
            await self._finish(outcome)
        finally:
            if self.ticket is not None:
                used = (outcome.get("prompt_tokens") or 0) + (outcome.get("completion_tokens") or 0)
                await self.ticket.finish(tokens=used)

    async def _stream(self) -> dict[str, Any]:
        message, self.message = self.message, None
        context = await database_sync_to_async(_load_context)(self.message_id, message)
        self.citations, self.notice = context.citations, context.notice
        client = provider_client(context.model.provider)
        chunks = client.stream_chat(model=context.model.name, messages=context.history, options=context.options)
        loop = asyncio.get_running_loop()
        usage: dict[str, Any] = {}
        # Text that waits for its interval is sent by a timer if the upstream goes quiet first: the
        # chunks are read directly, not each through a task and asyncio.wait (~20 µs a chunk).
        timer: asyncio.TimerHandle | None = None
        flushes: set[asyncio.Task[None]] = set()

        def flush() -> None:
            nonlocal timer
            timer = None
            task = asyncio.ensure_future(self._send_delta())
            flushes.add(task)
            task.add_done_callback(flushes.discard)

        try:
            async for chunk in chunks:
                if chunk.text:
                    if self.first_token_at is None:
                        self.first_token_at = time.monotonic()
                    self.text += chunk.text
                    wait = 0.0 if self.last_sent_at is None else self.last_sent_at + _delta_interval() - loop.time()
                    if wait <= 0:
                        if timer is not None:
                            timer.cancel()
                            timer = None
                        await self._send_delta()
                    elif timer is None:
                        timer = loop.call_later(wait, flush)
                if chunk.done:
                    usage = {"prompt_tokens": chunk.prompt_tokens, "completion_tokens": chunk.completion_tokens}
                    break
        finally:
            if timer is not None:
                timer.cancel()
            await asyncio.gather(*flushes, return_exceptions=True)
            await chunks.aclose()
            await self._send_delta()
        return usage

    async def _send_delta(self) -> None:
        if self.announced is not None:
            await self.announced.wait()
        async with self.send_lock:
            if len(self.text) <= self.sent_length:
                return
            offset = self.sent_length
            piece = self.text[offset:]
            self.last_sent_at = asyncio.get_running_loop().time()
            try:
                await realtime.publish(
                    self.group, realtime.delta(message_id=self.message_id, text=piece, offset=offset)
                )
            except Exception:  # the layer is briefly away: the next delta resends from the same offset
                logger.warning("delta of generation %s not sent; it will be sent with the next", self.message_id,
                               exc_info=True)  # fmt: skip
                return
            self.sent_length = offset + len(piece)

    async def _listen(self, channel: str) -> None:
        """Stop and resync requests for this answer; survives a flaky channel layer."""
        while True:
            try:
                event = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("generation %s: receiving on its channel failed; retrying", self.message_id,
                               exc_info=True)  # fmt: skip
                await asyncio.sleep(0.5)
                continue
            kind = event.get("type")
            if kind == realtime.STOP and event.get("message") in (None, self.message_id):
                self.stop_requested = True
                self._stream_task.cancel()
            elif kind == realtime.SYNC and event.get("reply_to"):
                async with self.send_lock:
                    snapshot = realtime.delta(message_id=self.message_id, text=self.text[: self.sent_length], offset=0)
                    try:
                        await realtime.send_to(event["reply_to"], snapshot)
                    except Exception:
                        logger.warning("generation %s: resync reply failed", self.message_id, exc_info=True)

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(_checkpoint_interval())
            await database_sync_to_async(message_checkpoint)(message_id=self.message_id, content=self.text)

    async def _finish(self, outcome: dict[str, Any]) -> None:
        now = time.monotonic()
        if self.announced is not None:
            await self.announced.wait()

        def save() -> tuple[Message, list[realtime.ServerFrame]]:
            message = message_finish(
                message_id=self.message_id,
                content=self.text,
                status=outcome["status"],
                error_code=outcome.get("error_code", "") or ("sources_unavailable" if self.notice else ""),
                error=outcome.get("error", "") or self.notice,
                citations=self.citations,
                prompt_tokens=outcome.get("prompt_tokens"),
                completion_tokens=outcome.get("completion_tokens"),
                first_token_ms=round((self.first_token_at - self.started_at) * 1000) if self.first_token_at else None,
                latency_ms=round((now - self.started_at) * 1000),
            )
            done = realtime.message_done(message)
            frames: list[realtime.ServerFrame] = [done]
            if message.error:  # the error as the frame shows it: a blind answer's does not name its model
                frames.insert(0, realtime.error(message.error_code, done["error"], self.message_id))
            return message, frames

        message, frames = await database_sync_to_async(save)()
        await realtime.publish(self.group, *frames)
        await generation_observed(message=message)


def generation_start(
    *,
    message_id: int,
    conversation_uuid: Any,
    ticket: QuotaTicket | None = None,
    message: Message | None = None,
    announced: asyncio.Event | None = None,
) -> asyncio.Task[None]:
    """Start the answer for an assistant message in this process; it outlives the socket.

    `message`: the row, already loaded with its conversation and model's provider. `announced`:
    an event the caller sets once it has broadcast the answer's `message.created`; the answer's
    text waits for it.
    """
    generation = Generation(message_id, conversation_uuid, ticket, message=message, announced=announced)
    task = asyncio.create_task(generation.run(), name=f"generation-{message_id}")
    _RUNNING[message_id] = task
    task.add_done_callback(lambda _: _RUNNING.pop(message_id, None))
    return task
