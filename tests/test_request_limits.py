"""Request bodies over the upload cap are dropped inside the real Daphne server and answered 413."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from ingestion.uploads import MULTIPART_OVERHEAD_BYTES

pytestmark = pytest.mark.django_db(transaction=True)  # the served app uses the test database

# REQUEST_MAX_BYTES of the served app: FETCH_MAX_BYTES (25 MB) plus 1 MB, which is more than
# the multipart framing of a file at the cap (that file is refused by the upload handler).
CAP = 26 * 1024 * 1024
assert CAP > 25 * 1024 * 1024 + MULTIPART_OVERHEAD_BYTES
PIECE = b"x" * (1024 * 1024)


def post(base_url: str, body: bytes | Iterator[bytes], headers: dict[str, str]) -> tuple[int, bytes]:
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
    try:
        connection.request("POST", f"/c/{uuid.uuid4()}/sources/", body=body, headers=headers,
                           encode_chunked=not isinstance(body, bytes))  # fmt: skip
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def pieces(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = PIECE[: min(len(PIECE), total - sent)]
        sent += len(piece)
        yield piece


def test_a_declared_body_over_the_cap_gets_413_with_the_reason(app_server: str) -> None:
    status, body = post(app_server, b"x" * (CAP + 1), {"Content-Type": "multipart/form-data; boundary=b"})

    assert status == 413
    assert json.loads(body) == {
        "error": {"code": "too_large", "detail": "The file is larger than 25 MB, the most a source can be."}
    }


def test_a_chunked_body_passing_the_cap_gets_413(app_server: str) -> None:
    status, body = post(app_server, pieces(CAP + 1), {"Content-Type": "multipart/form-data; boundary=b"})

    assert status == 413 and json.loads(body)["error"]["code"] == "too_large"


def test_a_body_within_the_cap_reaches_the_app(app_server: str) -> None:
    status, _ = post(app_server, b"x" * 1000, {"Content-Type": "multipart/form-data; boundary=b"})

    assert status != 413  # the app answers (here: not logged in)
