#!/usr/bin/env bash
# Start a Container Apps job of this deployment and wait for it: ./run-job.sh JOB_NAME
# Exits non-zero when the execution fails, with the command that shows its logs.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$#" -eq 1 ] || die "usage: $0 JOB_NAME"
job="$1"
load_config
derive_names

execution="$(az containerapp job start --name "$job" --resource-group "$RESOURCE_GROUP" --query name --output tsv)"
log "job $job: execution $execution started"
status=Running
for _ in $(seq 1 720); do
  status="$(az containerapp job execution show --name "$job" --resource-group "$RESOURCE_GROUP" \
    --job-execution-name "$execution" --query properties.status --output tsv)"
  case "$status" in
    Succeeded) log "job $job: $execution succeeded"; exit 0 ;;
    Failed|Stopped|Degraded) break ;;
  esac
  sleep 10
done
printf 'job %s: execution %s ended as %s. Its logs:\n  az containerapp job logs show --name %s --resource-group %s --execution %s --container job\n' \
  "$job" "$execution" "$status" "$job" "$RESOURCE_GROUP" "$execution" >&2
exit 1
