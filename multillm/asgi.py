"""ASGI entry point: HTTP through Django, websockets through Channels.

Websockets are only accepted from an allowed host's origin and carry the Django session,
so the consumer sees the logged-in user. HTTP bodies over REQUEST_MAX_BYTES are refused
before Django spools them.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multillm.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from chat.routing import websocket_urlpatterns as chat_routes
from models_registry.routing import websocket_urlpatterns as registry_routes
from multillm.request_limits import install as install_request_limits

install_request_limits()  # request bodies over the upload cap are dropped inside Daphne
from multillm.body_limit import RequestBodyLimit

application = ProtocolTypeRouter(
    {
        "http": RequestBodyLimit(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([*chat_routes, *registry_routes]))),
    }
)
