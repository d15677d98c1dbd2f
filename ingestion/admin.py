from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from ingestion.models import Chunk, Document, FetchedUrl, Source
from ingestion.services import document_delete, source_reingest


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "status", "error", "document", "created_at"]
    list_filter = ["status"]
    search_fields = ["url", "file_name", "owner__username"]
    readonly_fields = ["uuid", "owner", "document", "created_at", "updated_at"]
    actions = ["reingest"]

    @admin.action(description="Ingest the selected sources again (fetch anew)")
    def reingest(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for source in queryset:
            source_reingest(source=source)
        self.message_user(request, f"{queryset.count()} sources queued for ingestion.")


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = readonly_fields = ("index", "page", "row_start", "row_end", "token_count", "text")
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "status", "chunk_count", "size_bytes", "embedding_model", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["title", "content_hash"]
    readonly_fields = [f.name for f in Document._meta.fields]
    inlines = [ChunkInline]
    actions = ["delete_with_vectors"]

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would leave the vectors behind
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Delete the selected documents, their chunks and their vectors")
    def delete_with_vectors(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        count = 0
        for document in queryset:
            document_delete(document=document)
            count += 1
        self.message_user(request, f"Deleted {count} documents with their vectors.", messages.SUCCESS)


@admin.register(FetchedUrl)
class FetchedUrlAdmin(admin.ModelAdmin):
    list_display = ["url", "etag", "last_modified", "document", "fetched_at"]
    search_fields = ["url"]
