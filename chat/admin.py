from django.contrib import admin

from chat.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["role", "model_label", "status", "content", "prompt_tokens", "completion_tokens", "latency_ms"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "updated_at"]
    list_filter = ["owner"]
    search_fields = ["title"]
    readonly_fields = ["uuid", "created_at", "updated_at"]
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
    readonly_fields = ["created_at", "updated_at"]
