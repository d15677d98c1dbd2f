"""A source no longer names its conversation (chat's migration 0007 copied the links first);
a chunk's heading path is checked for what PostgreSQL cannot store."""

from django.db import migrations, models

import multillm.user_text


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0001_initial"),
    ]

    operations = [
        migrations.RemoveField(model_name="source", name="conversation"),
        migrations.AlterField(
            model_name="chunk",
            name="heading_path",
            field=models.JSONField(blank=True, default=list, validators=[multillm.user_text.validate_storable_json]),
        ),
    ]
