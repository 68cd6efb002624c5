"""The participant table's row versions as pageinspect reads them, for tests that show a pass over every row
(a request batch with an act, a night that erases anyone: participants.rewrite) left one version per row."""

from __future__ import annotations

from django.db import connections

TABLE = "participants_participant"


def assert_every_row_written_once_by_the_last_pass(organisation_id: int) -> None:
    """Every participant row has exactly one live version written by the transaction that last renewed this
    organisation's index salt, and none that the transaction wrote and killed again, in itself or in one of
    its savepoints (a savepoint's writes carry a later xid of their own)."""
    from participants.models import Participant

    rows = Participant.objects.count()
    with connections["default"].cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        # The pass's transaction, from the organisation it renewed the salt of: a read of the participant
        # pages themselves could prune them first.
        cursor.execute("SELECT xmin::text FROM participants_organisation WHERE id = %s", [organisation_id])
        pass_xid = cursor.fetchone()[0]
        pages = f"(pg_relation_size('{TABLE}') / current_setting('block_size')::int)::int - 1"
        items = f"heap_page_items(get_raw_page('{TABLE}', page))"
        query = f"SELECT t_xmin::text, t_xmax::text FROM generate_series(0, {pages}) AS page, {items}"  # noqa: S608  # nosec B608  # the module's own name
        cursor.execute(query + " WHERE t_xmin IS NOT NULL")
        versions = cursor.fetchall()
    alive = [version for version in versions if version[0] == pass_xid and version[1] != pass_xid]
    assert len(alive) == rows
    assert not [
        version for version in versions if version[1] == pass_xid and int(version[0]) >= int(pass_xid)
    ]
