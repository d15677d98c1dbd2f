from django.contrib import admin

from models_registry.models import LLMModel, Provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "base_url", "updated_at"]


@admin.register(LLMModel)
class LLMModelAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "display_name", "enabled", "available", "parameter_size", "last_seen_at"]
    list_filter = ["provider", "enabled", "available"]
    list_editable = ["enabled", "display_name"]
    search_fields = ["name", "display_name"]
    readonly_fields = ["available", "last_seen_at", "digest", "size_bytes", "created_at", "updated_at"]
