from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q


class Provider(models.Model):
    """A server that runs models: an Ollama host, Azure OpenAI, an OpenAI-compatible API."""

    class Kind(models.TextChoices):
        OLLAMA = "ollama", "Ollama"
        AZURE_OPENAI = "azure_openai", "Azure OpenAI"
        OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"

    name = models.SlugField(max_length=50, unique=True, help_text="The first part of model ids: <name>/<model>.")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    base_url = models.URLField(max_length=500, help_text="Ollama host, Azure endpoint, or the server's base URL.")
    extra_base_urls = models.TextField(
        blank=True,
        help_text="More hosts serving the same models, one URL per line: requests are spread across the hosts "
        "that answer, and a host that fails is skipped.",
    )
    api_key = models.CharField(max_length=500, blank=True, help_text="Never shown again once saved.")
    api_version = models.CharField(max_length=50, blank=True, help_text="Azure OpenAI only.")
    deployments = models.CharField(
        max_length=1000, blank=True, help_text="Azure OpenAI only: deployment names, separated by commas."
    )
    enabled = models.BooleanField(default=True, help_text="Off: its models are not offered and not synced.")
    managed_by_env = models.BooleanField(
        default=False, editable=False, help_text="Created from the environment; its settings are rewritten at start."
    )
    last_sync_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_sync_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:  # never the key
        return f"<Provider {self.name} {self.kind} {self.base_url}>"

    @property
    def base_urls(self) -> tuple[str, ...]:
        """Every host of the provider, `base_url` first."""
        extra = (line.strip().rstrip("/") for line in self.extra_base_urls.splitlines())
        return tuple(dict.fromkeys([self.base_url.rstrip("/"), *(url for url in extra if url)]))

    @property
    def deployment_names(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.deployments.split(",") if name.strip())


class LLMModel(models.Model):
    """A model offered by a provider. Never deleted: old messages keep pointing at it."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="models")
    name = models.CharField(max_length=200, help_text="The provider's own name, e.g. llama3.2:1b.")
    display_name = models.CharField(max_length=200, blank=True)
    context_length = models.PositiveIntegerField(null=True, blank=True)
    family = models.CharField(max_length=100, blank=True)
    parameter_size = models.CharField(max_length=50, blank=True)
    quantization = models.CharField(max_length=50, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    digest = models.CharField(max_length=100, blank=True)
    modified_at = models.DateTimeField(null=True, blank=True, help_text="When the provider last changed the model.")
    supports_chat = models.BooleanField(default=True)
    supports_embedding = models.BooleanField(default=False)
    available = models.BooleanField(default=True, help_text="Seen at the provider's last sync.")
    enabled = models.BooleanField(default=True, help_text="Offered to users.")
    is_default_chat = models.BooleanField(default=False, help_text="Preselected for new conversations.")
    is_default_embedding = models.BooleanField(default=False, help_text="Embeds sources unless another is chosen.")
    groups = models.ManyToManyField(
        Group, blank=True, related_name="llm_models", help_text="Who may use it; none selected means everyone."
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "name"], name="unique_model_per_provider"),
            models.UniqueConstraint(
                fields=["is_default_chat"],
                condition=Q(is_default_chat=True),
                name="one_default_chat_model",
                violation_error_message="Another model is the default chat model: untick it there first.",
            ),
            models.UniqueConstraint(
                fields=["is_default_embedding"],
                condition=Q(is_default_embedding=True),
                name="one_default_embedding_model",
                violation_error_message="Another model is the default embedding model: untick it there first.",
            ),
        ]
        ordering = ["provider__name", "name"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.model_id

    @property
    def model_id(self) -> str:
        """The public id, `<provider>/<model>`, used by the websocket and the API."""
        return f"{self.provider.name}/{self.name}"

    @property
    def label(self) -> str:
        return self.display_name or self.model_id

    @property
    def capabilities(self) -> list[str]:
        return [name for name, on in (("chat", self.supports_chat), ("embedding", self.supports_embedding)) if on]
