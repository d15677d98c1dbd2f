from __future__ import annotations

from django.db import models


class Provider(models.Model):
    """A server that runs models: an Ollama host, Azure OpenAI, an OpenAI-compatible API."""

    class Kind(models.TextChoices):
        OLLAMA = "ollama", "Ollama"

    name = models.SlugField(max_length=50, unique=True, help_text="The first part of model ids: <name>/<model>.")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    base_url = models.URLField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


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
    available = models.BooleanField(default=True, help_text="Seen at the provider's last sync.")
    enabled = models.BooleanField(default=True, help_text="Offered to users.")
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="unique_model_per_provider")]
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
