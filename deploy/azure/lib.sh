#!/usr/bin/env bash
# Shared by the scripts in deploy/azure: configuration, logging, "create unless it exists".
# Sourced, not run.

set -euo pipefail

AZURE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONFIG_FILE="${CONFIG_FILE:-$AZURE_DIR/config.env}"
SECRETS_FILE="${SECRETS_FILE:-$AZURE_DIR/.secrets.env}"

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Export each NAME=value line of a file, unless NAME already has a value.
load_env_file() {
  local line name value
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    name="${line%%=*}"
    value="${line#*=}"
    if [ -z "${!name:-}" ]; then
      printf -v "$name" '%s' "$value"
      export "${name?}"
    fi
  done < "$1"
}

load_config() {
  [ -f "$CONFIG_FILE" ] || die "no $CONFIG_FILE: copy config.example.env to config.env and fill it in"
  # Values already in the environment win over the file (secrets may come from a CI secret store).
  load_env_file "$CONFIG_FILE"
  if [ -f "$SECRETS_FILE" ]; then
    load_env_file "$SECRETS_FILE"
  fi
  local required
  for required in LOCATION RESOURCE_GROUP PREFIX IMAGE ENVIRONMENT; do
    [ -n "${!required:-}" ] || die "$required is empty in $CONFIG_FILE"
  done
  case "$PREFIX" in *[!a-z0-9]*) die "PREFIX must be lowercase letters and digits, got '$PREFIX'" ;; esac
}

require_az() {
  command -v az >/dev/null || die "the Azure CLI (az) is not installed"
  az account show >/dev/null 2>&1 || die "not logged in: run 'az login'"
  if [ -n "${SUBSCRIPTION:-}" ]; then az account set --subscription "$SUBSCRIPTION"; fi
  az extension add --name containerapp --upgrade --only-show-errors >/dev/null
  az provider register --namespace Microsoft.App --only-show-errors >/dev/null
  az provider register --namespace Microsoft.OperationalInsights --only-show-errors >/dev/null
}

# exists <az words...>: true when `az <words...> show` finds the resource (quietly).
exists() {
  az "$@" --only-show-errors >/dev/null 2>&1
}

# url_quote VALUE: VALUE percent-encoded for the user or password part of a URL.
url_quote() {
  python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"
}

# secret NAME APP_SECRET: the value of a generated secret. Order: the environment or config.env, the local
# secrets file, the web app's Container Apps secret of that name (a re-run from another
# machine), else a new random value that is saved to the secrets file.
secret() {
  local name="$1" app_secret="$2" value="${!1:-}"
  if [ -z "$value" ] && exists containerapp show --name "$WEB_APP" --resource-group "$RESOURCE_GROUP"; then
    value="$(az containerapp secret show --name "$WEB_APP" --resource-group "$RESOURCE_GROUP" \
      --secret-name "$app_secret" --query value --output tsv 2>/dev/null || true)"
    if [ "$name" = POSTGRES_PASSWORD ] && [ -n "$value" ]; then
      # database-url holds the password: postgres://user:PASSWORD@host...
      value="${value#*://*:}"
      value="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.argv[1]))' "${value%%@*}")"
    fi
  fi
  if [ -z "$value" ]; then
    value="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
    umask 077
    printf '%s=%s\n' "$name" "$value" >> "$SECRETS_FILE"
  fi
  printf -v "$name" '%s' "$value"
  export "${name?}"
}

# Names derived from the prefix. Storage accounts: 3-24 lowercase letters and digits.
derive_names() {
  WORKSPACE="${PREFIX}-logs"
  STORAGE_ACCOUNT="${STORAGE_ACCOUNT:-${PREFIX}models$(printf '%s' "$RESOURCE_GROUP" | cksum | cut -c1-6)}"
  STORAGE_ACCOUNT="${STORAGE_ACCOUNT:0:24}"
  MODELS_SHARE=ollama-models
  POSTGRES_SERVER="${PREFIX}-pg"
  REDIS_NAME="${PREFIX}-redis"
  QDRANT_NAME="${PREFIX}-qdrant"
  WEB_APP="${PREFIX}-web"
  WORKER_APP="${PREFIX}-worker"
  BEAT_APP="${PREFIX}-beat"
  OLLAMA_APP="${PREFIX}-ollama"
  PULL_JOB="${PREFIX}-pull-model"
  MIGRATE_JOB="${PREFIX}-migrate"
  export WORKSPACE STORAGE_ACCOUNT MODELS_SHARE POSTGRES_SERVER REDIS_NAME QDRANT_NAME WEB_APP WORKER_APP \
    BEAT_APP OLLAMA_APP PULL_JOB MIGRATE_JOB
}
