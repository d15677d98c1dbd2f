"""`/ws/admin/pull/`: staff start an Ollama pull and watch its progress live.

A pull belongs to the server, like a chat answer: closing the page does not stop it, and
every admin page open on the pull form sees the progress (group `admin.pulls`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from models_registry.models import Provider
from models_registry.providers import ProviderError
from models_registry.services import model_pull, provider_sync_models

logger = logging.getLogger(__name__)

GROUP = "admin.pulls"
MODEL_NAME = re.compile(r"^[A-Za-z0-9._:/-]{1,200}$")
_PULLS: dict[str, asyncio.Task[None]] = {}


async def _run_pull(provider: Provider, name: str) -> None:
    layer = get_channel_layer()

    async def publish(frame: dict[str, Any]) -> None:
        await layer.group_send(GROUP, {"type": "pull.event", "frame": {"model": name, **frame}})

    try:
        async for progress in model_pull(provider=provider, name=name):
            await publish({"type": "pull.progress", "status": progress.status, "digest": progress.digest,
                           "total": progress.total, "completed": progress.completed})  # fmt: skip
    except ProviderError as exc:
        await publish({"type": "error", "code": exc.code, "detail": exc.message})
    except Exception:
        logger.exception("pull of %s failed", name)
        await publish({"type": "error", "code": "internal", "detail": "The pull failed on the server."})
    else:
        await database_sync_to_async(provider_sync_models)(provider=provider)
        await publish({"type": "pull.done"})


class ModelPullConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close(code=4403)
            return
        if not await database_sync_to_async(user.has_perm)("models_registry.change_llmmodel"):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = json.loads(text_data or "")
        except json.JSONDecodeError:
            frame = None
        if not isinstance(frame, dict) or frame.get("type") != "pull":
            await self._error("bad_frame", 'Send {"type": "pull", "provider": name, "model": name}.')
            return
        name = str(frame.get("model", "")).strip()
        if not MODEL_NAME.match(name):
            await self._error("bad_model", "Model names use letters, digits and . _ : / - only, e.g. llama3.2:1b.")
            return
        provider = await database_sync_to_async(
            Provider.objects.filter(name=str(frame.get("provider", "")), kind=Provider.Kind.OLLAMA, enabled=True).first
        )()
        if provider is None:
            await self._error("bad_provider", "No enabled Ollama provider by that name.")
            return
        key = f"{provider.name}/{name}"
        if key in _PULLS:
            await self._error("busy", f"{name} is being pulled already.")
            return
        task = asyncio.create_task(_run_pull(provider, name), name=f"pull-{key}")
        _PULLS[key] = task
        task.add_done_callback(lambda _: _PULLS.pop(key, None))

    async def pull_event(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event["frame"]))

    async def _error(self, code: str, detail: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": code, "detail": detail}))
