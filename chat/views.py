from __future__ import annotations

import csv
import uuid

from django.conf import settings
from django.contrib import messages as flash
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from chat import realtime
from chat.api_keys import api_key_create, api_key_get_for_user, api_key_revoke
from chat.exchanges import MAX_SIDE_BY_SIDE
from chat.models import ApiKey, Conversation
from chat.presets import (
    ModelSettings,
    conversation_settings_update,
    model_settings_parse,
    preset_apply,
    preset_create,
    preset_delete,
    preset_get_for_user,
    presets_for_user,
)
from chat.search import SEARCH_LIMIT, conversations_search
from chat.selectors import conversation_get_for_user, sidebar_for_user, sources_for_conversation
from chat.services import (
    ChatError,
    conversation_create,
    conversation_delete,
    conversation_rename,
    conversation_set_pinned,
    conversation_source_attach_file,
    conversation_source_attach_url,
    conversation_source_detach,
)
from chat.transfer import (
    IMPORT_MAX_BYTES,
    ConversationImportError,
    conversation_export_json,
    conversation_export_markdown,
    conversation_import,
)
from chat.tree import conversation_turns
from chat.usage import UsageRow, model_leaderboard, usage_for_everyone, usage_for_user
from ingestion.selectors import source_get_for_user
from ingestion.services import SourceError
from ingestion.uploads import upload_too_large_message, upload_was_refused
from models_registry.selectors import models_usable_by
from multillm.authenticated import AuthenticatedHttpRequest as HttpRequest


def _chat_page(request: HttpRequest, conversation: Conversation | None) -> HttpResponse:
    sources = list(sources_for_conversation(conversation_id=conversation.pk)) if conversation else []
    models = list(models_usable_by(user=request.user))
    usable = {m.model_id for m in models}
    selected = [m for m in (conversation.selected_models if conversation else []) if m in usable]
    if not selected and conversation is not None and conversation.model_id:
        selected = [m.model_id for m in models if m.pk == conversation.model_id]
    if not selected and models:
        selected = [models[0].model_id]
    query = request.GET.get("q", "").strip()
    context = {
        "conversation": conversation,
        "current": conversation.uuid if conversation else None,
        "sidebar": sidebar_for_user(user=request.user),
        "query": query,
        "hits": conversations_search(user=request.user, query=query, limit=SEARCH_LIMIT) if query else None,
        "search_limit": SEARCH_LIMIT,
        "presets": list(presets_for_user(user=request.user)),
        "notices": flash.get_messages(request),
        "page": conversation_turns(conversation=conversation) if conversation else None,
        "models": models,
        "selected_models": selected,
        "blind": bool(conversation and conversation.blind and len(selected) > 1),
        "max_models": MAX_SIDE_BY_SIDE,
        "sources": sources,
        "max_message_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        "ollama_base_url": settings.OLLAMA_BASE_URL,
    }
    return render(request, "chat/chat.html", context)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return _chat_page(request, None)


@require_GET
def conversation_detail(request: HttpRequest, conversation_uuid: uuid.UUID) -> HttpResponse:
    conversation = conversation_get_for_user(user=request.user, conversation_uuid=conversation_uuid)
    return _chat_page(request, conversation)


@require_GET
def conversation_turns_view(request: HttpRequest, conversation_uuid: uuid.UUID) -> HttpResponse:
    """The shown branch's last turns (or those before `?before=<prompt id>`), as HTML for the page's script."""
    conversation = conversation_get_for_user(user=request.user, conversation_uuid=conversation_uuid)
    try:
        before = int(request.GET["before"]) if request.GET.get("before") else None
    except ValueError:
        return HttpResponseBadRequest("`before` must be a message id.")
    page = conversation_turns(conversation=conversation, before=before)
    return render(request, "chat/_turns.html", {"page": page, "conversation": conversation})


@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    standings = model_leaderboard(user=request.user)
    return render(request, "chat/leaderboard.html", {"standings": standings})


