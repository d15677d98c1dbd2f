"""Per-user limits for the chat and the API: requests per minute, tokens per day,
concurrent generations and prompt size.

Counters live in Redis when REDIS_URL is set (shared by every process), else in the
database (`QuotaCounter`). Windows are fixed: the current minute, the current UTC day.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from chat.models import QuotaCounter, UserLimits

logger = logging.getLogger(__name__)

# A generation that never released its slot (a crashed process) stops counting after this.
CONCURRENCY_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class Limits:
    """0 means unlimited."""

    requests_per_minute: int
    tokens_per_day: int
    concurrent_generations: int
    max_prompt_chars: int


class QuotaExceeded(Exception):
    def __init__(self, code: str, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def limits_for_user(user_id: int) -> Limits:
    row = UserLimits.objects.filter(user_id=user_id).first()

    def pick(field: str, default: int) -> int:
        value = getattr(row, field) if row is not None else None
        return default if value is None else value

    return Limits(
        requests_per_minute=pick("requests_per_minute", settings.QUOTA_REQUESTS_PER_MINUTE),
        tokens_per_day=pick("tokens_per_day", settings.QUOTA_TOKENS_PER_DAY),
        concurrent_generations=pick("concurrent_generations", settings.QUOTA_CONCURRENT_GENERATIONS),
        max_prompt_chars=pick("max_prompt_chars", settings.QUOTA_MAX_PROMPT_CHARS),
    )


def _windows(now: datetime) -> tuple[datetime, int, datetime, int]:
    minute = now.replace(second=0, microsecond=0)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    to_next_minute = 60 - now.second
    to_next_day = int((day + timedelta(days=1) - now).total_seconds()) + 1
    return minute, to_next_minute, day, to_next_day


class _RedisCounters:
    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _redis(self) -> Any:
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = redis.Redis.from_url(settings.REDIS_URL, max_connections=1000, socket_timeout=10)
        return self._clients[loop]

    def _key(self, user_id: int, kind: str, window: datetime | None = None) -> str:
        suffix = f":{int(window.timestamp())}" if window else ""
        return f"{settings.CHANNEL_LAYER_PREFIX}:quota:{user_id}:{kind}{suffix}"

    async def incr(self, user_id: int, kind: str, window: datetime | None, amount: int, ttl: int) -> int:
        key = self._key(user_id, kind, window)
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.incrby(key, amount)
            pipe.expire(key, ttl)
            value, _ = await pipe.execute()
        return int(value)

    async def get(self, user_id: int, kind: str, window: datetime | None) -> int:
        return int(await self._redis().get(self._key(user_id, kind, window)) or 0)

    async def take(self, user_id: int, minute: datetime, day: datetime) -> tuple[int, int, int]:
        """Count a request and a running generation, and read today's tokens, in one round trip."""
        requests, tokens, running = (self._key(user_id, "requests", minute), self._key(user_id, "tokens", day),
                                     self._key(user_id, "concurrent"))  # fmt: skip
        async with self._redis().pipeline(transaction=True) as pipe:
            pipe.incr(requests)
            pipe.expire(requests, 120)
            pipe.get(tokens)
            pipe.incr(running)
            pipe.expire(running, int(CONCURRENCY_TTL.total_seconds()))
            counted, _, used, slots, _ = await pipe.execute()
        return int(counted), int(used or 0), int(slots)


class _DatabaseCounters:
    _EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

    def _incr(self, user_id: int, kind: str, window: datetime | None, amount: int, ttl: int) -> int:
        window = window or self._EPOCH
        with transaction.atomic():
            updated = QuotaCounter.objects.filter(user_id=user_id, kind=kind, window_start=window).update(
                value=F("value") + amount
            )
            if not updated:
                try:
                    with transaction.atomic():
                        QuotaCounter.objects.create(user_id=user_id, kind=kind, window_start=window, value=amount)
                except IntegrityError:  # created meanwhile by another request
                    QuotaCounter.objects.filter(user_id=user_id, kind=kind, window_start=window).update(
                        value=F("value") + amount
                    )
            return QuotaCounter.objects.get(user_id=user_id, kind=kind, window_start=window).value

    def _get(self, user_id: int, kind: str, window: datetime | None) -> int:
        row = QuotaCounter.objects.filter(user_id=user_id, kind=kind, window_start=window or self._EPOCH).first()
        return row.value if row else 0

    async def incr(self, user_id: int, kind: str, window: datetime | None, amount: int, ttl: int) -> int:
        return await database_sync_to_async(self._incr)(user_id, kind, window, amount, ttl)

    def _take(self, user_id: int, minute: datetime, day: datetime) -> tuple[int, int, int]:
        with transaction.atomic():
            return (self._incr(user_id, "requests", minute, 1, 120), self._get(user_id, "tokens", day),
                    self._incr(user_id, "concurrent", None, 1, 0))  # fmt: skip

    async def take(self, user_id: int, minute: datetime, day: datetime) -> tuple[int, int, int]:
        """Count a request and a running generation, and read today's tokens, in one transaction."""
        return await database_sync_to_async(self._take)(user_id, minute, day)

    async def get(self, user_id: int, kind: str, window: datetime | None) -> int:
        return await database_sync_to_async(self._get)(user_id, kind, window)


