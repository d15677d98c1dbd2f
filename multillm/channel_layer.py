"""The Redis channel layer: channels_redis's pub/sub layer, with publishes that do not wait in line.

channels_redis holds one lock per Redis server for the whole round trip of every publish (the
lock that also guards subscribing), so a process sent one message per event-loop turn: at 200
streaming answers the deltas queued for tens of seconds behind it. Publishing needs no lock (the
client comes from a pool, and creating it has no await), so here each publish goes out at once
on a pooled connection, and a full pool (`max_connections`) waits for a free connection
instead of failing.

Its receiver also slept 100 ms at a time while the process was subscribed to nothing, so the
first messages after a quiet moment (a socket's first answer, on an idle server) arrived up to
100 ms late; here it wakes as soon as something is subscribed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels_redis import pubsub
from redis import asyncio as aioredis

logger = logging.getLogger(__name__)


class _Shard(pubsub.RedisSingleShardConnection):
    _redis: aioredis.Redis | None
    _pubsub: Any

    def __init__(self, host: Any, channel_layer: Any) -> None:
        super().__init__(host, channel_layer)
        self._subscribed = asyncio.Event()

    async def subscribe(self, channel: str) -> None:
        await super().subscribe(channel)
        self._subscribed.set()

    async def _do_receiving(self) -> None:
        while True:
            try:
                if self._pubsub is not None and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    self._receive_message(message)
                else:
                    self._subscribed.clear()
                    await self._subscribed.wait()
            except (asyncio.CancelledError, TimeoutError, GeneratorExit):
                raise
            except BaseException:
                logger.exception("Unexpected exception in the channel layer's receive task")
                await asyncio.sleep(1)

    async def publish(self, channel: str, message: bytes) -> None:
        await self._ensure_redis().publish(channel, message)

    def _ensure_redis(self) -> aioredis.Redis:
        if self._redis is None:
            options = dict(self.host)
            pool = aioredis.BlockingConnectionPool.from_url(options.pop("address"), **options)
            self._redis = aioredis.Redis(connection_pool=pool)
            self._pubsub = self._redis.pubsub()
        return self._redis


class _LoopLayer(pubsub.RedisPubSubLoopLayer):
    _shards: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [_Shard(shard.host, self) for shard in self._shards]


class RedisPubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    def _get_layer(self) -> _LoopLayer:
        loop = asyncio.get_running_loop()
        if loop not in self._layers:
            self._layers[loop] = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            pubsub._wrap_close(self, loop)
        return self._layers[loop]
