"""Handing out pooled PostgreSQL connections without a round trip, still refusing broken ones.

Django's pool (``OPTIONS["pool"]``) with ``CONN_HEALTH_CHECKS`` checks every connection it takes from the
pool with psycopg_pool's ``check_connection``: an empty query, one of the three round trips of a smiley
POST (issue #17). Without any check, a connection the server closed while it sat in the pool (a restart, a
failover, an idle timeout, ``pg_terminate_backend``) is handed out and the request fails on its first query.

A connection the server closes does not go quiet: the server sends an error message (``57P01 terminating
connection due to administrator command``) and closes the socket, so the idle connection's socket becomes
readable. An idle pooled connection has nothing to read otherwise (at most a notice or a parameter change).
So the check asks the kernel whether the socket has anything to read (a poll with no wait, no packet sent)
and only when it has, does the round trip: a closed connection then fails the check, and the pool throws it
away before it takes another. A connection that lost its peer silently (a cable, a firewall) is not seen
here; the request using it fails, Django returns it, and the pool discards it as broken on return.
"""

from __future__ import annotations

import select

import psycopg
from psycopg_pool import ConnectionPool

_READABLE = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP


def check_without_round_trip(connection: psycopg.Connection) -> None:
    """psycopg_pool's ``check`` callback: raise if the connection is closed or the server closed it."""
    if connection.closed or connection.broken:
        raise psycopg.OperationalError("the pooled connection is closed")
    poller = select.poll()
    poller.register(connection.pgconn.socket, _READABLE)
    if poller.poll(0):
        # Something arrived while the connection sat idle: a server's goodbye, or a harmless notice. Only
        # now ask the server (psycopg_pool's own check, one round trip): it raises for the goodbye.
        ConnectionPool.check_connection(connection)
