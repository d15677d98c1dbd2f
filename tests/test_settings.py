"""Start-up configuration: env files, precedence, and clear errors for bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUP = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'multillm.settings'; django.setup()"


def load_settings(env: dict[str, str], tmp_path: Path, expression: str = "s.DEBUG") -> subprocess.CompletedProcess:
    """Import the settings in a fresh process with exactly `env` (plus PATH), env files in tmp_path."""
    base = {"PATH": os.environ["PATH"], "ENV_FILE_DIR": str(tmp_path), "VAR_DIR": str(tmp_path / "var")}
    code = f"{SETUP}; from django.conf import settings as s; print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_embedded_defaults_need_nothing_but_debug(tmp_path) -> None:
    result = load_settings(
        {"DEBUG": "on"},
        tmp_path,
        "s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_TASK_ALWAYS_EAGER",
    )

    assert result.returncode == 0, result.stderr
    assert "sqlite3" in result.stdout and "InMemoryChannelLayer" in result.stdout and "True" in result.stdout


def test_database_and_redis_urls_switch_to_postgres_and_redis(tmp_path) -> None:
    result = load_settings(
        {"DEBUG": "on", "DATABASE_URL": "postgres://u@db:5432/app", "REDIS_URL": "redis://cache:6379/1"},
        tmp_path,
        "s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], s.CELERY_BROKER_URL,"
        " 'pool max', s.DATABASES['default']['OPTIONS']['pool']['max_size']",
    )

    assert result.returncode == 0, result.stderr
    assert "postgresql" in result.stdout and "RedisPubSubChannelLayer" in result.stdout
    assert "pool max 20" in result.stdout
    assert "redis://cache:6379/1" in result.stdout


def test_secret_key_is_required_when_debug_is_off(tmp_path) -> None:
    result = load_settings({"DEBUG": "off"}, tmp_path)

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("PROVIDER_READ_TIMEOUT", "soon"),
        ("PROVIDER_CONNECT_TIMEOUT", "-1"),
        ("OLLAMA_BASE_URL", "localhost:11434"),
        ("CHAT_MAX_MESSAGE_CHARS", "lots"),
        ("REDIS_URL", "localhost:6379"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_value_stops_start_up_naming_the_variable(tmp_path, name, value) -> None:
    result = load_settings({"DEBUG": "on", name: value}, tmp_path)

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured") and name in last_line


def test_process_environment_beats_env_secret_beats_env(tmp_path) -> None:
    (tmp_path / ".env").write_text(
        "DEBUG=on\nOLLAMA_BASE_URL=http://from-env-file:1\nQDRANT_COLLECTION=from-env-file\nTIME_ZONE=Europe/Paris\n"
    )
    (tmp_path / ".env.secret").write_text("OPENAI_API_KEY=from-secret\nQDRANT_COLLECTION=from-secret\n")

    result = load_settings(
        {"OLLAMA_BASE_URL": "http://from-process:2"},
        tmp_path,
        "s.OLLAMA_BASE_URL, s.QDRANT_COLLECTION, s.OPENAI_API_KEY, s.TIME_ZONE",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["http://from-process:2", "from-secret", "from-secret", "Europe/Paris"]
