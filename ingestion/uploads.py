"""The upload size cap, enforced while a multipart body is parsed, before Django stores it.

`CappedUploadHandler` runs first among `FILE_UPLOAD_HANDLERS`. A body whose declared length is
over the cap is not read at all; a file whose bytes pass the cap as they stream stops the
parse there, so the handlers after it (memory, then a named temporary file) never hold more
than the cap, and the partial temporary file is closed and removed. Either way the request is
marked, and the view answers 413 with a message the page shows.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, QueryDict
from django.utils.datastructures import MultiValueDict

# Room for the multipart boundaries, part headers and the small form fields beside the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
REFUSED_ATTRIBUTE = "upload_too_large"


def upload_limit_bytes() -> int:
    return settings.FETCH_MAX_BYTES


def upload_too_large_message() -> str:
    return f"The file is larger than {upload_limit_bytes() / (1024 * 1024):g} MB, the most a source can be."


def upload_was_refused(request: HttpRequest) -> bool:
    return getattr(request, REFUSED_ATTRIBUTE, False)


class CappedUploadHandler(FileUploadHandler):
    def _refuse(self) -> None:
        setattr(self.request, REFUSED_ATTRIBUTE, True)

    def handle_raw_input(
        self, input_data: Any, META: dict[str, Any], content_length: int, boundary: Any, encoding: str | None = None
    ) -> tuple[QueryDict, MultiValueDict[str, Any]] | None:
        self.received = 0
        if content_length > upload_limit_bytes() + MULTIPART_OVERHEAD_BYTES:
            self._refuse()
            # Parsed as empty without reading a byte of the body.
            return QueryDict(encoding=encoding), MultiValueDict()
        return None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > upload_limit_bytes():
            self._refuse()
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
