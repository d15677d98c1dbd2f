"""Request bodies and uploaded file names, against the real Daphne (`app_server`).

The size caps hold on the server, whatever the client declares: a body over
REQUEST_MAX_BYTES is refused before Django reads it (with or without Content-Length),
JSON and form bodies over DATA_UPLOAD_MAX_MEMORY_SIZE get a clear 413/400, and an
uploaded file's name never chooses where its bytes are kept.
"""

from __future__ import annotations

import http.client
import io
import json
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

from chat.api_keys import api_key_create
from chat.models import Conversation, Message
from ingestion.models import Source
from ingestion.services import upload_path
from tests.conftest import make_conversation, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024


def post(base_url: str, path: str, body: bytes | list[bytes], headers: dict[str, str]) -> tuple[int, dict]:
    """POST `body` to the server; a list is sent chunked, without Content-Length."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        if isinstance(body, list):
            connection.putrequest("POST", path)
            for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
                connection.putheader(name, value)
            connection.endheaders()
            for piece in body:
                connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            connection.send(b"0\r\n\r\n")
        else:
            connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        try:
            return response.status, json.loads(payload)
        except ValueError:
            return response.status, {"raw": payload[:500].decode("utf-8", "replace")}
    finally:
        connection.close()


def openai_error(body: dict) -> dict:
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


@pytest.fixture
def key(alice, ollama_provider) -> str:
    return api_key_create(user=alice, name="tests")[1]


def test_api_json_over_the_body_limit_gets_an_openai_413(app_server, key) -> None:
    limit = 4 * MB  # DATA_UPLOAD_MAX_MEMORY_SIZE's default
    content = "x" * (limit + 1000)
    body = json.dumps({"model": "ollama/llama3.2:1b", "messages": [{"role": "user", "content": content}]}).encode()

    status, answer = post(app_server, "/api/v1/chat/completions", body,
                          {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip

    assert status == 413
    error = openai_error(answer)
    assert error["code"] == "body_too_large" and "4 MB" in error["message"]
    assert not Message.objects.exists()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_api_body_over_the_request_limit_is_refused_before_django_reads_it(app_server, key, chunked) -> None:
    piece = b"x" * MB
    pieces = [piece] * 27  # REQUEST_MAX_BYTES defaults to FETCH_MAX_BYTES (25 MB) + 1 MB
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    status, answer = post(app_server, "/api/v1/chat/completions", pieces if chunked else b"".join(pieces), headers)

    assert status == 413
    error = openai_error(answer)
    assert error["code"] == "body_too_large" and "26 MB" in error["message"]


def test_an_upload_over_the_request_limit_is_refused_with_the_pages_error_shape(app_server, alice) -> None:
    conversation = make_conversation(alice)
    boundary = "harden-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\n".encode()
        + b"a" * (27 * MB)
        + f"\r\n--{boundary}--\r\n".encode()
    )

    status, answer = post(app_server, f"/c/{conversation.uuid}/sources/", body, {
        "Cookie": f"sessionid={session_cookie(alice)}", "Content-Type": f"multipart/form-data; boundary={boundary}",
    })  # fmt: skip

    assert status == 413
    assert answer["error"]["code"] == "too_large" and "MB" in answer["error"]["detail"]
    assert not Source.objects.exists()


def test_a_form_field_over_the_data_limit_is_a_400_not_a_crash(alice) -> None:
    conversation = make_conversation(alice)
    client = Client()
    client.force_login(alice)

    response = client.post(f"/c/{conversation.uuid}/sources/", {"url": "https://example.com/" + "a" * (5 * MB)})

    assert response.status_code == 400
    assert not Source.objects.exists()


def multipart(file_name: str, content: bytes, content_type: str = "text/plain") -> tuple[bytes, str]:
    boundary = "name-test-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n")  # fmt: skip
    return head.encode("utf-8", "surrogateescape") + content + f"\r\n--{boundary}--\r\n".encode(), boundary


def files_under(directory: Path) -> set[Path]:
    return {path for path in directory.rglob("*") if path.is_file()}


@pytest.mark.parametrize(
    "file_name",
    [
        "../../../../tmp/escaped.txt",
        "/etc/cron.d/escaped.txt",
        "..\\..\\windows\\escaped.txt",
        "C:\\Users\\escaped.txt",
        "notes\x00.txt",
        "....//....//escaped.txt",
        "%2e%2e%2fescaped.txt",
        ".hidden.txt",
        "evil\u202etxt.md",
    ],
)
def test_uploaded_file_names_never_choose_where_the_bytes_go(alice, settings, file_name) -> None:
    conversation = make_conversation(alice)
    client = Client()
    client.force_login(alice)
    var_dir = Path(settings.VAR_DIR)
    before = files_under(var_dir)
    body, boundary = multipart(file_name, b"plain words about budgets\n")

    response = client.post(
        f"/c/{conversation.uuid}/sources/", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )

    assert response.status_code == 201, response.content
    source = Source.objects.get()
    assert files_under(var_dir) - before == {upload_path(source)}
    assert upload_path(source).parent == var_dir / "uploads" and upload_path(source).name == source.uuid.hex
    name = source.file_name
    assert name and not any(c in name for c in "/\\\x00\u202e") and not name.startswith("."), name
    assert not Path("/tmp/escaped.txt").exists()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../escaped-from-zip.txt", "x" * 1000)
        archive.writestr("inner.txt", "hello")
    return buffer.getvalue()


@pytest.mark.parametrize("file_name", ["archive.zip", "notes.txt", "report.pdf", "table.csv"])
def test_archives_are_refused_not_extracted(alice, file_name) -> None:
    conversation = make_conversation(alice)
    client = Client()
    client.force_login(alice)
    var_dir = Path(settings.VAR_DIR)
    before = files_under(var_dir)
    body, boundary = multipart(file_name, zip_bytes(), "application/zip")

    response = client.post(
        f"/c/{conversation.uuid}/sources/", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )

    assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported_type"
    assert not Source.objects.exists() and Conversation.objects.count() == 1
    assert files_under(var_dir) == before
    assert not list(var_dir.rglob("*escaped-from-zip*")) and not list(var_dir.rglob("inner.txt"))
