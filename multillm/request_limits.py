"""A cap on request bodies inside Daphne, before anything is stored.

Twisted, under Daphne, keeps a request's whole body (in memory, or past 100 kB in a temporary
file) and even parses multipart bodies itself before the application sees a byte. A body
larger than an upload may be (FETCH_MAX_BYTES plus room for the multipart framing) is
therefore counted as it arrives and thrown away: a declared length over the cap keeps nothing
from the start, a body without one stops being kept when it passes the cap. The client still
gets to finish sending (closing on it mid-upload makes browsers report a network error instead
of the answer), then gets 413 with the same JSON error the attach endpoint gives, and the
application is never called. Django's upload handler (ingestion/uploads.py) applies the exact
per-file cap to what gets through.

`install()` runs when `multillm.asgi` is imported, which Daphne does before it starts serving.
"""

from __future__ import annotations

import io
import json
import logging
from typing import IO, Any

import daphne.server
from daphne.http_protocol import HTTPFactory, WebRequest
from django.conf import settings

from ingestion.uploads import MULTIPART_OVERHEAD_BYTES, upload_limit_bytes, upload_too_large_message
from multillm.body_limit import too_large_body

logger = logging.getLogger(__name__)


def request_body_limit() -> int:
    """REQUEST_MAX_BYTES (by default the upload cap plus 1 MB), and never less than an upload
    at the cap with its multipart framing: a file just over the cap is refused by the upload
    handler, which names the file's limit."""
    return max(settings.REQUEST_MAX_BYTES, upload_limit_bytes() + MULTIPART_OVERHEAD_BYTES)


class CappedWebRequest(WebRequest):
    content: IO[bytes]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Django parses the body; Twisted's own multipart parse would read it all into memory first.
        self._parsePOSTFormSubmission = False
        self.body_refused = False
        self.body_received = 0

    def gotLength(self, length: int | None) -> None:
        self.body_refused = length is not None and length > request_body_limit()
        super().gotLength(0 if self.body_refused else length)

    def handleContentChunk(self, data: bytes) -> None:
        self.body_received += len(data)
        if not self.body_refused and self.body_received > request_body_limit():
            self.body_refused = True
            self.content.close()  # a temporary file is removed as it closes
            self.content = io.BytesIO()
        if not self.body_refused:
            super().handleContentChunk(data)

    def process(self) -> Any:
        if not self.body_refused:
            return super().process()
        logger.info("refused a request body of %s bytes (more than %s)", self.body_received, request_body_limit())
        path = self.path.decode("latin-1") if isinstance(self.path, bytes) else str(self.path)
        if path.startswith("/api/"):  # API clients expect OpenAI's error object
            body = too_large_body(path, request_body_limit())
        else:
            body = json.dumps({"error": {"code": "too_large", "detail": upload_too_large_message()}}).encode()
        self.setResponseCode(413, b"Content Too Large")
        self.setHeader(b"Content-Type", b"application/json")
        self.setHeader(b"Content-Length", str(len(body)).encode())
        self.setHeader(b"Connection", b"close")
        self.write(body)
        self.finish()
        return None


class CappedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = CappedWebRequest
        return protocol


def install() -> None:
    """Make Daphne's server build capped requests (it looks HTTPFactory up when it starts)."""
    daphne.server.HTTPFactory = CappedHTTPFactory
