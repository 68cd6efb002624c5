"""VACUUM FULL that keeps no dead row version, for the migrations that seal or drop clear values.

VACUUM FULL writes a table anew, but it copies into the new file every dead row version that a transaction
still running might see ("recently dead"): the clear value a sealing UPDATE replaced, kept for good. Which
transactions count is PostgreSQL's own reckoning, and not all of them show in ``pg_stat_activity`` under the
database: a connection still starting up (of any database, with its first snapshot) counts for every
database. So instead of guessing beforehand, each rewrite reports (VERBOSE) how many dead versions it could
not remove, and the table is written again until none, for at most ``wait_seconds``.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

# cluster.c's DETAIL of VACUUM FULL VERBOSE, as the server writes it in English (lc_messages C or en).
_KEPT = re.compile(r"(\d+) dead row versions cannot be removed yet")
WAIT_SECONDS = 120.0


def vacuum_full(connection: BaseDatabaseWrapper, table: str, *, wait_seconds: float = WAIT_SECONDS) -> int:
    """Write ``table`` anew until the rewrite keeps no dead row version; return how many the last one kept
    (0 when clean; more, with a warning, when a transaction held them past ``wait_seconds``). Outside any
    transaction (a non-atomic migration). Nothing on SQLite, where ``VACUUM`` is run by hand."""
    if connection.vendor != "postgresql":
        return 0
    connection.ensure_connection()
    raw: Any = connection.connection
    kept: list[int] = []

    def notice(diagnostic: Any) -> None:
        found = _KEPT.search(diagnostic.message_detail or "")
        if found:
            kept.append(int(found.group(1)))

    quoted = connection.ops.quote_name(table)
    deadline = time.monotonic() + wait_seconds
    raw.add_notice_handler(notice)
    try:
        while True:
            kept.clear()
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM (FULL, VERBOSE) {quoted}")
            left = sum(kept)
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    finally:
        raw.remove_notice_handler(notice)
    if left:
        logger.warning(
            "VACUUM FULL %s kept %d dead row versions that a running transaction may still see: run it again "
            "once that transaction has ended",
            table,
            left,
        )
    return left
