from django.db import migrations

# On PostgreSQL the application cannot change or remove the ledger, its signed heads or an issued attestation:
# every UPDATE, DELETE and TRUNCATE on those tables raises. This guards against the application's own mistakes
# and an injected statement; a role that owns the tables could still disable the triggers, which is why each
# entry is sealed with a key the database does not hold and the tree heads are signed (notary.ledger.verify
# names whatever was changed, removed or slipped in).
TABLES = ("notary_ledgerentry", "notary_treehead", "notary_attestation")

FUNCTION = """
CREATE FUNCTION notary_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the notary''s % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""
TRIGGERS = """
CREATE TRIGGER {table}_append_only
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION notary_refuse_change();
CREATE TRIGGER {table}_no_truncate
    BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION notary_refuse_change();
"""
REMOVE_TRIGGERS = """
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
DROP TRIGGER IF EXISTS {table}_append_only ON {table};
"""
REMOVE_FUNCTION = "DROP FUNCTION IF EXISTS notary_refuse_change();"


def make_append_only(apps, schema_editor):
    # SQLite (the embedded default) has no such trigger here: the seals and signed heads still show tampering.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)
        for table in TABLES:
            schema_editor.execute(TRIGGERS.format(table=table), params=None)


def remove_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(REMOVE_TRIGGERS.format(table=table), params=None)
        schema_editor.execute(REMOVE_FUNCTION, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("notary", "0004_ledger_attestations_feedback"),
    ]

    operations = [
        # The hint places this operation in the casefiles store, where the notary lives (preventicons.dbrouter).
        migrations.RunPython(
            make_append_only, remove_append_only, hints={"model_name": "ledgerentry"}, elidable=False
        ),
    ]
