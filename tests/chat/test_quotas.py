"""Quota counters in the database (no Redis): the same rules as with Redis."""

from __future__ import annotations

import pytest

from chat.models import UserLimits
from chat.quotas import QuotaExceeded, quota_hold, quota_start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["redis", "database"])
def counters(request, settings) -> str:
    if request.param == "database":
        settings.REDIS_URL = ""
    return request.param


async def test_requests_per_minute(alice, counters) -> None:
    await UserLimits.objects.acreate(user=alice, requests_per_minute=2, concurrent_generations=0)
    for _ in range(2):
        await (await quota_start(user_id=alice.pk, prompt_chars=1)).finish(tokens=0)

    with pytest.raises(QuotaExceeded) as caught:
        await quota_start(user_id=alice.pk, prompt_chars=1)

    assert caught.value.code == "rate_limited" and 1 <= caught.value.retry_after <= 60


async def test_concurrent_generations_are_released_when_finished(alice, counters) -> None:
    await UserLimits.objects.acreate(user=alice, concurrent_generations=1, requests_per_minute=0)
    first = await quota_start(user_id=alice.pk, prompt_chars=1)

    with pytest.raises(QuotaExceeded, match="1 answer at once"):
        await quota_start(user_id=alice.pk, prompt_chars=1)
    await first.finish(tokens=10)
    await first.finish(tokens=10)  # finishing twice releases once

    second = await quota_start(user_id=alice.pk, prompt_chars=1)
    with pytest.raises(QuotaExceeded):
        await quota_start(user_id=alice.pk, prompt_chars=1)
    await second.finish(tokens=0)


async def test_tokens_per_day_and_defaults_from_settings(alice, bob, counters, settings) -> None:
    settings.QUOTA_TOKENS_PER_DAY = 100
    await UserLimits.objects.acreate(user=alice, tokens_per_day=0)  # 0: unlimited for alice
    await (await quota_start(user_id=bob.pk, prompt_chars=1)).finish(tokens=100)
    await (await quota_start(user_id=alice.pk, prompt_chars=1)).finish(tokens=10_000)

    with pytest.raises(QuotaExceeded) as caught:
        await quota_start(user_id=bob.pk, prompt_chars=1)

    assert caught.value.code == "token_quota_exceeded" and caught.value.retry_after > 0
    unlimited = await quota_start(user_id=alice.pk, prompt_chars=1)  # alice is not blocked
    await unlimited.finish(tokens=0)


class Unexpected(Exception):
    pass


async def test_a_hold_gives_its_tickets_back_when_the_block_fails(alice, counters) -> None:
    await UserLimits.objects.acreate(user=alice, concurrent_generations=2, requests_per_minute=0)

    with pytest.raises(Unexpected):
        async with quota_hold(user_id=alice.pk, count=2, prompt_chars=1):
            raise Unexpected("a bug in the middle of a send")

    async with quota_hold(user_id=alice.pk, count=2, prompt_chars=1) as hold:
        assert len(hold.tickets) == 2  # both slots were free again


async def test_a_hold_is_all_or_nothing_and_keeps_what_was_handed_over(alice, counters) -> None:
    await UserLimits.objects.acreate(user=alice, concurrent_generations=2, requests_per_minute=0)
    async with quota_hold(user_id=alice.pk, count=1, prompt_chars=1) as hold:
        [running] = hold.hand_over()  # an answer took it: the block's end must not release it

    with pytest.raises(QuotaExceeded, match="2 answers at once"):
        async with quota_hold(user_id=alice.pk, count=2, prompt_chars=1):
            pass  # one slot is free, two are asked for: none is kept
    await running.finish(tokens=0)
    async with quota_hold(user_id=alice.pk, count=2, prompt_chars=1) as hold:
        assert len(hold.tickets) == 2


async def test_limits_read_as_english(alice, counters) -> None:
    await UserLimits.objects.acreate(user=alice, requests_per_minute=1, concurrent_generations=0, max_prompt_chars=1)
    with pytest.raises(QuotaExceeded, match=r"The prompt has 2 characters; your limit is 1\."):
        await quota_start(user_id=alice.pk, prompt_chars=2)
    await (await quota_start(user_id=alice.pk, prompt_chars=1)).finish(tokens=0)
    with pytest.raises(QuotaExceeded, match=r"You may send 1 request a minute\."):
        await quota_start(user_id=alice.pk, prompt_chars=1)
