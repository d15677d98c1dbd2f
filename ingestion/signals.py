"""What ingestion tells the apps that use it, without knowing them."""

from django.dispatch import Signal

# Sent by the default reporter (`ingestion.services.source_status_announce`) after a source's
# status was saved, with `source`: the Source row as saved.
source_status_changed = Signal()
