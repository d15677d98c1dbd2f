"""The Redis channel layer (pub/sub, multillm.channel_layer) under the load of many answers."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis
from channels.layers import get_channel_layer
from django.conf import settings

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the README's test command sets it)")


async def test_many_concurrent_group_sends_all_arrive_in_each_senders_order() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("burst", channel)
    senders, each = 50, 20

    async def send_all(sender: int) -> None:
        for index in range(each):
            await layer.group_send("burst", {"type": "chat.event", "sender": sender, "index": index})

    await asyncio.gather(*(send_all(sender) for sender in range(senders)))
    received = [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(senders * each)]

    for sender in range(senders):
        assert [m["index"] for m in received if m["sender"] == sender] == list(range(each))
    await layer.group_discard("burst", channel)


async def test_a_cancelled_receive_ends_at_once_and_its_channel_hears_nothing_more() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.05)

    waiting.cancel()
    done, _ = await asyncio.wait({waiting}, timeout=1)

    assert done, "a cancelled receive must not hang (tests and shutdown wait for it)"
    client = redis.from_url(settings.REDIS_URL)
    for _ in range(20):  # Redis processes the unsubscribe a moment later
        [(_, subscribers)] = await client.pubsub_numsub(channel)
        if subscribers == 0:
            break
        await asyncio.sleep(0.05)
    await client.aclose()
    assert subscribers == 0, "the cancelled receive's channel must be unsubscribed"
