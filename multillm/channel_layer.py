"""The Redis channel layer: channels_redis's pub/sub layer, with publishes that do not wait in line.

channels_redis holds one lock per Redis server for the whole round trip of every publish (the
lock that also guards subscribing), so a process sent one message per event-loop turn: at 200
streaming answers the deltas queued for tens of seconds behind it. Publishing needs no lock (the
client comes from a pool, and creating it has no await), so here each publish goes out at once
on a pooled connection, and a full pool (`max_connections`) waits for a free connection
instead of failing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels_redis import pubsub
from redis import asyncio as aioredis


class _Shard(pubsub.RedisSingleShardConnection):
    _redis: aioredis.Redis | None

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
