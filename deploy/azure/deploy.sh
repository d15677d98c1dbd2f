#!/usr/bin/env bash
# Deploy Multi-LLM Chat to Azure Container Apps, or bring an existing deployment up to date.
# Safe to re-run: each resource is created only when missing, and the apps and jobs are
# updated in place from the same definitions. Parameters: config.env (see config.example.env).
#
#   ./deploy.sh            everything, then migrations and the first model
#   ./deploy.sh --no-pull  everything but the model pull
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PULL=yes
for arg in "$@"; do
  case "$arg" in
    --no-pull) PULL=no ;;
    *) die "unknown argument $arg (use --no-pull)" ;;
  esac
done

load_config
derive_names
require_az
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
chmod 700 "$WORK"

log "resource group $RESOURCE_GROUP in $LOCATION"
az group create --name "$RESOURCE_GROUP" --location "$LOCATION" --output none

log "Log Analytics workspace $WORKSPACE"
if ! exists monitor log-analytics workspace show --resource-group "$RESOURCE_GROUP" --workspace-name "$WORKSPACE"; then
  az monitor log-analytics workspace create --resource-group "$RESOURCE_GROUP" --workspace-name "$WORKSPACE" \
    --location "$LOCATION" --output none
fi
WORKSPACE_ID="$(az monitor log-analytics workspace show --resource-group "$RESOURCE_GROUP" \
  --workspace-name "$WORKSPACE" --query customerId --output tsv)"
WORKSPACE_KEY="$(az monitor log-analytics workspace get-shared-keys --resource-group "$RESOURCE_GROUP" \
  --workspace-name "$WORKSPACE" --query primarySharedKey --output tsv)"

log "Container Apps environment $ENVIRONMENT (workload profiles)"
if ! exists containerapp env show --name "$ENVIRONMENT" --resource-group "$RESOURCE_GROUP"; then
  az containerapp env create --name "$ENVIRONMENT" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
    --enable-workload-profiles --logs-workspace-id "$WORKSPACE_ID" --logs-workspace-key "$WORKSPACE_KEY" \
    --output none
fi
ENVIRONMENT_ID="$(az containerapp env show --name "$ENVIRONMENT" --resource-group "$RESOURCE_GROUP" \
  --query id --output tsv)"
DEFAULT_DOMAIN="$(az containerapp env show --name "$ENVIRONMENT" --resource-group "$RESOURCE_GROUP" \
  --query properties.defaultDomain --output tsv)"

log "GPU workload profile $GPU_PROFILE_NAME ($GPU_PROFILE_TYPE)"
if ! exists containerapp env workload-profile show --name "$ENVIRONMENT" --resource-group "$RESOURCE_GROUP" \
  --workload-profile-name "$GPU_PROFILE_NAME"; then
  az containerapp env workload-profile add --name "$ENVIRONMENT" --resource-group "$RESOURCE_GROUP" \
    --workload-profile-name "$GPU_PROFILE_NAME" --workload-profile-type "$GPU_PROFILE_TYPE" --output none
fi

log "Azure Files share $MODELS_SHARE in $STORAGE_ACCOUNT (Ollama's models)"
if ! exists storage account show --name "$STORAGE_ACCOUNT" --resource-group "$RESOURCE_GROUP"; then
  az storage account create --name "$STORAGE_ACCOUNT" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
    --sku Standard_LRS --kind StorageV2 --min-tls-version TLS1_2 --allow-blob-public-access false --output none
fi
STORAGE_KEY="$(az storage account keys list --account-name "$STORAGE_ACCOUNT" --resource-group "$RESOURCE_GROUP" \
  --query '[0].value' --output tsv)"
if ! exists storage share-rm show --storage-account "$STORAGE_ACCOUNT" --resource-group "$RESOURCE_GROUP" \
  --name "$MODELS_SHARE"; then
  az storage share-rm create --storage-account "$STORAGE_ACCOUNT" --resource-group "$RESOURCE_GROUP" \
    --name "$MODELS_SHARE" --quota 512 --output none
fi
az containerapp env storage set --name "$ENVIRONMENT" --resource-group "$RESOURCE_GROUP" \
  --storage-name "$MODELS_SHARE" --azure-file-account-name "$STORAGE_ACCOUNT" \
  --azure-file-account-key "$STORAGE_KEY" --azure-file-share-name "$MODELS_SHARE" --access-mode ReadWrite \
  --output none

log "secrets"
secret SECRET_KEY secret-key
secret POSTGRES_PASSWORD database-url
secret METRICS_TOKEN metrics-token
secret DJANGO_SUPERUSER_PASSWORD superuser-password

