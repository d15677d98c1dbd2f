"""The app's settings without the chat app: `ingestion` must work on its own
(tests/ingestion/test_independence.py). Tables come straight from the models."""

from multillm.settings import *  # noqa: F403
from multillm.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "chat" and not app.startswith("chat.")]
ROOT_URLCONF = "tests.ingestion.settings_without_chat"
urlpatterns: list[object] = []
MIGRATION_MODULES = {
    label: None for label in ("auth", "contenttypes", "sessions", "admin", "models_registry", "ingestion")
}
