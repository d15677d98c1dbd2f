"""The deployment files, checked without Docker or Azure: the compose file, the env example, the
Dockerfile, and the Azure scripts (shellcheck, and two runs against a fake `az`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
SCRIPTS = [DEPLOY / "entrypoint.sh", *sorted((DEPLOY / "azure").glob("*.sh")), *sorted((ROOT / "scripts").glob("*.sh"))]
# Read by the settings module through these helpers (first argument: the variable's name).
READERS = r"(?:_typed|_positive|_url|_urls|env\.\w+|os\.environ\.get|os\.getenv)\(\s*\"([A-Z][A-Z0-9_]+)\""


def settings_variables() -> set[str]:
    found = set(re.findall(READERS, (ROOT / "multillm/settings.py").read_text()))
    assert len(found) > 50, "the pattern must still find the settings' variables"
    return found


def env_example_names() -> dict[str, str]:
    """Names in deploy/.env.example, set (`NAME=value`) or documented as a comment (`# NAME=value`)."""
    names = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]+)=(.*)$", line.strip())
        if match:
            names[match.group(2)] = match.group(3)
    return names


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_every_setting_is_documented_in_the_env_example() -> None:
    missing = settings_variables() - set(env_example_names())

    assert missing == set(), f"add these to deploy/.env.example: {sorted(missing)}"


def test_other_variables_read_by_the_app_are_documented_too() -> None:
    apps = ("multillm", "chat", "models_registry", "ingestion")
    code = " ".join(path.read_text() for app in apps for path in (ROOT / app).rglob("*.py"))
    read = set(re.findall(r"os\.environ(?:\.get)?[\[(]\"([A-Z][A-Z0-9_]+)\"", code))
    entrypoint = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):-", (DEPLOY / "entrypoint.sh").read_text()))

    missing = (read | entrypoint) - set(env_example_names()) - {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    assert missing == set(), f"add these to deploy/.env.example: {sorted(missing)}"


def test_compose_runs_every_service_with_health_checks_and_start_order() -> None:
    services = compose()["services"]

    assert set(services) >= {"postgres", "redis", "qdrant", "ollama", "web", "worker", "beat"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name in ("web", "worker", "beat"):
        service = services[name]
        assert service["command"] == [name] and service["env_file"] == ".env"
        assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        for dependency in ("postgres", "redis", "qdrant"):
            assert service["depends_on"][dependency] == {"condition": "service_healthy"}, (name, dependency)
    assert services["web"]["depends_on"]["ollama"] == {"condition": "service_healthy"}
    assert services["worker"]["depends_on"]["web"] == {"condition": "service_healthy"}
    assert services["worker"]["environment"]["MIGRATE_ON_START"] == "off"


def test_ollama_gets_the_gpu_and_keeps_models_on_a_named_volume() -> None:
    document = compose()
    ollama = document["services"]["ollama"]

    [device] = ollama["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "ollama-models:/root/.ollama" in ollama["volumes"]
    assert set(document["volumes"]) >= {"ollama-models", "postgres-data", "qdrant-data", "redis-data"}


def test_compose_variables_are_defined_in_the_env_example() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text))
    names = env_example_names()

    assert used - set(names) == set()
    for name in re.findall(r"\$\{([A-Z][A-Z0-9_]+):-([^}]+)\}", text):
        assert names[name[0]] == name[1], f"{name[0]}: compose's default and the example must agree"
    services = compose()["services"]
    assert services["web"]["environment"]["OLLAMA_BASE_URL"] == "http://ollama:11434"
    assert services["web"]["environment"]["QDRANT_ENDPOINT"] == "http://qdrant:6333"


def test_dockerfile_builds_in_stages_from_requirements_and_runs_as_a_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", text, re.MULTILINE)
    runtime = text.split("AS runtime", 1)[1]

    assert [stage for _, stage in stages] == ["build", "runtime"]
    assert all(image == "${PYTHON_IMAGE}" for image, _ in stages) and "python:3.11-slim" in text
    assert re.search(r"pip install -r /tmp/requirements/base\.txt", text)
    assert "pip install" not in runtime, "the runtime stage installs nothing"
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert "collectstatic" in runtime
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users == ["app:app"] and text.index("USER app:app") > text.index("collectstatic")
    assert "HEALTHCHECK" in runtime and '"multillm.probe"' in runtime
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in runtime and 'CMD ["web"]' in runtime
    assert "LOCAL_MODEL_BUILD=off" in text, "the built-in model is left out by default"


def test_the_image_leaves_out_tests_secrets_and_local_files() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()

    assert {".git", ".venv", "var", "tests", ".env", ".env.secret", "deploy/.env"} <= set(ignored)


def test_whitenoise_serves_the_collected_static_files() -> None:
    from django.conf import settings
    from django.utils.module_loading import import_string
    from whitenoise.middleware import WhiteNoiseMiddleware

    assert any(issubclass(import_string(path), WhiteNoiseMiddleware) for path in settings.MIDDLEWARE)
    assert settings.STORAGES["staticfiles"]["BACKEND"].startswith("whitenoise.storage.")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_scripts_pass_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: apt-get install shellcheck (.ci/run does)"
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    lint = subprocess.run([shellcheck, "-x", script.name], cwd=script.parent, capture_output=True, text=True)

    assert syntax.returncode == 0, syntax.stderr
    assert lint.returncode == 0, lint.stdout
    assert os.access(script, os.X_OK), f"{script.name} must be executable"


def run_deploy(tmp_path: Path) -> list[list[str]]:
    """deploy.sh against the fake az; returns this run's calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "az").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT}/tests/fakes/az.py" "$@"\n')
    (bin_dir / "az").chmod(0o755)
    calls_file = tmp_path / "state" / "calls.jsonl"
    before = calls_file.read_text().count("\n") if calls_file.exists() else 0
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_AZ_STATE": str(tmp_path / "state"),
        "CONFIG_FILE": str(DEPLOY / "azure/config.example.env"),
        "SECRETS_FILE": str(tmp_path / "secrets.env"),
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        ["bash", str(DEPLOY / "azure/deploy.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in calls_file.read_text().splitlines()[before:]]


def creations(calls: list[list[str]]) -> list[str]:
    """`<kind> create` (or `add`) for each resource made; adding the CLI extension does not count."""
    made = []
    for call in calls:
        verb = next((i for i, word in enumerate(call) if word in ("create", "add")), None)
        if verb is not None and call[0] != "extension":
            made.append(" ".join(call[: verb + 1]))
    return made


def test_azure_deploy_creates_everything_once_and_a_rerun_only_updates(tmp_path) -> None:
    first = run_deploy(tmp_path)
    web_first = yaml.safe_load((tmp_path / "state/yaml/multillm-web.yaml").read_text())
    second = run_deploy(tmp_path)
    web_second = yaml.safe_load((tmp_path / "state/yaml/multillm-web.yaml").read_text())

    made = creations(first)
    for expected in (
        "group create", "monitor log-analytics workspace create", "containerapp env create",
        "storage account create", "storage share-rm create", "postgres flexible-server create",
        "postgres flexible-server db create", "redis create", "containerapp add-on qdrant create",
        "containerapp env workload-profile add", "containerapp create", "containerapp job create",
    ):  # fmt: skip
        assert expected in made, expected
    assert creations(second) == ["group create"], "a re-run creates nothing but the (idempotent) group"
    assert sum(call[:2] == ["containerapp", "update"] and "--yaml" in call for call in second) == 4
    assert web_first["properties"]["configuration"]["secrets"] == web_second["properties"]["configuration"]["secrets"]
    pulls = [call for call in first if call[:3] == ["containerapp", "job", "update"]]
    assert pulls and pulls[-1][pulls[-1].index("--args") + 1 :][:3] == ["manage", "pull_model", "llama3.2:1b"]


def test_azure_apps_are_defined_as_the_issue_asks(tmp_path) -> None:
    run_deploy(tmp_path)
    apps = {path.stem: yaml.safe_load(path.read_text()) for path in (tmp_path / "state/yaml").glob("*.yaml")}

    web = apps["multillm-web"]["properties"]
    assert web["configuration"]["ingress"]["external"] is True
    assert web["configuration"]["ingress"]["transport"] == "auto", "websockets pass"
    [container] = web["template"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    secret_values = {item["value"] for item in web["configuration"]["secrets"]}
    assert env["SECRET_KEY"] == {"name": "SECRET_KEY", "secretRef": "secret-key"}
    assert env["DATABASE_URL"]["secretRef"] == "database-url" and env["REDIS_URL"]["secretRef"] == "redis-url"
    assert not any(item.get("value") in secret_values for item in container["env"]), "no secret in plain env"
    assert env["ALLOWED_HOSTS"]["value"] == "multillm-web.happy-sky-1234.swedencentral.azurecontainerapps.io"
    assert env["SECURE_PROXY_SSL_HEADER"]["value"] == "on" and env["LOCAL_MODEL"]["value"] == "off"
    assert {probe["type"] for probe in container["probes"]} == {"Startup", "Liveness", "Readiness"}
    assert apps["multillm-beat"]["properties"]["template"]["scale"] == {"minReplicas": 1, "maxReplicas": 1}
    assert "ingress" not in apps["multillm-worker"]["properties"]["configuration"]

    ollama = apps["multillm-ollama"]["properties"]
    assert ollama["workloadProfileName"] == "gpu"
    assert ollama["configuration"]["ingress"]["external"] is False
    assert ollama["template"]["containers"][0]["volumeMounts"] == [
        {"volumeName": "models", "mountPath": "/root/.ollama"}
    ]
    assert ollama["template"]["volumes"][0] == {
        "name": "models",
        "storageType": "AzureFile",
        "storageName": "ollama-models",
    }
    job = apps["multillm-pull-model"]["properties"]
    assert job["configuration"]["triggerType"] == "Manual"
    assert job["template"]["containers"][0]["args"] == ["manage", "pull_model", "llama3.2:1b"]
