"""ASGI entry point: HTTP through Django, websockets through Channels.

Websockets are only accepted from an allowed host's origin and carry the Django session,
so the consumer sees the logged-in user. HTTP bodies over REQUEST_MAX_BYTES are refused
before Django spools them.
"""

import os
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multillm.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.db import aclose_old_connections
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from chat.routing import websocket_urlpatterns as chat_routes
from models_registry.routing import websocket_urlpatterns as registry_routes
from multillm.request_limits import install as install_request_limits

install_request_limits()  # request bodies over the upload cap are dropped inside Daphne
from multillm.body_limit import RequestBodyLimit


class ThreadPerConnection:
    """Runs a websocket connection's synchronous database calls on a thread of its own.

    `database_sync_to_async` is thread-sensitive: outside such a context every socket's (and
    every answer's) database work waited in line for the one thread all of them shared, so 200
    sockets sending at once took seconds to get their first tokens. Django gives every HTTP
    request the same kind of context. Answers started from the socket keep using its thread,
    and a thread of their own once it has closed.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        async with ThreadSensitiveContext():
            try:
                return await self.app(scope, receive, send)
            finally:
                # Hand the thread's database connection back to the pool before the thread goes:
                # one left behind is lost to the pool for good.
                await aclose_old_connections()


application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimit(django_asgi_app),
        "websocket": ThreadPerConnection(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([*chat_routes, *registry_routes])))
        ),
    }
)