@require_POST
def conversation_new(request: HttpRequest) -> JsonResponse:
    """Create an empty conversation for the page's first message; answers with its id and URL."""
    conversation = conversation_create(owner=request.user)
    return JsonResponse(
        {"id": str(conversation.uuid), "url": conversation.get_absolute_url(), "title": conversation.title},
        status=201,
    )


def api_keys(request: HttpRequest) -> HttpResponse:
    """List, and on POST create, the user's API keys; a new key is shown only in this response."""
    context: dict[str, object] = {}
    if request.method == "POST":
        key, raw_key = api_key_create(user=request.user, name=request.POST.get("name", ""))
        context = {"new_key": raw_key, "new_key_name": key.name}
    context["keys"] = ApiKey.objects.filter(user_id=request.user.pk or 0)
    response = render(request, "chat/api_keys.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def api_key_revoke_view(request: HttpRequest, key_uuid: uuid.UUID) -> HttpResponse:
    api_key_revoke(key=api_key_get_for_user(user=request.user, key_uuid=key_uuid))
    return redirect("chat:api_keys")


@require_POST
def source_attach(request: HttpRequest, conversation_uuid: uuid.UUID) -> JsonResponse:
    """Attach a URL or an uploaded file to the conversation; its progress arrives over the websocket."""
    conversation = conversation_get_for_user(user=request.user, conversation_uuid=conversation_uuid)
    upload = request.FILES.get("file")
    if upload_was_refused(request):  # over the cap: the body was not kept (ingestion/uploads.py)
        return JsonResponse({"error": {"code": "too_large", "detail": upload_too_large_message()}}, status=413)
    try:
        if upload is not None:
            source = conversation_source_attach_file(owner=request.user, conversation=conversation, upload=upload)
        else:
            source = conversation_source_attach_url(
                owner=request.user, conversation=conversation, url=request.POST.get("url", "")
            )
    except SourceError as exc:
        return JsonResponse({"error": {"code": exc.code, "detail": exc.detail}}, status=400)
    return JsonResponse({"source": realtime.source_payload(source)}, status=201)


@require_POST
def source_detach(request: HttpRequest, source_uuid: uuid.UUID) -> HttpResponse:
    conversation_source_detach(source=source_get_for_user(user=request.user, source_uuid=source_uuid))
    return HttpResponse(status=204)


# Managing conversations: the sidebar (a page of it, or search results), rename, pin,
# delete, settings and presets, export and import. The page's script posts with
# `Accept: application/json` and gets JSON; a plain form post is redirected back.


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _back(request: HttpRequest, conversation: Conversation | None = None) -> HttpResponse:
    return redirect(conversation.get_absolute_url() if conversation else "chat:home")


def _error(request: HttpRequest, exc: ChatError, conversation: Conversation | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"error": {"code": exc.code, "detail": exc.detail}}, status=400)
    flash.error(request, exc.detail)
    return _back(request, conversation)


def _page_number(value: str) -> int:
    try:
        return max(1, int(value))
    except ValueError:
        return 1


@require_GET
def sidebar(request: HttpRequest) -> HttpResponse:
    """The sidebar's list items: search results for `q`, else page `page` of the conversations."""
    query = request.GET.get("q", "").strip()
    context: dict[str, object] = {
        "current": request.GET.get("current", ""),
        "query": query,
        "search_limit": SEARCH_LIMIT,
    }
    if query:
        context["hits"] = conversations_search(user=request.user, query=query, limit=SEARCH_LIMIT)
        return render(request, "chat/_search_results.html", context)
    page = _page_number(request.GET.get("page", "1"))
    context["sidebar"] = sidebar_for_user(user=request.user, page=page)
    context["first_page"] = page == 1
    return render(request, "chat/_sidebar.html", context)


