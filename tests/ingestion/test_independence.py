"""Ingestion works without the chat app: a process whose settings leave `chat` out imports
every module of `ingestion`, passes Django's checks, and ingests a file end to end, with its
progress reported to a reporter it is handed. (`make lint` also runs the import contracts in
pyproject.toml: no module of `ingestion` imports `chat`.)"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = r"""
import importlib, os, pkgutil, sys
import django
django.setup()
from django.apps import apps
assert not apps.is_installed("chat")

import ingestion
for module in pkgutil.walk_packages(ingestion.__path__, "ingestion."):
    importlib.import_module(module.name)
assert not [name for name in sys.modules if name == "chat" or name.startswith("chat.")], "chat was imported"

from django.core.management import call_command
call_command("check")
call_command("migrate", run_syncdb=True, verbosity=0)

from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from ingestion.models import Source
from ingestion.retrieval import retrieve
from ingestion.services import source_create_from_upload, source_ingest

body = b"# Harbour\n\nThe harbour budget for 2025 is 4.2 million euros.\n\nThe lighthouse was painted in May.\n"
source = source_create_from_upload(owner=User.objects.create_user("carol"),
                                   upload=SimpleUploadedFile("notes.md", body), queue=False)
statuses = []
source_ingest(source_id=source.pk, reporter=lambda s: statuses.append(s.status))
source.refresh_from_db()
assert source.status == "ready", source.error
passages = retrieve(document_ids=[source.document_id], query="harbour budget", limit=3)
print("STATUSES", " ".join(statuses))
print("PASSAGE", passages[0].text.replace("\n", " "))
"""


def test_ingestion_imports_checks_and_ingests_with_the_chat_app_left_out(tmp_path) -> None:
    env = {
        key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "QDRANT_ENDPOINT")
    }
    env.update(DJANGO_SETTINGS_MODULE="tests.ingestion.settings_without_chat", VAR_DIR=str(tmp_path), DEBUG="on")

    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip

    assert run.returncode == 0, run.stderr[-3000:]
    assert "STATUSES extracting embedding ready" in run.stdout
    assert "budget for 2025 is 4.2 million" in run.stdout
