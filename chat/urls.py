from django.urls import path

from chat import views

app_name = "chat"
urlpatterns = [
    path("", views.home, name="home"),
    path("c/new/", views.conversation_new, name="conversation_new"),
    path("c/<uuid:conversation_uuid>/", views.conversation_detail, name="conversation_detail"),
    path("c/<uuid:conversation_uuid>/turns/", views.conversation_turns_view, name="conversation_turns"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("c/<uuid:conversation_uuid>/sources/", views.source_attach, name="source_attach"),
    path("sources/<uuid:source_uuid>/remove/", views.source_detach, name="source_detach"),
    path("settings/keys/", views.api_keys, name="api_keys"),
    path("settings/keys/<uuid:key_uuid>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
]