@require_POST
def conversation_rename_view(request: HttpRequest, conversation_uuid: uuid.UUID) -> HttpResponse:
    conversation = conversation_get_for_user(user=request.user, conversation_uuid=conversation_uuid)
    try:
        conversation_rename(conversation=conversation, title=request.POST.get("title", ""))
    except ChatError as exc:
        return _error(request, exc, conversation)
    if _wants_json(request):
        return JsonResponse({"id": str(conversation.uuid), "title": conversation.title})
    return _back(request, conversation)


@require_POST
def conversation_pin_view(request: HttpRequest, conversation_uuid: uuid.UUID) -> HttpResponse:
    conversation = conversation_get_for_user(user=request.user, conversation_uuid=conversation_uuid)
    conversation_set_pinned(conversation=conversation, pinned=request.POST.get("pinned") in ("1", "true", "on"))
    if _wants_json(request):
        return JsonResponse({"id": str(conversation.uuid), "pinned": conversation.pinned})
    return _back(request, conversation)


def conversation_delete_view(request: HttpRequest, conversation_uuid: uuid.UUID) -> HttpResponse:
    """GET asks for confirmation (the page's script asks in a dialog instead); POST deletes."""
    conversation = conversation_get_for_user(user=request.user, conversation_uuid=conversation_uuid)
    if request.method != "POST":
        return render(request, "chat/conversation_delete.html", {"conversation": conversation})
    title = conversation.title
    conversation_delete(conversation=conversation)
    if _wants_json(request):
        return JsonResponse({"id": str(conversation_uuid), "deleted": True})
    flash.success(request, f"Deleted “{title}”.")
    return redirect("chat:home")


def _settings_target(request: HttpRequest, conversation_uuid: uuid.UUID | None) -> Conversation:
    """The conversation to change; settings chosen before the first message make a new one."""
    if conversation_uuid is None:
        return conversation_create(owner=request.user)
    return conversation_get_for_user(user=request.user, conversation_uuid=conversation_uuid)


def _posted_settings(request: HttpRequest) -> ModelSettings:
    return model_settings_parse(
        system_prompt=request.POST.get("system_prompt", ""),
        temperature=request.POST.get("temperature"),
        max_tokens=request.POST.get("max_tokens"),
    )


@require_POST
def conversation_settings_view(request: HttpRequest, conversation_uuid: uuid.UUID | None = None) -> HttpResponse:
    existing = (
        conversation_get_for_user(user=request.user, conversation_uuid=conversation_uuid) if conversation_uuid else None
    )
    try:
        model_settings = _posted_settings(request)
    except ChatError as exc:
        return _error(request, exc, existing)
    conversation = existing or _settings_target(request, None)
    conversation_settings_update(conversation=conversation, model_settings=model_settings)
    flash.success(request, "Settings saved: they apply from the next answer.")
    return _back(request, conversation)


@require_POST
def preset_save_view(request: HttpRequest) -> HttpResponse:
    """Save the settings panel's values as a named preset."""
    raw_uuid = request.POST.get("conversation", "")
    conversation = conversation_get_for_user(user=request.user, conversation_uuid=raw_uuid) if raw_uuid else None
    try:
        preset = preset_create(
            owner=request.user,
            name=request.POST.get("preset_name", ""),
            model_settings=_posted_settings(request),
            shared=request.POST.get("shared") == "on",
        )
    except ChatError as exc:
        return _error(request, exc, conversation)
    flash.success(request, f"Preset “{preset.name}” saved{' and shared with everyone' if preset.shared else ''}.")
    return _back(request, conversation)


@require_POST
def preset_apply_view(request: HttpRequest, conversation_uuid: uuid.UUID | None = None) -> HttpResponse:
    preset = preset_get_for_user(user=request.user, preset_uuid=request.POST.get("preset", ""))
    conversation = _settings_target(request, conversation_uuid)
    preset_apply(conversation=conversation, preset=preset)
    flash.success(request, f"Preset “{preset.name}” applied.")
    return _back(request, conversation)


