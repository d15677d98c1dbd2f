"""Quota counters in the database (no Redis): the same rules as with Redis."""

from __future__ import annotations

import pytest

from chat.models import UserLimits
from chat.quotas import QuotaExceeded, quota_start

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

    with pytest.raises(QuotaExceeded, match="1 answers at once"):
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
