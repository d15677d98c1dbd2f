"""Schemathesis against `/api/v1/openapi.json` on the real Daphne, with a valid key: random and
schema-violating requests to every operation never get a 500, and every error is OpenAI's
error object. Bounded by a fixed number of examples per operation (about a minute in all).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode

from chat.api_keys import api_key_create
from chat.models import UserLimits

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api_key(alice, ollama_provider, fake_ollama) -> str:
    # Fuzzing sends far more requests than a person: lift the user's per-minute limit so
    # the answers are about the requests, not about the quota.
    UserLimits.objects.create(user=alice, requests_per_minute=100_000, concurrent_generations=100)
    return api_key_create(user=alice, name="fuzz")[1]


FUZZ = hypothesis_settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_api_never_fails_with_a_server_error(app_server, api_key, mode) -> None:
    # The Python API rather than schemathesis' pytest plugin (its lazy loader does not run on pytest 9).
    schema = schemathesis.openapi.from_url(f"{app_server}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"GET /models", "POST /chat/completions", "POST /embeddings"}
    seen: dict[str, set[int]] = {}

    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case) -> None:
            response = case.call(base_url=f"{app_server}/api/v1", headers={"Authorization": f"Bearer {api_key}"},
                                 timeout=20)  # fmt: skip
            seen.setdefault(case.operation.label, set()).add(response.status_code)
            assert response.status_code != 500, f"500 for: {case.as_curl_command()}"
            assert response.status_code in {200, 400, 401, 403, 404, 405, 413, 429, 502, 504}, response.status_code
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["message"] and error["code"], error

        call()

    assert all(seen.get(op.label) for op in operations), seen
