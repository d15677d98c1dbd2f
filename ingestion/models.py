"""Sources (a user's URL or uploaded file) and the documents and chunks behind them.
Documents are shared: the same bytes, added by anyone, are extracted, chunked and embedded
once. Where a source is used (a conversation, say) is recorded by the app that uses it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from multillm.user_text import validate_storable_json


class Document(models.Model):
    """Extracted content, identified by the SHA-256 of its bytes."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    content_hash = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=20)
    title = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=200, blank=True, help_text="The model whose vectors are stored.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title or self.content_hash[:12]


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    text = models.TextField()
    heading_path = models.JSONField(default=list, blank=True, validators=[validate_storable_json])
    page = models.PositiveIntegerField(null=True, blank=True)
    row_start = models.PositiveIntegerField(null=True, blank=True)
    row_end = models.PositiveIntegerField(null=True, blank=True)
    char_start = models.PositiveIntegerField(default=0)
    char_end = models.PositiveIntegerField(default=0)
    token_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["document_id", "index"]
        constraints = [models.UniqueConstraint(fields=["document", "index"], name="unique_chunk_index")]

    def __str__(self) -> str:
        return f"{self.document} #{self.index}"


class FetchedUrl(models.Model):
    """What a URL last answered, for conditional requests: a 304 means the same document."""

    url = models.URLField(max_length=2000, unique=True)
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    document = models.ForeignKey(Document, null=True, on_delete=models.SET_NULL, related_name="+")
    fetched_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.url


class Source(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        FETCHING = "fetching", "Fetching"
        EXTRACTING = "extracting", "Extracting"
        EMBEDDING = "embedding", "Embedding"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sources")
    url = models.URLField(max_length=2000, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.SET_NULL, related_name="sources")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.url or self.file_name

    @property
    def name(self) -> str:
        if self.document and self.document.title:
            return self.document.title
        return self.file_name or self.url
