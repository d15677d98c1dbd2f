from celery import shared_task

from models_registry.services import models_sync_all


@shared_task(acks_late=True, ignore_result=True)
def models_sync() -> None:
    """Periodic sync of every provider's models (run by Celery beat)."""
    models_sync_all()