log "Azure Database for PostgreSQL $POSTGRES_SERVER"
if ! exists postgres flexible-server show --name "$POSTGRES_SERVER" --resource-group "$RESOURCE_GROUP"; then
  # Public access limited to Azure services (0.0.0.0); TLS is required by the server.
  az postgres flexible-server create --name "$POSTGRES_SERVER" --resource-group "$RESOURCE_GROUP" \
    --location "$LOCATION" --tier "$POSTGRES_TIER" --sku-name "$POSTGRES_SKU" --version "$POSTGRES_VERSION" \
    --admin-user "$POSTGRES_ADMIN" --admin-password "$POSTGRES_PASSWORD" --public-access 0.0.0.0 \
    --storage-size 32 --yes --output none
fi
if ! exists postgres flexible-server db show --server-name "$POSTGRES_SERVER" --resource-group "$RESOURCE_GROUP" \
  --database-name multillm; then
  az postgres flexible-server db create --server-name "$POSTGRES_SERVER" --resource-group "$RESOURCE_GROUP" \
    --database-name multillm --output none
fi
POSTGRES_HOST="$(az postgres flexible-server show --name "$POSTGRES_SERVER" --resource-group "$RESOURCE_GROUP" \
  --query fullyQualifiedDomainName --output tsv)"
DATABASE_URL="postgres://${POSTGRES_ADMIN}:$(url_quote "$POSTGRES_PASSWORD")@${POSTGRES_HOST}:5432/multillm?sslmode=require"

log "Azure Cache for Redis $REDIS_NAME (first creation takes ~15 minutes)"
if ! exists redis show --name "$REDIS_NAME" --resource-group "$RESOURCE_GROUP"; then
  az redis create --name "$REDIS_NAME" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" \
    --sku "$REDIS_SKU" --vm-size "$REDIS_VM_SIZE" --minimum-tls-version 1.2 --output none
fi
REDIS_HOST="$(az redis show --name "$REDIS_NAME" --resource-group "$RESOURCE_GROUP" --query hostName --output tsv)"
REDIS_KEY="$(az redis list-keys --name "$REDIS_NAME" --resource-group "$RESOURCE_GROUP" \
  --query primaryKey --output tsv)"
# The key may hold / + =: quoted for the URL. Celery and redis-py both want ssl_cert_reqs on rediss://.
REDIS_URL="rediss://:$(url_quote "$REDIS_KEY")@${REDIS_HOST}:6380/0?ssl_cert_reqs=required"

BIND_QDRANT=()
case "$QDRANT_MODE" in
  addon)
    log "Qdrant add-on $QDRANT_NAME (development grade; use QDRANT_MODE=external for production)"
    # An add-on is a container app of its own: `containerapp show` finds it.
    if ! exists containerapp show --name "$QDRANT_NAME" --resource-group "$RESOURCE_GROUP"; then
      az containerapp add-on qdrant create --name "$QDRANT_NAME" --resource-group "$RESOURCE_GROUP" \
        --environment "$ENVIRONMENT" --output none
    fi
    QDRANT_ENDPOINT="${QDRANT_ENDPOINT:-http://${QDRANT_NAME}:6333}"
    BIND_QDRANT=(--bind "$QDRANT_NAME")
    ;;
  external)
    [ -n "${QDRANT_ENDPOINT:-}" ] || die "QDRANT_MODE=external needs QDRANT_ENDPOINT"
    ;;
  *) die "QDRANT_MODE must be addon or external, got '$QDRANT_MODE'" ;;
esac

WEB_HOST="${CUSTOM_DOMAIN:-${WEB_APP}.${DEFAULT_DOMAIN}}"
OLLAMA_BASE_URL="http://${OLLAMA_APP}"

# yaml_quote VALUE: a double-quoted YAML scalar.
yaml_quote() {
  local value="$1"
  value="${value//\\/\\\\}"
  value="${value//\"/\\\"}"
  printf '"%s"' "$value"
}

