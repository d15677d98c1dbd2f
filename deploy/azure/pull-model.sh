#!/usr/bin/env bash
# Pull a model into the deployment's Ollama (stored on the Azure Files share) with our
# `manage.py pull_model`, as a Container Apps job, then sync the registry: ./pull-model.sh llama3.2:1b
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$#" -eq 1 ] || die "usage: $0 MODEL (e.g. llama3.2:1b)"
model="$1"
case "$model" in *[!A-Za-z0-9._:/-]*|'') die "not a model name: '$model'" ;; esac
load_config
derive_names

log "job $PULL_JOB: pull_model $model"
az containerapp job update --name "$PULL_JOB" --resource-group "$RESOURCE_GROUP" \
  --args manage pull_model "$model" --output none
"$AZURE_DIR/run-job.sh" "$PULL_JOB"
