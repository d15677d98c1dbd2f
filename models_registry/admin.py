from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import path, reverse

from models_registry.models import LLMModel, Provider
from models_registry.providers import ProviderError
from models_registry.services import model_delete_from_provider, models_sync_all, provider_sync_models


class ProviderForm(forms.ModelForm):
    """The API key is write-only: never rendered back; left blank, the saved key stays."""

    base_url = forms.URLField(
        max_length=500, assume_scheme="https", help_text="Ollama host, Azure endpoint, or the server's base URL."
    )
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to keep the saved key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the saved key.")

    class Meta:
        model = Provider
        fields = [
            "name", "kind", "base_url", "extra_base_urls", "api_key", "clear_api_key", "api_version", "deployments",
            "enabled",
        ]  # fmt: skip

    def clean_extra_base_urls(self) -> str:
        """One http(s) URL per line; blank lines are dropped."""
        urls = [line.strip() for line in self.cleaned_data.get("extra_base_urls", "").splitlines() if line.strip()]
        validate = URLValidator(schemes=["http", "https"])
        for url in urls:
            try:
                validate(url)
            except ValidationError:
                raise ValidationError(f"Not an http(s) URL: {url}") from None
        return "\n".join(urls)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind == Provider.Kind.AZURE_OPENAI:
            if not data.get("api_version"):
                self.add_error("api_version", "Azure OpenAI needs an API version, e.g. 2024-02-15-preview.")
            if not data.get("deployments"):
                self.add_error("deployments", "Name at least one deployment.")
        return data

    def save(self, commit: bool = True) -> Provider:
        provider = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            provider.api_key = ""
        elif not self.cleaned_data.get("api_key") and self.instance.pk:
            provider.api_key = Provider.objects.only("api_key").get(pk=self.instance.pk).api_key
        if commit:
            provider.save()
        return provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ["name", "kind", "base_url", "host_count", "enabled", "has_key", "last_sync_at", "last_sync_error"]
    list_filter = ["kind", "enabled"]
    readonly_fields = ["managed_by_env", "last_sync_at", "last_sync_error"]
    actions = ["sync_models"]

    @admin.display(description="Hosts")
    def host_count(self, provider: Provider) -> int:
        return len(provider.base_urls)

    @admin.display(boolean=True, description="API key")
    def has_key(self, provider: Provider) -> bool:
        return bool(provider.api_key)

    @admin.action(description="Sync models of the selected providers now")
    def sync_models(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        for provider in queryset:
            result = provider_sync_models(provider=provider)
            if result.error:
                self.message_user(request, f"{provider.name}: {result.error}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{provider.name}: {result.added} added, {result.updated} updated, "
                    f"{result.unavailable} marked unavailable.",
                )


@admin.register(LLMModel)
class LLMModelAdmin(admin.ModelAdmin):
    list_display = [
        "name", "provider", "display_name", "enabled", "available", "supports_chat", "supports_embedding",
        "is_default_chat", "context_length", "parameter_size", "quantization", "size", "last_seen_at",
    ]  # fmt: skip
    list_filter = ["provider", "enabled", "available", "supports_chat", "supports_embedding", "groups"]
    list_editable = ["enabled", "display_name"]
    search_fields = ["name", "display_name", "family"]
    filter_horizontal = ["groups"]
    readonly_fields = [
        "provider", "name", "available", "last_seen_at", "digest", "size_bytes", "modified_at", "family",
        "parameter_size", "quantization", "created_at", "updated_at",
    ]  # fmt: skip
    actions = ["enable", "disable", "sync_now", "delete_from_ollama"]
    change_list_template = "admin/models_registry/llmmodel/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # models come from their providers (sync or pull)

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, model: LLMModel) -> str:
        return f"{model.size_bytes / 1e9:.1f} GB" if model.size_bytes else "—"

    @admin.action(description="Enable the selected models")
    def enable(self, request: HttpRequest, queryset: QuerySet[LLMModel]) -> None:
        self.message_user(request, f"{queryset.update(enabled=True)} models enabled.")

    @admin.action(description="Disable the selected models")
    def disable(self, request: HttpRequest, queryset: QuerySet[LLMModel]) -> None:
        self.message_user(request, f"{queryset.update(enabled=False)} models disabled.")

    @admin.action(description="Sync every provider's models now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[LLMModel]) -> None:
        self._sync_all(request)

    def _sync_all(self, request: HttpRequest) -> None:
        for result in models_sync_all():
            if result.error:
                self.message_user(request, f"{result.provider}: {result.error}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{result.provider}: {result.added} added, {result.updated} updated, "
                    f"{result.unavailable} marked unavailable.",
                )

    @admin.action(description="Delete the selected models from Ollama's disk")
    def delete_from_ollama(self, request: HttpRequest, queryset: QuerySet[LLMModel]) -> HttpResponse | None:
        queryset = queryset.select_related("provider")
        not_ollama = [m.model_id for m in queryset if m.provider.kind != Provider.Kind.OLLAMA]
        if not_ollama:
            self.message_user(request, f"Only Ollama models can be deleted: {', '.join(not_ollama)}.", messages.ERROR)
            return None
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "models": queryset,
                "title": "Delete models from Ollama",
                "action": "delete_from_ollama",
                "opts": self.model._meta,
            }
            return render(request, "admin/models_registry/llmmodel/confirm_delete_from_ollama.html", context)
        for model in queryset:
            try:
                model_delete_from_provider(model=model)
            except ProviderError as exc:
                self.message_user(request, f"{model.model_id}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Deleted {model.model_id} from {model.provider.base_url}.")
        return None

    def get_urls(self) -> list[Any]:
        return [
            path("pull/", self.admin_site.admin_view(self.pull_view), name="models_registry_llmmodel_pull"),
            path("sync/", self.admin_site.admin_view(self.sync_view), name="models_registry_llmmodel_sync"),
            *super().get_urls(),
        ]

    def pull_view(self, request: HttpRequest) -> HttpResponse:
        """A form that pulls a model into Ollama, with live progress over the websocket."""
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        context = {
            **self.admin_site.each_context(request),
            "title": "Pull a model into Ollama",
            "providers": Provider.objects.filter(kind=Provider.Kind.OLLAMA, enabled=True),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/models_registry/llmmodel/pull.html", context)

    def sync_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or not self.has_change_permission(request):
            return HttpResponse(status=405 if request.method != "POST" else 403)
        self._sync_all(request)
        return redirect(reverse("admin:models_registry_llmmodel_changelist"))
