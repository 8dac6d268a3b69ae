"""Writes that survive a dropped connection or a restarted server, and say so when not.

Every writer method is one transaction whose writes are idempotent upserts, so running it
again is safe. When the connection is lost under it (the server terminated it, restarted,
or is briefly unreachable), the method runs again on a new connection, waiting up to
``RECONNECT_SECONDS`` in total. Anything else (a full disk, a read-only file) is not
transient: it becomes at once a StorageError with one line that says what happened.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from gradsweep.storage.errors import StorageError, reason

RECONNECT_SECONDS = 60.0
FIRST_WAIT = 0.2
LONGEST_WAIT = 5.0
log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def lost_connection(exc: DBAPIError) -> bool:
    """The connection went away (as opposed to a query or the data being wrong)."""
    if exc.connection_invalidated:
        return True
    module = type(exc.orig).__module__ or ""
    return isinstance(exc, OperationalError) and module.startswith("psycopg")


def describe(exc: DBAPIError) -> str:
    """The driver's message, one line, without the SQL or SQLAlchemy's link."""
    return reason(exc)


def reconnecting(method: F) -> F:
    """Run a writer method again on a new connection while the database is unreachable."""
    return _retrying(method, writes=True)


def reconnecting_reads(function: F) -> F:
    """The same for a read: a lost connection is retried, any other error is left as is."""
    return _retrying(function, writes=False)


def _retrying(method: F, writes: bool) -> F:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + RECONNECT_SECONDS
        wait = FIRST_WAIT
        while True:
            try:
                return method(*args, **kwargs)
            except DBAPIError as exc:
                if not lost_connection(exc):
                    if not writes:
                        raise
                    raise StorageError(f"cannot write the results: {describe(exc)}") from exc
                if time.monotonic() + wait > deadline:
                    raise StorageError(
                        f"the results database stayed unreachable for {RECONNECT_SECONDS:.0f} s "
                        f"({describe(exc)}); resume the study once it is back"
                    ) from exc
                log.warning("database connection lost (%s); retrying", describe(exc))
                time.sleep(wait)
                wait = min(wait * 2, LONGEST_WAIT)

    return wrapper  # type: ignore[return-value]