_redis_counters = _RedisCounters()
_database_counters = _DatabaseCounters()


def _counters() -> _RedisCounters | _DatabaseCounters:
    return _redis_counters if settings.REDIS_URL else _database_counters


@dataclass
class QuotaTicket:
    """A granted generation: `finish` it with the tokens it used (releases its slot)."""

    user_id: int
    holds_slot: bool
    finished: bool = False

    async def finish(self, *, tokens: int) -> None:
        if self.finished:
            return
        self.finished = True
        counters = _counters()
        now = datetime.now(UTC)
        _, _, day, to_next_day = _windows(now)
        if tokens:
            await counters.incr(self.user_id, "tokens", day, tokens, to_next_day + 3600)
        if self.holds_slot:
            await counters.incr(self.user_id, "concurrent", None, -1, int(CONCURRENCY_TTL.total_seconds()))


# A user's limits are read at most this often per process: an admin's change applies within it.
LIMITS_CACHE_SECONDS = 30.0
_limits_cache: dict[int, tuple[float, Limits]] = {}


async def _limits(user_id: int) -> Limits:
    cached = _limits_cache.get(user_id)
    now = time.monotonic()
    if cached is not None and now - cached[0] < LIMITS_CACHE_SECONDS:
        return cached[1]
    limits = await database_sync_to_async(limits_for_user)(user_id)
    _limits_cache[user_id] = (now, limits)
    return limits


async def quota_start(*, user_id: int, prompt_chars: int) -> QuotaTicket:
    """Check every limit for a new generation and take a concurrency slot; raise QuotaExceeded.

    The concurrency slot is always counted (and released by `finish`), so a limit that an
    admin lowers meanwhile sees the answers already running.
    """
    limits = await _limits(user_id)
    counters = _counters()
    now = datetime.now(UTC)
    minute, to_next_minute, day, to_next_day = _windows(now)
    if limits.max_prompt_chars and prompt_chars > limits.max_prompt_chars:
        raise QuotaExceeded(
            "prompt_too_large",
            f"The prompt has {_count(prompt_chars, 'character')}; your limit is {limits.max_prompt_chars:,}.",
        )
    if not (limits.requests_per_minute or limits.tokens_per_day or limits.concurrent_generations):
        return QuotaTicket(user_id=user_id, holds_slot=False)  # nothing to count
    count, used, running = await counters.take(user_id, minute, day)
    release = int(CONCURRENCY_TTL.total_seconds())
    exceeded: QuotaExceeded | None = None
    if limits.requests_per_minute and count > limits.requests_per_minute:
        exceeded = QuotaExceeded(
            "rate_limited",
            f"You may send {_count(limits.requests_per_minute, 'request')} a minute. Try again in {to_next_minute} s.",
            retry_after=to_next_minute,
        )
    elif limits.tokens_per_day and used >= limits.tokens_per_day:
        exceeded = QuotaExceeded(
            "token_quota_exceeded",
            f"You have used your {_count(limits.tokens_per_day, 'token')} for today. The quota resets at 00:00 UTC.",
            retry_after=to_next_day,
        )
    elif limits.concurrent_generations and running > limits.concurrent_generations:
        exceeded = QuotaExceeded(
            "too_many_generations",
            f"You may run {_count(limits.concurrent_generations, 'answer')} at once. Wait for one to finish.",
            retry_after=1,
        )
    if exceeded is not None:
        await counters.incr(user_id, "concurrent", None, -1, release)
        raise exceeded
    holds_slot = True
    return QuotaTicket(user_id=user_id, holds_slot=holds_slot)


@dataclass
class QuotaHold:
    """Tickets held for a turn's answers. Those still held when the `quota_hold` block ends
    are given back; `hand_over` passes them to whoever finishes them (the generations)."""

    tickets: list[QuotaTicket] = field(default_factory=list)

    def hand_over(self) -> list[QuotaTicket]:
        tickets, self.tickets = self.tickets, []
        return tickets


@asynccontextmanager
async def quota_hold(*, user_id: int, count: int = 1, prompt_chars: int) -> AsyncIterator[QuotaHold]:
    """`count` tickets, all or none (QuotaExceeded, with none held), given back on every way
    out of the block (an error, a refusal, a cancellation) unless handed over within it."""
    hold = QuotaHold()
    try:
        for _ in range(count):
            hold.tickets.append(await quota_start(user_id=user_id, prompt_chars=prompt_chars))
        yield hold
    finally:
        for ticket in hold.hand_over():
            try:
                await ticket.finish(tokens=0)
            except Exception:  # the counters' store is away: the slot expires with CONCURRENCY_TTL
                logger.warning("could not give back a quota ticket of user %s", user_id, exc_info=True)
