"""Django's PostgreSQL backend, whose connection pool checks a connection without a round trip.

Django builds its psycopg pool with psycopg_pool's own check (an empty query on every checkout) when
``CONN_HEALTH_CHECKS`` is on, with none when it is off, and no setting passes another check: a ``check`` in
``OPTIONS["pool"]`` collides with the one Django passes. This backend takes Django's pool and gives it
preventicons.dbpool.check_without_round_trip; everything else is Django's. A test restarts PostgreSQL under
load (tests/preventicons/test_dbpool.py): it fails if this check is missing or wrong.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base

from preventicons.dbpool import check_without_round_trip


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> Any:
        pool = super().pool
        # Set before the pool opens (Django opens it on the first connection), and only once.
        if pool is not None and getattr(pool, "_check", None) is not check_without_round_trip:
            assert hasattr(pool, "_check"), "psycopg_pool changed: the pool check is no longer _check"
            pool._check = check_without_round_trip
        return pool
