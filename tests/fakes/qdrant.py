"""A fake Qdrant server's readiness endpoint on 127.0.0.1, for the readiness checks and the entry points."""

from __future__ import annotations

from tests.fakes.server import FakeHandler, FakeServer


class FakeQdrant(FakeServer):
    """Qdrant's readiness endpoint: `GET /readyz` answers 200 "all shards are ready" (or `status`)."""

    thread_name = "fake-qdrant"

    def __init__(self) -> None:
        self.status = 200
        self.api_keys: list[str | None] = []

    def handler_class(self) -> type[FakeHandler]:
        class Handler(FakeHandler):
            server_fake: FakeQdrant

            def do_GET(self) -> None:
                self.server_fake.api_keys.append(self.headers.get("api-key"))
                body = b"all shards are ready" if self.server_fake.status == 200 else b"not ready"
                self.send_response(self.server_fake.status if self.path == "/readyz" else 404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
