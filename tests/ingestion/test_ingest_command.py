"""`manage.py ingest URL [--user NAME]`: the pipeline from a shell, with its stages shown."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from ingestion.models import Source
from ingestion.vectorstore import vector_store
from tests.conftest import ROOT


@pytest.mark.django_db
def test_ingest_shows_each_stage_and_ends_ready(alice, web) -> None:
    out = io.StringIO()

    call_command("ingest", web.url("/notes.md"), user="alice", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"Ingesting {web.url('/notes.md')} for alice")
    assert [line.strip() for line in lines[1:5]] == ["fetching…", "extracting…", "embedding…", "ready…"]
    assert lines[-1].startswith("Ready: ") and "chunks)" in lines[-1]
    assert Source.objects.get().status == "ready"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "user", "message"),
    [
        ("/status/404", "alice", "Failed: The page was not found (HTTP 404)."),
        ("ftp://example.org/file.csv", "alice", "Give a web address that starts with http:// or https://."),
        ("/notes.md", "nobody", "No user named 'nobody'."),
    ],
)
def test_ingest_failures_say_why(alice, web, url, user, message) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        call_command("ingest", web.url(url) if url.startswith("/") else url, user=user, stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_ingest_while_another_process_holds_the_embedded_store_says_so_and_creates_nothing(alice, web) -> None:
    vector_store()  # this process plays the running web server: it owns the store
    config = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{config['USER']}@{config['HOST']}:{config['PORT'] or 5432}/{config['NAME']}",
        "FETCH_ALLOWLIST": "127.0.0.1",
    }

    command = subprocess.run(
        [sys.executable, "manage.py", "ingest", web.url("/notes.md"), "--user", "alice"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert command.returncode != 0
    assert f"is open in process {os.getpid()}" in command.stderr, command.stderr[-2000:]
    assert "can be opened by one process only" in command.stderr
    assert not Source.objects.exists()
