"""Django's PostgreSQL backend, with a pool that checks a connection without a round trip
when it has nothing to check.

With ``CONN_HEALTH_CHECKS``, Django's pool checks each connection it hands out by running
an empty statement on it: one round trip to PostgreSQL every time a thread takes a
connection. Under ASGI every request, and every trip of a Daphne's database thread (each
chat send or heartbeat batch), takes one, so that was one statement in three of the chat
send path's trips.

A connection idle in the pool has nothing to read: whatever its server sends it then is
the server ending it (a restart, an administrator, an idle timeout: a last message and
the socket closed) or, rarely, a notice. So a connection is handed out unchecked when its
socket has nothing to read, and is checked by the empty statement, as before, when it has.
A server that vanished without closing its sockets (a host lost, not restarted) is not
seen this way, nor by the empty statement until its timeout; the statement that meets it
fails, and Django discards the connection then, as it always did.
"""

import select

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


def check_when_spoken_to(connection) -> None:  # noqa: ANN001 - a psycopg.Connection
    """The pool's ``check``: ``ConnectionPool.check_connection`` only for a connection whose
    server sent it something while it was idle (raises if it is gone)."""
    if connection.closed:
        ConnectionPool.check_connection(connection)  # (raises: it is closed)
        return
    poll = select.poll()  # (select.select refuses descriptors past 1023: a Daphne has more)
    poll.register(connection.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    if poll.poll(0):
        ConnectionPool.check_connection(connection)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):  # noqa: ANN201 - psycopg_pool.ConnectionPool | None
        made = self.alias not in self._connection_pools
        pool = super().pool
        if made and pool is not None and self.settings_dict["CONN_HEALTH_CHECKS"]:
            pool._check = check_when_spoken_to  # noqa: SLF001 - the pool's own check, replaced
        return pool
