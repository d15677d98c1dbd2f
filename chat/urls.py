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
    path("c/<uuid:conversation_uuid>/rename/", views.conversation_rename_view, name="conversation_rename"),
    path("c/<uuid:conversation_uuid>/pin/", views.conversation_pin_view, name="conversation_pin"),
    path("c/<uuid:conversation_uuid>/delete/", views.conversation_delete_view, name="conversation_delete"),
    path("c/<uuid:conversation_uuid>/settings/", views.conversation_settings_view, name="conversation_settings"),
    path("c/<uuid:conversation_uuid>/preset/", views.preset_apply_view, name="preset_apply"),
    path("c/<uuid:conversation_uuid>/export.<str:kind>", views.conversation_export_view, name="conversation_export"),
    path("c/settings/", views.conversation_settings_view, name="conversation_settings_new"),
    path("c/preset/", views.preset_apply_view, name="preset_apply_new"),
    path("c/import/", views.conversation_import_view, name="conversation_import"),
    path("conversations/", views.sidebar, name="sidebar"),
    path("presets/", views.preset_save_view, name="preset_save"),
    path("presets/delete/", views.preset_delete_view, name="preset_delete"),
    path("usage/", views.usage, name="usage"),
    path("usage/all/", views.usage_everyone, name="usage_everyone"),
    path("sources/<uuid:source_uuid>/remove/", views.source_detach, name="source_detach"),
    path("settings/keys/", views.api_keys, name="api_keys"),
    path("settings/keys/<uuid:key_uuid>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
]
