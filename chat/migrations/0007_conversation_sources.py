"""Sources move under conversations: chat records which sources a conversation uses, so the
ingestion app no longer knows the chat app. Each source's conversation is copied into the new
link before ingestion's migration 0002 drops the old column."""

from django.db import migrations, models

import multillm.user_text


def copy_links(apps, schema_editor):
    Source = apps.get_model("ingestion", "Source")
    Link = apps.get_model("chat", "Conversation")._meta.get_field("sources").remote_field.through
    Link.objects.bulk_create(
        [
            Link(conversation_id=conversation_id, source_id=source_id)
            for source_id, conversation_id in Source.objects.filter(conversation__isnull=False).values_list(
                "id", "conversation_id"
            )
        ],
        batch_size=1000,
    )


def copy_links_back(apps, schema_editor):
    Source = apps.get_model("ingestion", "Source")
    Link = apps.get_model("chat", "Conversation")._meta.get_field("sources").remote_field.through
    for link in Link.objects.all():
        Source.objects.filter(pk=link.source_id).update(conversation_id=link.conversation_id)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0006_vote"),
        ("ingestion", "0001_initial"),
    ]
    # The old column must still be there to be copied.
    run_before = [("ingestion", "0002_source_conversation_moves_to_chat")]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="sources",
            field=models.ManyToManyField(
                blank=True,
                help_text="Sources attached to this conversation: its answers are grounded in them.",
                related_name="conversations",
                to="ingestion.source",
            ),
        ),
        migrations.RunPython(copy_links, copy_links_back),
        # JSON that admin forms take is checked for what PostgreSQL cannot store (NUL, lone surrogates).
        migrations.AlterField(
            model_name="conversation",
            name="selected_models",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Model ids picked in the composer (several for side by side).",
                validators=[multillm.user_text.validate_storable_json],
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="citations",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Passages of sources given to the model.",
                validators=[multillm.user_text.validate_storable_json],
            ),
        ),
        migrations.AlterField(
            model_name="vote",
            name="contenders",
            field=models.JSONField(
                default=list,
                help_text="Model ids of the compared answers, by column.",
                validators=[multillm.user_text.validate_storable_json],
            ),
        ),
    ]
