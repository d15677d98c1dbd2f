"""Throwaway services for fault tests: a PostgreSQL cluster and a Redis of their own, on free
ports under a temporary directory, so a test can restart them. The machine's shared
PostgreSQL (5432) and Redis (6379) are never touched.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, _free_port


def _pg_binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        pytest.fail(f"{name} is missing: install PostgreSQL's server package (apt-get install postgresql)")
    return path


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class ThrowawayPostgres:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/faults"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([_pg_binary("pg_ctl"), "-D", str(self.directory / "data"), "-w", "-t", "30", *args]),
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", str(self.directory / "postgres.log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    directory = Path(tempfile.mkdtemp(prefix="multillm-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    subprocess.run(
        _as_postgres([_pg_binary("initdb"), "-D", str(directory / "data"), "-U", "postgres", "-A", "trust",
                      "--no-sync", "-E", "UTF8"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    server = ThrowawayPostgres(directory, _free_port())
    server.start()
    subprocess.run(
        [_pg_binary("createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "faults"],
        check=True,
        timeout=60,
    )
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class ThrowawayRedis:
    directory: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout != b"PONG\n":
            if time.monotonic() > deadline:
                pytest.fail("the throwaway redis-server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def throwaway_redis(tmp_path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path, _free_port())
    server.start()
    yield server
    server.stop()


@dataclass
class FaultApp:
    """The app under Daphne on the throwaway services, with a user, a session and a model."""

    url: str
    env: dict[str, str]
    session: str
    conversation: str

    def get(self, path: str, timeout: float = 15) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers={"Cookie": f"sessionid={self.session}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


SETUP = """
from django.contrib.auth.models import User
from django.test import Client
from chat.models import Conversation
from models_registry.models import Provider
from models_registry.services import provider_sync_models
import json, sys
user = User.objects.filter(username="carol").first() or User.objects.create_user("carol", password="carol-pw-123")
provider, _ = Provider.objects.update_or_create(name="ollama", defaults={"kind": "ollama", "base_url": sys.argv[-1]})
provider_sync_models(provider=provider)
client = Client()
client.force_login(user)
conversation = Conversation.objects.create(owner=user)
EXTRA_SETUP
print(json.dumps({"session": client.cookies["sessionid"].value, "conversation": str(conversation.uuid)}))
"""


@contextmanager
def fault_app(
    tmp_path: Path, *, database_url: str, redis_url: str, ollama_url: str, extra_env: dict[str, str] | None = None,
    setup: str = "",
) -> Iterator[FaultApp]:  # fmt: skip
    """`extra_env` adds to the server's environment; `setup` is Python run with `user` and `conversation` made."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_PREFIX": f"faults{os.getpid()}",
        "VAR_DIR": str(tmp_path),
        "DEBUG": "off",
        "SECRET_KEY": "fault-tests-only",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "LOG_LEVEL": "WARNING",
        "LOCAL_MODEL": "off",
        # Persistent connections are the hard case: they go stale when the server restarts. The
        # connection pool (on by default, and then CONN_MAX_AGE must be 0) keeps them.
        "CONN_MAX_AGE": "0",
        **(extra_env or {}),
    }

    def manage(*args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, timeout=300,
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            pytest.fail(f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    manage("migrate", "--noinput", "-v0")
    manage("collectstatic", "--noinput", "-v0")
    output = manage("shell", "-c", SETUP.replace("sys.argv[-1]", repr(ollama_url)).replace("EXTRA_SETUP", setup))
    created = json.loads(output.strip().splitlines()[-1])
    port = _free_port()
    log = open(tmp_path / "daphne.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "multillm.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    app = FaultApp(f"http://127.0.0.1:{port}", env, created["session"], created["conversation"])
    deadline = time.monotonic() + 30
    while True:
        try:
            if app.get("/healthz", timeout=1)[0] == 200:
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail(f"Daphne did not start:\n{(tmp_path / 'daphne.log').read_text()}")
            time.sleep(0.2)
    try:
        yield app
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
