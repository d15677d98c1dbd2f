from django.contrib import admin
from django.http import HttpRequest

from chat.models import ApiKey, Conversation, Message, Preset, UserLimits, Vote


class MessageInline(admin.TabularInline):
    model = Message
    fields = readonly_fields = (
        "role",
        "model_label",
        "status",
        "content",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
    )
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "updated_at"]
    list_filter = ["owner"]
    search_fields = ["title"]
    # The composer's choice of models is the app's state, not an admin's to type as JSON.
    readonly_fields = ["uuid", "selected_models", "created_at", "updated_at"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "conversation",
        "role",
        "model_label",
        "status",
        "completion_tokens",
        "latency_ms",
        "created_at",
    ]
    list_filter = ["role", "status"]
    # Citations record what the model was given: shown, never rewritten.
    readonly_fields = ["citations", "created_at", "updated_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request: object) -> bool:
        return False  # users make their own keys (shown once); admins use `manage.py create_api_key`


@admin.register(UserLimits)
class UserLimitsAdmin(admin.ModelAdmin):
    list_display = ["user", "requests_per_minute", "tokens_per_day", "concurrent_generations", "max_prompt_chars"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin):
    """Presets marked shared are offered to every user in the chat's settings panel."""

    list_display = ["name", "owner", "shared", "temperature", "max_tokens", "updated_at"]
    list_filter = ["shared"]
    search_fields = ["name", "owner__username", "system_prompt"]
    autocomplete_fields = ["owner"]
    readonly_fields = ["uuid", "created_at", "updated_at"]


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    """Votes feed the leaderboard; admins may delete one (a test vote, say) but not rewrite it."""

    list_display = ["created_at", "owner", "winner_model", "contenders"]
    list_filter = ["winner_model"]
    readonly_fields = ["owner", "prompt", "winner", "contenders", "winner_model", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
