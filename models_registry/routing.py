from django.urls import path

from models_registry.consumers import ModelPullConsumer

websocket_urlpatterns = [
    path("ws/admin/pull/", ModelPullConsumer.as_asgi()),
]
