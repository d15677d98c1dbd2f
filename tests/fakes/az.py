"""A fake Azure CLI for the deployment scripts' tests: it keeps which resources exist, answers
`show` with exit code 3 ("not found") until something created them, records every call, and
keeps the last YAML given for each app or job. Nothing leaves the machine.

State lives in $FAKE_AZ_STATE: `resources.json` (what exists), `calls.jsonl` (one argv per
line), `yaml/<name>.yaml`. Answers to `--query` are plausible fixed values.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

VERBS = {"show", "create", "add", "update", "set", "start", "register", "list-keys", "get-shared-keys", "list"}
NAME_OPTIONS = ("--name", "-n", "--workspace-name", "--database-name", "--workload-profile-name", "--account-name")
QUERY_ANSWERS = {
    "customerId": "00000000-0000-0000-0000-00000000cafe",
    "primarySharedKey": "workspace-key",
    "id": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/env",
    "properties.defaultDomain": "happy-sky-1234.swedencentral.azurecontainerapps.io",
    "[0].value": "storage-key==",
    "fullyQualifiedDomainName": "multillm-pg.postgres.database.azure.com",
    "hostName": "multillm-redis.redis.cache.windows.net",
    "primaryKey": "redis/key+with=odd",
    "name": "execution-1",
    "properties.status": "Succeeded",
}


def option(argv: list[str], *names: str) -> str:
    for index, word in enumerate(argv[:-1]):
        if word in names:
            return argv[index + 1]
    return ""


def main(argv: list[str]) -> int:
    state = Path(os.environ["FAKE_AZ_STATE"])
    state.mkdir(parents=True, exist_ok=True)
    with (state / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps(argv) + "\n")
    resources_file = state / "resources.json"
    resources = set(json.loads(resources_file.read_text())) if resources_file.exists() else set()

    verb_at = next((i for i, word in enumerate(argv) if word in VERBS), None)
    if argv[:2] == ["account", "show"] or verb_at is None:
        return 0
    verb = argv[verb_at]
    kind = " ".join(argv[:verb_at])
    if kind.endswith("workload-profile"):
        name = option(argv, "--workload-profile-name")
    elif kind.endswith("db"):
        name = option(argv, "--database-name")
    elif kind.endswith("share-rm"):
        name = option(argv, "--name", "-n")
    else:
        name = option(argv, *NAME_OPTIONS)
    key = f"{kind}:{name}"
    if verb == "show" and kind == "containerapp secret":
        return 3  # this fake keeps no secret values: the scripts fall back to their secrets file
    if verb == "show" and kind == "containerapp job execution":
        print(QUERY_ANSWERS["properties.status"])
        return 0
    if verb == "show":
        if key not in resources:
            sys.stderr.write(f"(ResourceNotFound) {key} was not found.\n")
            return 3
    elif verb in ("create", "add"):
        resources.add(key)
        if kind.startswith("containerapp add-on "):
            resources.add(f"containerapp:{name}")  # an add-on is a container app of its own
        resources_file.write_text(json.dumps(sorted(resources)))
    yaml_file = option(argv, "--yaml")
    if yaml_file:
        (state / "yaml").mkdir(exist_ok=True)
        (state / "yaml" / f"{name}.yaml").write_text(Path(yaml_file).read_text())
    query = option(argv, "--query")
    if query:
        print(QUERY_ANSWERS.get(query, f"fake-{query}"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
