#!/bin/sh
# The image's entry point: one image, the process chosen by the first argument.
#   web      Daphne on 0.0.0.0:$PORT (8000); with MIGRATE_ON_START=on, migrates and ensures the admin first
#   worker   a Celery worker on the $CELERY_QUEUE queue ($CELERY_CONCURRENCY processes, default 2)
#   beat     the Celery beat scheduler (periodic model sync); run exactly one
#   migrate  database migrations, the first admin (DJANGO_SUPERUSER_USERNAME / _PASSWORD), a model sync
#   manage   any management command: `manage pull_model llama3.2:1b`
# Anything else is run as given (e.g. `sh`).
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

migrate() {
  python manage.py migrate --noinput
  python manage.py ensure_admin
  # Offer the providers' models at once (beat syncs again every MODELS_SYNC_INTERVAL seconds).
  python manage.py sync_models || echo "warning: the first model sync failed; beat will retry" >&2
}

case "$role" in
  web)
    if [ "${MIGRATE_ON_START:-off}" = "on" ]; then migrate; fi
    if [ "${LOCAL_MODEL:-off}" = "on" ]; then
      # Only in an image built with LOCAL_MODEL_BUILD=on: `serve` runs llama.cpp's server beside Daphne.
      exec python manage.py serve --host 0.0.0.0 --port "${PORT:-8000}"
    fi
    # --proxy-headers: the client address comes from the proxy's X-Forwarded-For.
    exec daphne --bind 0.0.0.0 --port "${PORT:-8000}" --proxy-headers multillm.asgi:application "$@"
    ;;
  worker)
    exec celery --app multillm worker --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" --hostname "${CELERY_HOSTNAME:-celery@%h}" "$@"
    ;;
  beat)
    exec celery --app multillm beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --schedule "${VAR_DIR:-/app/var}/celerybeat-schedule" "$@"
    ;;
  migrate)
    migrate
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
