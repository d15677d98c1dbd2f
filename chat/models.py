from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from models_registry.models import LLMModel
from multillm.user_text import validate_storable_json


class Conversation(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, default="New chat")
    model = models.ForeignKey(
        LLMModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="Last model used."
    )
    pinned = models.BooleanField(default=False)
    # Per-conversation model settings; empty means the model's own default.
    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    selected_models = models.JSONField(
        default=list,
        blank=True,
        help_text="Model ids picked in the composer (several for side by side).",
        validators=[validate_storable_json],
    )
    blind = models.BooleanField(default=False, help_text="Side-by-side model names hidden until a vote.")
    sources = models.ManyToManyField(
        "ingestion.Source", blank=True, related_name="conversations",
        help_text="Sources attached to this conversation: its answers are grounded in them.",
    )  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "-updated_at"], name="conversation_owner_recent")]
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return f"/c/{self.uuid}/"


class Message(models.Model):
    """One message in a conversation's tree of turns.

    A user message's `parent` is the user message of the turn before it (None for the
    first turn); an assistant message's `parent` is the user message it answers. Side-by-
    side answers to one prompt are siblings in different `column`s. Siblings with the same
    parent, role and column are versions (an edited prompt, a regenerated answer), and
    `is_current` marks the one shown. `chosen_reply`, on a user message, is the answer the
    user picked with "continue with this": later turns see that answer as history.
    """

    class Role(models.TextChoices):
        SYSTEM = "system", "System"
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped"
        ERROR = "error", "Error"
        INTERRUPTED = "interrupted", "Interrupted"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    column = models.PositiveSmallIntegerField(default=0)
    is_current = models.BooleanField(default=True)
    blind = models.BooleanField(
        default=False, help_text="On a prompt: its side-by-side answers hide their models until the user votes."
    )
    chosen_reply = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    content_html = models.TextField(blank=True, help_text="Sanitised rendering of content, set when complete.")
    model = models.ForeignKey(LLMModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_label = models.CharField(max_length=300, blank=True, help_text="The model id when the message was made.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error_code = models.CharField(max_length=50, blank=True)
    error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    citations = models.JSONField(
        default=list,
        blank=True,
        help_text="Passages of sources given to the model.",
        validators=[validate_storable_json],
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["conversation", "status"], name="message_conversation_status"),
            models.Index(fields=["parent", "role", "column"], name="message_siblings"),
            # Usage pages: a user's answers of the last days, and everyone's.
            models.Index(fields=["conversation", "created_at"], name="message_conversation_created"),
            models.Index(fields=["created_at"], name="message_created"),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status != self.Status.STREAMING


class Preset(models.Model):
    """A reusable system prompt with model settings. A shared preset (set by staff) is offered to everyone."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presets")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(2)])
    max_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(131_072)]
    )
    shared = models.BooleanField(default=False, help_text="Offered to every user (only staff may share).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="one_preset_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class Vote(models.Model):
    """A user's verdict on the side-by-side answers to one prompt: the best one, or a tie.

    The compared model ids and the winner's are copied in, so the leaderboard keeps the
    vote when the conversation is deleted or an answer regenerated.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes")
    prompt = models.OneToOneField(Message, null=True, on_delete=models.SET_NULL, related_name="vote")
    winner = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    contenders = models.JSONField(
        default=list, help_text="Model ids of the compared answers, by column.", validators=[validate_storable_json]
    )
    winner_model = models.CharField(max_length=300, blank=True, help_text="Empty for a tie.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Vote #{self.pk}: {self.winner_model or 'tie'}"


class ApiKey(models.Model):
    """A key for the OpenAI-compatible API. Only its SHA-256 is stored; it acts as its user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters, to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class UserLimits(models.Model):
    """Per-user limits set by admins; an empty field takes the default from the settings."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="limits")
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_day = models.PositiveIntegerField(null=True, blank=True)
    concurrent_generations = models.PositiveIntegerField(null=True, blank=True)
    max_prompt_chars = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "user limits"
        verbose_name_plural = "user limits"

    def __str__(self) -> str:
        return f"Limits of {self.user}"


class QuotaCounter(models.Model):
    """A usage counter in a time window, for when Redis is not configured."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20)
    window_start = models.DateTimeField()
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind", "window_start"], name="one_counter_per_window")]

    def __str__(self) -> str:
        return f"{self.kind} of user {self.user_id} from {self.window_start:%Y-%m-%d %H:%M}: {self.value}"
