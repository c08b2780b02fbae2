"""Leave half of each page of channel rows free, so that updating a channel's head (its
version, balances shown and pending proposal: two or three times per update across the nodes)
can write the new row version in the same page without touching any of the table's five
indexes (PostgreSQL's heap-only tuples). A channel row is about 2 KB; with full pages almost
every update moved the row to another page and added an entry to every index."""

from django.db import migrations

TABLE = "channels_app_channel"


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0004_channel_state_no_index_of_its_own_on_channel"),
    ]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE {TABLE} SET (fillfactor = 50)",
            reverse_sql=f"ALTER TABLE {TABLE} RESET (fillfactor)",
        ),
    ]
