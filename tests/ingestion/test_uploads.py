"""Uploads: the size cap holds while the body is parsed (413, nothing kept on disk), and a file's
name never decides where its bytes go."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIRequest
from django.test import Client, RequestFactory
from django.test.client import encode_multipart

from chat import views
from chat.services import conversation_source_attach_file
from ingestion.models import Source
from ingestion.services import SourceError, upload_path
from ingestion.uploads import MULTIPART_OVERHEAD_BYTES
from tests.conftest import make_conversation

pytestmark = pytest.mark.django_db

BOUNDARY = "BoUnDaRyxyz"


class CountingStream(io.BytesIO):
    """A request body that records how many bytes the server read from it."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.bytes_read += len(data)
        return data


def upload_request(
    user, conversation, body_bytes: bytes, name: str = "notes.txt"
) -> tuple[WSGIRequest, CountingStream]:
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile(name, body_bytes, content_type="text/plain")})
    environ = (
        RequestFactory()
        .post(f"/c/{conversation.uuid}/sources/", body, content_type=f"multipart/form-data; boundary={BOUNDARY}")
        .environ
    )
    stream = CountingStream(body)
    environ["wsgi.input"] = stream
    request = WSGIRequest(environ)
    request.user = user
    return request, stream


@pytest.fixture
def upload_dirs(settings, tmp_path: Path) -> tuple[Path, Path]:
    """Django's temporary upload directory and our VAR_DIR, both empty; files always go to disk."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "django-tmp")
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    settings.VAR_DIR = tmp_path / "var"
    (tmp_path / "django-tmp").mkdir()
    (tmp_path / "var").mkdir()
    return tmp_path / "django-tmp", tmp_path / "var"


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def test_upload_declared_over_the_cap_is_refused_with_413_before_its_body_is_read(alice, settings, upload_dirs) -> None:
    settings.FETCH_MAX_BYTES = 1000
    request, stream = upload_request(alice, make_conversation(alice), b"x" * (MULTIPART_OVERHEAD_BYTES + 5000))

    response = views.source_attach(request, conversation_uuid=request.path.split("/")[2])

    assert response.status_code == 413
    error = json.loads(response.content)["error"]
    assert error["code"] == "too_large" and "larger than" in error["detail"] and "MB" in error["detail"]
    assert stream.bytes_read == 0
    assert not Source.objects.exists()
    assert files_under(upload_dirs[0]) == files_under(upload_dirs[1]) == []


def test_upload_that_passes_the_cap_while_streaming_is_cut_there_and_nothing_stays_on_disk(
    alice, settings, upload_dirs
) -> None:
    settings.FETCH_MAX_BYTES = 100_000  # the declared length (160 kB) is within cap + multipart overhead
    body = b"y" * 160_000
    request, stream = upload_request(alice, make_conversation(alice), body)

    response = views.source_attach(request, conversation_uuid=request.path.split("/")[2])

    assert response.status_code == 413 and json.loads(response.content)["error"]["code"] == "too_large"
    assert stream.bytes_read < len(body), "parsing stopped at the cap, not at the end of the body"
    assert not Source.objects.exists()
    assert files_under(upload_dirs[0]) == [], "Django's temporary upload file was removed"
    assert files_under(upload_dirs[1]) == []


def test_oversized_upload_through_the_middleware_gets_413_not_a_csrf_failure(alice, settings, upload_dirs) -> None:
    settings.FETCH_MAX_BYTES = 1000
    conversation = make_conversation(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get(conversation.get_absolute_url())  # sets the csrftoken cookie, as the page does
    token = client.cookies["csrftoken"].value

    response = client.post(
        f"/c/{conversation.uuid}/sources/",
        {"file": SimpleUploadedFile("big.csv", b"a,b\n" * 40_000)},
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 413, response.content[:300]
    assert response.json()["error"]["detail"].startswith("The file is larger than")
    assert files_under(upload_dirs[0]) == files_under(upload_dirs[1]) == []


def test_upload_within_the_cap_is_accepted(alice, settings, upload_dirs) -> None:
    settings.FETCH_MAX_BYTES = 100_000
    request, _ = upload_request(alice, make_conversation(alice), b"Plain notes about pumps.\n" * 1000)

    response = views.source_attach(request, conversation_uuid=request.path.split("/")[2])

    assert response.status_code == 201
    source = Source.objects.get()
    assert files_under(upload_dirs[1]) == [upload_path(source)]


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../../../tmp/escape.txt", "escape.txt"),
        ("/etc/cron.d/escape.csv", "escape.csv"),
        ("..\\..\\windows\\escape.md", "escape.md"),
        ("nul\x00byte.txt", "nulbyte.txt"),
        ("../\x00../escape.html", "escape.html"),
    ],
)
def test_file_names_never_choose_where_the_bytes_are_stored(alice, upload_dirs, tmp_path, name, shown) -> None:
    before = files_under(tmp_path)

    source = conversation_source_attach_file(
        owner=alice, conversation=make_conversation(alice), upload=SimpleUploadedFile(name, b"Some notes.\n")
    )

    assert source.file_name == shown
    stored = upload_path(source)
    assert stored == upload_dirs[1] / "uploads" / source.uuid.hex
    assert files_under(tmp_path) == sorted([*before, stored])
    assert stored.read_bytes() == b"Some notes.\n"


@pytest.mark.parametrize("name", ["\x00", ".\x00.", "\x01\x02"])  # Django itself refuses "..", "/"
def test_file_names_with_nothing_left_are_refused(alice, upload_dirs, name) -> None:
    with pytest.raises(SourceError) as caught:
        conversation_source_attach_file(
            owner=alice, conversation=make_conversation(alice), upload=SimpleUploadedFile(name, b"x")
        )

    assert caught.value.code == "unsupported_type"
    assert files_under(upload_dirs[1]) == []
