"""The container's health check: `python -m multillm.probe [web|worker|beat]`, exit 0 when healthy.

Without an argument the role is read from the command line of process 1, which Docker's
HEALTHCHECK runs beside, so one image checks whichever process it runs:

* web: `GET /healthz` on 127.0.0.1:$PORT (8000) answers 200.
* worker: this container's Celery worker ($CELERY_HOSTNAME, `celery@<hostname>`) answers a ping
  through the broker.
* beat: the broker (Redis) answers; beat itself has nothing to ask, and a dead beat ends the container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celery import Celery

import os
import socket
import sys
import urllib.request
from pathlib import Path

TIMEOUT = 5.0


def role_of_process_one() -> str:
    try:
        argv = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "web"
    words = {word.decode(errors="replace").rsplit("/", 1)[-1] for word in argv}
    if "worker" in words:
        return "worker"
    if "beat" in words:
        return "beat"
    return "web"


def check_web() -> str:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP_PROXY
    with direct.open(url, timeout=TIMEOUT) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
    return f"{url} ok"


def _celery_app() -> Celery:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multillm.settings")
    import django

    django.setup()
    from multillm.celery import app

    return app


def check_worker() -> str:
    name = os.environ.get("CELERY_HOSTNAME", "celery@%h").replace("%h", socket.gethostname())
    replies = _celery_app().control.ping(destination=[name], timeout=TIMEOUT)
    if not any(name in reply for reply in replies):
        raise RuntimeError(f"worker {name} did not answer a ping")
    return f"worker {name} ok"


def check_beat() -> str:
    app = _celery_app()
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=TIMEOUT)
    return "broker ok"


CHECKS = {"web": check_web, "worker": check_worker, "beat": check_beat}


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else role_of_process_one()
    if role not in CHECKS:
        sys.stderr.write(f"unknown role {role!r}: use web, worker or beat\n")
        return 2
    try:
        sys.stdout.write(CHECKS[role]() + "\n")
    except Exception as exc:  # any failure is "unhealthy", said in one line for `docker inspect`
        sys.stdout.write(f"{role} unhealthy: {type(exc).__name__}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
