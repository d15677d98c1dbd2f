"""The Celery application. Without REDIS_URL, tasks run eagerly in the calling process."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multillm.settings")

app = Celery("multillm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _require_a_vector_store_server(**kwargs: object) -> None:
    """The embedded vector store can be opened by one process only: without a Qdrant server the
    web process ingests sources itself, and a separate worker must not start."""
    from django.conf import settings

    if not settings.QDRANT_ENDPOINT and not settings.QDRANT_EMBEDDED_WORKER:
        raise SystemExit(
            "A separate Celery worker needs QDRANT_ENDPOINT (a Qdrant server): the embedded vector store can be "
            "opened by one process only, and without a server the web process ingests sources itself."
        )
