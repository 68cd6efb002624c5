"""The hash-chained ledger of the first sketch was never written to: it makes way for the Merkle ledger."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("notary", "0002_dutch_verbose_names")]

    operations = [migrations.DeleteModel(name="LedgerEntry")]
