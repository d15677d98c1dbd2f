from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from chat.api_keys import api_key_create, api_key_get_for_user, api_key_revoke
from chat.models import ApiKey, Conversation
from chat.selectors import conversation_get_for_user, conversation_turns, conversations_for_sidebar, model_leaderboard
from chat.services import MAX_SIDE_BY_SIDE, conversation_create
from ingestion.selectors import source_get_for_user, sources_for_conversation
from ingestion.services import SourceError, source_as_frame, source_attach_file, source_attach_url, source_remove
from models_registry.selectors import models_usable_by


def _chat_page(request: HttpRequest, conversation: Conversation | None) -> HttpResponse:
    sources = list(sources_for_conversation(conversation_id=conversation.pk)) if conversation else []
    models = list(models_usable_by(user=request.user))
    usable = {m.model_id for m in models}
    selected = [m for m in (conversation.selected_models if conversation else []) if m in usable]
    if not selected and conversation is not None and conversation.model_id:
        selected = [m.model_id for m in models if m.pk == conversation.model_id]
    if not selected and models:
        selected = [models[0].model_id]
    context = {
        "conversation": conversation,
        "conversations": conversations_for_sidebar(user=request.user),  # type: ignore[arg-type]
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
    standings = model_leaderboard(user=request.user)  # type: ignore[arg-type]
    return render(request, "chat/leaderboard.html", {"standings": standings})


@require_POST
def conversation_new(request: HttpRequest) -> JsonResponse:
    """Create an empty conversation for the page's first message; answers with its id and URL."""
    conversation = conversation_create(owner=request.user)  # type: ignore[arg-type]
    return JsonResponse(
        {"id": str(conversation.uuid), "url": conversation.get_absolute_url(), "title": conversation.title},
        status=201,
    )


def api_keys(request: HttpRequest) -> HttpResponse:
    """List, and on POST create, the user's API keys; a new key is shown only in this response."""
    context: dict[str, object] = {}
    if request.method == "POST":
        key, raw_key = api_key_create(user=request.user, name=request.POST.get("name", ""))  # type: ignore[arg-type]
        context = {"new_key": raw_key, "new_key_name": key.name}
    context["keys"] = ApiKey.objects.filter(user_id=request.user.pk)
    response = render(request, "chat/api_keys.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def api_key_revoke_view(request: HttpRequest, key_uuid: uuid.UUID) -> HttpResponse:
    api_key_revoke(key=api_key_get_for_user(user=request.user, key_uuid=key_uuid))  # type: ignore[arg-type]
    return redirect("chat:api_keys")


@require_POST
def source_attach(request: HttpRequest, conversation_uuid: uuid.UUID) -> JsonResponse:
    """Attach a URL or an uploaded file to the conversation; its progress arrives over the websocket."""
    conversation = conversation_get_for_user(user=request.user, conversation_uuid=conversation_uuid)
    upload = request.FILES.get("file")
    try:
        if upload is not None:
            source = source_attach_file(owner=request.user, conversation=conversation, upload=upload)  # type: ignore[arg-type]
        else:
            source = source_attach_url(owner=request.user, conversation=conversation, url=request.POST.get("url", ""))  # type: ignore[arg-type]
    except SourceError as exc:
        return JsonResponse({"error": {"code": exc.code, "detail": exc.detail}}, status=400)
    return JsonResponse({"source": source_as_frame(source)}, status=201)


@require_POST
def source_detach(request: HttpRequest, source_uuid: uuid.UUID) -> HttpResponse:
    source_remove(source=source_get_for_user(user=request.user, source_uuid=source_uuid))
    return HttpResponse(status=204)
