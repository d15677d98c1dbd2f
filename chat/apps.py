from django.apps import AppConfig
from django.db.models.signals import pre_delete


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Chat"

    def ready(self) -> None:
        from chat import realtime, services
        from chat.models import Conversation
        from ingestion.signals import source_status_changed

        # A source's progress reaches its owner's sockets; a deleted conversation takes the
        # sources attached only to it along, whoever deletes it (the page, the admin, a cascade).
        source_status_changed.connect(realtime.source_status_publish, dispatch_uid="chat.source_status")
        pre_delete.connect(
            lambda sender, instance, **_: services.conversation_sources_delete(conversation=instance),
            sender=Conversation, weak=False, dispatch_uid="chat.conversation_sources",
        )  # fmt: skip
