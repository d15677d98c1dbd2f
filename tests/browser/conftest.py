"""A real Daphne serving the app (HTTP and websockets) on 127.0.0.1, and headless Chromium.

The server runs in a subprocess against the test database, so tests that use it write
their data with `transactional_db` (committed, hence visible to the server).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection, connections

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url() -> str:
    config = connection.settings_dict
    if config["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("browser tests need DATABASE_URL to point at PostgreSQL (see the README's test command)")
    password = f":{config['PASSWORD']}" if config["PASSWORD"] else ""
    return f"postgres://{config['USER']}{password}@{config['HOST']}:{config['PORT'] or 5432}/{config['NAME']}"


@pytest.fixture(scope="session")
def app_server(django_db_setup: None, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    """The app under Daphne on a free port; yields its base URL."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    var_dir = tmp_path_factory.mktemp("var")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "VAR_DIR": str(var_dir),
        "DEBUG": "off",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    port = _free_port()
    log = open(var_dir / "daphne.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "multillm.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail(f"Daphne did not start:\n{(var_dir / 'daphne.log').read_text()}")
            time.sleep(0.2)
    yield base_url
    server.terminate()
    server.wait(timeout=10)
    log.close()
    with django_db_blocker.unblock():
        _wait_for_other_sessions_to_end()


def _wait_for_other_sessions_to_end(timeout: float = 10) -> None:
    """Postgres ends a dead client's session a moment later; the test database can only
    be dropped once it has."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


@pytest.fixture
def page(app_server: str) -> Iterator[object]:
    """A fresh Chromium page on the app. Request it last: Playwright's sync API keeps an
    event loop running in this thread, after which fixtures can no longer use async_to_sync."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    # The ORM calls that tests make between browser steps are plain blocking calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(base_url=app_server)
            page = context.new_page()
            page.set_default_timeout(10_000)
            yield page
            browser.close()
            # ORM calls made while Playwright runs use their own connection (asgiref's
            # context-local storage sees a different context there): close it here.
            connections.close_all()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def log_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
