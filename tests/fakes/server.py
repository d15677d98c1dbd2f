"""What the fake HTTP servers share: a threaded server on 127.0.0.1 that ignores clients hanging up."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is normal here (stop, cancel, timeout)."""


class FakeServer:
    """Serves `handler_class()` on 127.0.0.1; each request's handler reaches this object as `server_fake`."""

    thread_name = "fake-server"
    _server: ThreadingHTTPServer | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0) -> Self:
        handler = type("Handler", (self.handler_class(),), {"server_fake": self})
        self._server = QuietServer(("127.0.0.1", port), handler)
        threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
