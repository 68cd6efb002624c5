# The copies of the notary's signed tree heads, in the identity store (preventicons.models.LogAnchor), so that
# removing the ledger's last entries together with its heads in the casefiles store is still found. On
# PostgreSQL the application cannot change or remove a copy (as notary 0005 does for the ledger itself).

from django.db import migrations, models

FUNCTION = """
CREATE FUNCTION preventicons_anchor_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the log anchors are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER preventicons_loganchor_append_only
    BEFORE UPDATE OR DELETE ON preventicons_loganchor
    FOR EACH ROW EXECUTE FUNCTION preventicons_anchor_refuse_change();
CREATE TRIGGER preventicons_loganchor_no_truncate
    BEFORE TRUNCATE ON preventicons_loganchor
    FOR EACH STATEMENT EXECUTE FUNCTION preventicons_anchor_refuse_change();
"""
REMOVE = """
DROP TRIGGER IF EXISTS preventicons_loganchor_no_truncate ON preventicons_loganchor;
DROP TRIGGER IF EXISTS preventicons_loganchor_append_only ON preventicons_loganchor;
DROP FUNCTION IF EXISTS preventicons_anchor_refuse_change();
"""


def make_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)


def remove_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REMOVE, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("preventicons", "0007_outbox_fewer_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="LogAnchor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("log", models.CharField(editable=False, max_length=32)),
                ("tree_size", models.PositiveBigIntegerField(editable=False)),
                ("root_hash", models.CharField(editable=False, max_length=64)),
                ("signed_at", models.DateTimeField(editable=False)),
                ("key_fingerprint", models.CharField(editable=False, max_length=64)),
                ("signature", models.CharField(editable=False, max_length=128)),
            ],
            options={
                "verbose_name": "log anchor",
                "verbose_name_plural": "log anchors",
                "constraints": [
                    models.UniqueConstraint(fields=("log", "tree_size"), name="one_anchor_per_log_size")
                ],
            },
        ),
        migrations.RunPython(
            make_append_only, remove_append_only, hints={"model_name": "loganchor"}, elidable=False
        ),
    ]