# The app's secrets (Container Apps secrets; the containers see them as environment variables).
secrets_yaml() {
  local pair
  printf '    secrets:\n'
  for pair in "secret-key=$SECRET_KEY" "database-url=$DATABASE_URL" "redis-url=$REDIS_URL" \
    "metrics-token=$METRICS_TOKEN" "superuser-password=$DJANGO_SUPERUSER_PASSWORD" \
    "openai-api-key=${OPENAI_API_KEY:-none}" "qdrant-api-key=${QDRANT_API_KEY:-none}" \
    ${REGISTRY_PASSWORD:+"registry-password=$REGISTRY_PASSWORD"}; do
    printf '      - name: %s\n        value: %s\n' "${pair%%=*}" "$(yaml_quote "${pair#*=}")"
  done
  if [ -n "${REGISTRY_SERVER:-}" ] && [ -n "${REGISTRY_USERNAME:-}" ]; then
    printf '    registries:\n      - server: %s\n        username: %s\n        passwordSecretRef: registry-password\n' \
      "$(yaml_quote "$REGISTRY_SERVER")" "$(yaml_quote "$REGISTRY_USERNAME")"
  fi
}

# The settings of web, worker, beat and the jobs: production values, secrets by reference.
env_yaml() {
  local pair
  printf '        env:\n'
  for pair in SECRET_KEY=secret-key DATABASE_URL=database-url REDIS_URL=redis-url METRICS_TOKEN=metrics-token \
    DJANGO_SUPERUSER_PASSWORD=superuser-password; do
    printf '          - name: %s\n            secretRef: %s\n' "${pair%%=*}" "${pair#*=}"
  done
  if [ -n "${OPENAI_API_KEY:-}" ]; then
    printf '          - name: OPENAI_API_KEY\n            secretRef: openai-api-key\n'
  fi
  if [ -n "${QDRANT_API_KEY:-}" ]; then
    printf '          - name: QDRANT_API_KEY\n            secretRef: qdrant-api-key\n'
  fi
  for pair in "DEBUG=off" "ALLOWED_HOSTS=$WEB_HOST" "CSRF_TRUSTED_ORIGINS=https://$WEB_HOST" \
    "SECURE_PROXY_SSL_HEADER=on" "SECURE_SSL_REDIRECT=on" "SECURE_HSTS_SECONDS=31536000" \
    "SECURE_HSTS_INCLUDE_SUBDOMAINS=on" "SECURE_HSTS_PRELOAD=on" "CONN_MAX_AGE=60" \
    "OLLAMA_BASE_URL=$OLLAMA_BASE_URL" "PROVIDER_READ_TIMEOUT=300" "LOCAL_MODEL=off" \
    "QDRANT_ENDPOINT=$QDRANT_ENDPOINT" "AZURE_OPENAI_ENDPOINT=${AZURE_OPENAI_ENDPOINT:-}" \
    "AZURE_OPENAI_API_VERSION=${AZURE_OPENAI_API_VERSION:-2024-10-21}" \
    "MODEL_DEPLOYMENT_NAME=${MODEL_DEPLOYMENT_NAME:-}" "LOG_FORMAT=json" "METRICS_ENABLED=on" \
    "DJANGO_SUPERUSER_USERNAME=admin" "MIGRATE_ON_START=off"; do
    printf '          - name: %s\n            value: %s\n' "${pair%%=*}" "$(yaml_quote "${pair#*=}")"
  done
}

# app_yaml NAME ROLE CPU MEMORY MIN MAX INGRESS(external|none): a container app of our image.
app_yaml() {
  local name="$1" role="$2" cpu="$3" memory="$4" min="$5" max="$6" ingress="$7"
  cat <<EOF
location: $LOCATION
name: $name
type: Microsoft.App/containerApps
properties:
  managedEnvironmentId: $ENVIRONMENT_ID
  workloadProfileName: Consumption
  configuration:
    activeRevisionsMode: Single
EOF
  if [ "$ingress" = external ]; then
    # transport auto: HTTP/1.1 upgrades (websockets) and HTTP/2; no session affinity needed.
    printf '    ingress:\n      external: true\n      targetPort: 8000\n      transport: auto\n'
    printf '      allowInsecure: false\n'
  fi
  secrets_yaml
  cat <<EOF
  template:
    containers:
      - name: $role
        image: $(yaml_quote "$IMAGE")
        args: [$(yaml_quote "$role")]
        resources:
          cpu: $cpu
          memory: $memory
EOF
  env_yaml
  if [ "$role" = web ]; then
    cat <<EOF
        probes:
          - type: Startup
            httpGet: {path: /healthz, port: 8000}
            periodSeconds: 5
            failureThreshold: 30
          - type: Liveness
            httpGet: {path: /healthz, port: 8000}
            periodSeconds: 30
          - type: Readiness
            httpGet: {path: /readyz, port: 8000}
            periodSeconds: 15
            timeoutSeconds: 10
EOF
  fi
  printf '    scale:\n      minReplicas: %s\n      maxReplicas: %s\n' "$min" "$max"
}

# job_yaml NAME TIMEOUT ARGS...: a manual Container Apps job of our image.
job_yaml() {
  local name="$1" timeout="$2" arg args=""
  shift 2
  for arg in "$@"; do args="${args:+$args, }$(yaml_quote "$arg")"; done
  cat <<EOF
location: $LOCATION
name: $name
type: Microsoft.App/jobs
properties:
  environmentId: $ENVIRONMENT_ID
  workloadProfileName: Consumption
  configuration:
    triggerType: Manual
    replicaTimeout: $timeout
    replicaRetryLimit: 0
    manualTriggerConfig:
      parallelism: 1
      replicaCompletionCount: 1
EOF
  secrets_yaml
  cat <<EOF
  template:
    containers:
      - name: job
        image: $(yaml_quote "$IMAGE")
        args: [$args]
        resources:
          cpu: 1
          memory: 2Gi
EOF
  env_yaml
}

ollama_yaml() {
  cat <<EOF
location: $LOCATION
name: $OLLAMA_APP
type: Microsoft.App/containerApps
properties:
  managedEnvironmentId: $ENVIRONMENT_ID
  workloadProfileName: $GPU_PROFILE_NAME
  configuration:
    activeRevisionsMode: Single
    ingress:
      external: false
      targetPort: 11434
      transport: http
  template:
    containers:
      - name: ollama
        image: $(yaml_quote "$OLLAMA_IMAGE")
        resources:
          cpu: ${OLLAMA_CPU:-8}
          memory: ${OLLAMA_MEMORY:-56Gi}
        env:
          - name: OLLAMA_KEEP_ALIVE
            value: "30m"
        volumeMounts:
          - volumeName: models
            mountPath: /root/.ollama
    volumes:
      - name: models
        storageType: AzureFile
        storageName: $MODELS_SHARE
    scale:
      minReplicas: 1
      maxReplicas: ${OLLAMA_MAX_REPLICAS:-1}
EOF
}

# apply "KIND" NAME FILE: create from the YAML, or update in place when it exists.
# KIND is one string of az words: "containerapp" or "containerapp job".
apply() {
  local kind name="$2" file="$3"
  read -r -a kind <<< "$1"
  if exists "${kind[@]}" show --name "$name" --resource-group "$RESOURCE_GROUP"; then
    az "${kind[@]}" update --name "$name" --resource-group "$RESOURCE_GROUP" --yaml "$file" --output none
  else
    az "${kind[@]}" create --name "$name" --resource-group "$RESOURCE_GROUP" --yaml "$file" --output none
  fi
}

log "Ollama $OLLAMA_APP on the GPU profile (internal ingress, models on Azure Files)"
ollama_yaml > "$WORK/ollama.yaml"
apply containerapp "$OLLAMA_APP" "$WORK/ollama.yaml"

log "jobs $MIGRATE_JOB and $PULL_JOB"
job_yaml "$MIGRATE_JOB" 1800 migrate > "$WORK/migrate.yaml"
apply "containerapp job" "$MIGRATE_JOB" "$WORK/migrate.yaml"
job_yaml "$PULL_JOB" 7200 manage pull_model "$FIRST_MODEL" > "$WORK/pull.yaml"
apply "containerapp job" "$PULL_JOB" "$WORK/pull.yaml"

log "migrations (job $MIGRATE_JOB)"
"$AZURE_DIR/run-job.sh" "$MIGRATE_JOB"

log "web $WEB_APP (external ingress, websockets), worker $WORKER_APP, beat $BEAT_APP"
app_yaml "$WEB_APP" web 1.0 2Gi "$WEB_MIN_REPLICAS" "$WEB_MAX_REPLICAS" external > "$WORK/web.yaml"
apply containerapp "$WEB_APP" "$WORK/web.yaml"
app_yaml "$WORKER_APP" worker 2.0 4Gi "$WORKER_REPLICAS" "$WORKER_REPLICAS" none > "$WORK/worker.yaml"
apply containerapp "$WORKER_APP" "$WORK/worker.yaml"
# Exactly one beat, or periodic tasks run twice.
app_yaml "$BEAT_APP" beat 0.5 1Gi 1 1 none > "$WORK/beat.yaml"
apply containerapp "$BEAT_APP" "$WORK/beat.yaml"
if [ "${#BIND_QDRANT[@]}" -gt 0 ]; then
  for app in "$WEB_APP" "$WORKER_APP"; do
    az containerapp update --name "$app" --resource-group "$RESOURCE_GROUP" "${BIND_QDRANT[@]}" --output none
  done
fi

if [ "$PULL" = yes ]; then
  log "first model $FIRST_MODEL (job $PULL_JOB)"
  "$AZURE_DIR/pull-model.sh" "$FIRST_MODEL"
fi

log "done: https://$WEB_HOST (admin: 'admin', password in $SECRETS_FILE or the superuser-password secret)"
