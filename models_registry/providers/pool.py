"""Several hosts serving the same models behind one provider (scale out: Ollama on several GPUs).

Each request goes to the healthy host with the fewest requests in flight in this process;
ties rotate, so an idle pool is used round robin. A host that fails before the first token
(refused, timed out, 5xx) is marked down for PROVIDER_HOST_COOLDOWN seconds and the request
moves on to the next host. Once text has reached the caller an error is the caller's: trying
another host would repeat what the user has already read. When every host is marked down
they are all tried anyway, the one that went down first first, so a pool never refuses work
just because of old failures.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import TypeVar

from django.conf import settings

from models_registry.providers.base import ChatChunk, ChatMessage, ChatOptions, ChatProvider, ModelInfo, ProviderError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Errors for which another host may do better. Bad keys are the provider's, not a host's.
FAILOVER_CODES = frozenset(
    {"unreachable", "timeout", "upstream_error", "interrupted", "rate_limited", "model_not_found"}
)
# Errors that say the host itself is in trouble, so later requests avoid it for a while.
HOST_DOWN_CODES = frozenset({"unreachable", "timeout", "upstream_error"})

# Per process: when each host (by URL) may be tried again, and requests running on it now.
_down_until: dict[str, float] = {}
_in_flight: Counter[str] = Counter()
_turn = itertools.count()


def host_is_down(url: str) -> bool:
    return _down_until.get(url, 0.0) > time.monotonic()


def host_mark_down(url: str) -> None:
    _down_until[url] = time.monotonic() + settings.PROVIDER_HOST_COOLDOWN


def host_mark_up(url: str) -> None:
    _down_until.pop(url, None)


def hosts_reset() -> None:
    """Forget every host's state (tests; a fresh process starts like this)."""
    _down_until.clear()
    _in_flight.clear()


class HostPool(ChatProvider):
    """Looks like one provider; spreads requests over `hosts`, clients of the same kind."""

    def __init__(self, hosts: list[ChatProvider]) -> None:
        if not hosts:
            raise ValueError("a host pool needs at least one host")
        first = hosts[0]
        super().__init__(
            base_url=first.base_url, api_key=first.api_key, api_version=first.api_version, deployments=first.deployments
        )
        self.hosts = hosts

    def __repr__(self) -> str:
        return f"HostPool({[host.base_url for host in self.hosts]!r})"

    def hosts_in_order(self) -> list[ChatProvider]:
        """Healthy hosts first, least busy first (ties rotate); then the down ones, longest down first."""
        turn = next(_turn)
        count = len(self.hosts)
        rotated = [self.hosts[(turn + i) % count] for i in range(count)]
        up = sorted((h for h in rotated if not host_is_down(h.base_url)), key=lambda h: _in_flight[h.base_url])
        down = sorted((h for h in rotated if host_is_down(h.base_url)), key=lambda h: _down_until[h.base_url])
        return up + down

    def _failed(self, host: ChatProvider, exc: ProviderError, what: str) -> None:
        if exc.code in HOST_DOWN_CODES:
            host_mark_down(host.base_url)
            logger.warning(
                "host %s failed (%s) for %s; marked down for %gs, trying the next host",
                host.base_url, exc.code, what, settings.PROVIDER_HOST_COOLDOWN,
            )  # fmt: skip
        else:
            logger.info("host %s could not serve %s (%s); trying the next host", host.base_url, what, exc.code)

    @staticmethod
    def _all_failed(errors: list[ProviderError]) -> ProviderError:
        last = errors[-1]
        if len(errors) == 1:
            return last
        return ProviderError(
            f"All {len(errors)} hosts failed. Last: {last.message}",
            permanent=last.permanent,
            code=last.code,
            retry_after=last.retry_after,
        )

    async def stream_chat(
        self, *, model: str, messages: list[ChatMessage], options: ChatOptions
    ) -> AsyncGenerator[ChatChunk, None]:
        errors: list[ProviderError] = []
        for host in self.hosts_in_order():
            started = False
            _in_flight[host.base_url] += 1
            try:
                async with aclosing(host.stream_chat(model=model, messages=messages, options=options)) as chunks:
                    async for chunk in chunks:
                        if chunk.text and not started:
                            started = True
                            host_mark_up(host.base_url)
                        yield chunk
                return
            except ProviderError as exc:
                if started or exc.code not in FAILOVER_CODES:
                    raise
                self._failed(host, exc, f"a chat with {model}")
                errors.append(exc)
            finally:
                _in_flight[host.base_url] -= 1
        raise self._all_failed(errors)

    async def _first_that_answers(self, call: Callable[[ChatProvider], Awaitable[T]], what: str) -> T:
        errors: list[ProviderError] = []
        for host in self.hosts_in_order():
            _in_flight[host.base_url] += 1
            try:
                result = await call(host)
            except ProviderError as exc:
                if exc.code not in FAILOVER_CODES:
                    raise
                self._failed(host, exc, what)
                errors.append(exc)
            else:
                host_mark_up(host.base_url)
                return result
            finally:
                _in_flight[host.base_url] -= 1
        raise self._all_failed(errors)

    async def list_models(self) -> list[ModelInfo]:
        return await self._first_that_answers(lambda host: host.list_models(), "the model list")

    async def embed_batch(self, *, model: str, texts: list[str]) -> list[list[float]]:
        return await self._first_that_answers(
            lambda host: host.embed_batch(model=model, texts=texts), f"embeddings with {model}"
        )

    async def ping(self) -> None:
        """Ready when at least one host answers."""
        await self._first_that_answers(lambda host: host.ping(), "a readiness check")