@require_POST
def preset_delete_view(request: HttpRequest) -> HttpResponse:
    preset = preset_get_for_user(user=request.user, preset_uuid=request.POST.get("preset", ""))
    raw_uuid = request.POST.get("conversation", "")
    conversation = conversation_get_for_user(user=request.user, conversation_uuid=raw_uuid) if raw_uuid else None
    try:
        preset_delete(preset=preset, user=request.user)
    except ChatError as exc:
        return _error(request, exc, conversation)
    flash.success(request, f"Preset “{preset.name}” deleted.")
    return _back(request, conversation)


def _download(content: str, *, name: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


def _file_stem(conversation: Conversation) -> str:
    words = "".join(c if c.isalnum() else "-" for c in conversation.title.lower()).split("-")
    stem = "-".join(w for w in words if w)[:50] or "conversation"
    return f"{stem}-{timezone.localdate():%Y%m%d}"


@require_GET
def conversation_export_view(request: HttpRequest, conversation_uuid: uuid.UUID, kind: str) -> HttpResponse:
    conversation = conversation_get_for_user(user=request.user, conversation_uuid=conversation_uuid)
    if kind == "md":
        return _download(
            conversation_export_markdown(conversation=conversation),
            name=f"{_file_stem(conversation)}.md",
            content_type="text/markdown; charset=utf-8",
        )
    if kind == "json":
        return _download(
            conversation_export_json(conversation=conversation),
            name=f"{_file_stem(conversation)}.json",
            content_type="application/json; charset=utf-8",
        )
    raise Http404("Export as .md or .json.")


@require_POST
def conversation_import_view(request: HttpRequest) -> HttpResponse:
    """A JSON file exported from this app becomes a new conversation of the user."""
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise ConversationImportError("Choose a JSON file exported from Multi-LLM Chat.")
        if upload.size is not None and upload.size > IMPORT_MAX_BYTES:
            raise ConversationImportError(f"The file is larger than {IMPORT_MAX_BYTES // (1024 * 1024)} MB.")
        conversation = conversation_import(owner=request.user, raw=upload.read(IMPORT_MAX_BYTES + 1))
    except ConversationImportError as exc:
        flash.error(request, f"Could not import {upload.name if upload else 'the file'}: {exc.detail}")
        return redirect("chat:home")
    flash.success(request, f"Imported “{conversation.title}”.")
    return redirect(conversation.get_absolute_url())


def _usage_csv(rows: list[UsageRow], *, per_day: bool, name: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    header = ["day", "model", "answers", "prompt_tokens", "completion_tokens", "total_tokens"]
    if not per_day:
        header = ["user", *header[1:]]
    writer.writerow(header)
    for row in rows:
        first = row.day.isoformat() if per_day and row.day else row.username
        writer.writerow(
            [
                csv_safe(first),
                csv_safe(row.model),
                row.answers,
                row.prompt_tokens,
                row.completion_tokens,
                row.total_tokens,
            ]
        )
    return response


def csv_safe(value: str) -> str:
    """A cell that spreadsheets will not run as a formula (a leading =, +, -, @, tab or CR)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    rows = usage_for_user(user=request.user)
    if request.GET.get("format") == "csv":
        return _usage_csv(rows, per_day=True, name="usage.csv")
    return render(request, "chat/usage.html", {"rows": rows, "everyone": False, "totals": _totals(rows)})


@require_GET
def usage_everyone(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise Http404("No such page.")
    rows = usage_for_everyone()
    if request.GET.get("format") == "csv":
        return _usage_csv(rows, per_day=False, name="usage-all-users.csv")
    return render(request, "chat/usage.html", {"rows": rows, "everyone": True, "totals": _totals(rows)})


def _totals(rows: list[UsageRow]) -> dict[str, int]:
    return {
        "answers": sum(r.answers for r in rows),
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "total_tokens": sum(r.total_tokens for r in rows),
    }
