"""Production settings pass `check --deploy`; every page carries a Content-Security-Policy that
the templates respect (no inline script, no inline style)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.conftest import make_user

ROOT = Path(__file__).resolve().parent.parent


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / "deploy/.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def manage(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "ENV_FILE_DIR": str(tmp_path), "VAR_DIR": str(tmp_path / "var")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def test_the_production_env_passes_check_deploy_with_no_warning(tmp_path) -> None:
    production = {**env_example(), "SECRET_KEY": secrets.token_urlsafe(50)}

    result = manage(["check", "--deploy", "--fail-level", "WARNING"], production, tmp_path)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_names_what_a_bare_production_env_lacks(tmp_path) -> None:
    """The control: the same check fails, naming each setting, when the HTTPS settings are left out."""
    bare = {"DEBUG": "off", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "chat.example.com"}

    result = manage(["check", "--deploy", "--fail-level", "WARNING"], bare, tmp_path)

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


@pytest.mark.django_db
def test_pages_carry_the_policy_with_the_websocket_of_their_host() -> None:
    client = Client()
    client.force_login(make_user("alice"))

    policy = client.get("/")["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["img-src"] == "'self' data:" and directives["object-src"] == "'none'"
    assert directives["connect-src"] == "'self' ws://testserver"
    assert directives["frame-ancestors"] == "'none'" and directives["default-src"] == "'self'"


def test_behind_a_tls_proxy_the_websocket_source_is_wss(settings) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    policy = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")["Content-Security-Policy"]

    assert "connect-src 'self' wss://testserver" in policy


def test_templates_and_scripts_have_no_inline_script_or_style() -> None:
    offences = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag:
                offences.append(f"{path.name}: inline {tag}")
        offences += [f"{path.name}: handler {m}" for m in re.findall(r"\son[a-z]+\s*=", text)]
        offences += [f"{path.name}: style attribute" for _ in re.findall(r"\sstyle\s*=", text)]
        offences += [f"{path.name}: javascript: URL" for _ in re.findall(r"javascript:", text, re.IGNORECASE)]
    for path in sorted((ROOT / "static/js").rglob("*.js")):
        text = path.read_text()
        for pattern in (r"\beval\(", r"new Function\(", r"setAttribute\(\s*[\"']on", r"setAttribute\(\s*[\"']style"):
            offences += [f"{path.name}: {pattern}" for _ in re.findall(pattern, text)]
        offences += [f"{path.name}: inline style in markup" for _ in re.findall(r"<[a-z]+[^>]*\sstyle=", text)]

    assert offences == []
