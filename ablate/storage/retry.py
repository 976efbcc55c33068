"""Storage calls that ride out a database restart: retry with backoff, then a clear message."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ablate.errors import AblateError
from ablate.secrets import first_line

_log = logging.getLogger("ablate.storage")
T = TypeVar("T")


def call_with_retry(
    fn: Callable[..., T], *args: Any, timeout: float | None = None, **kwargs: Any
) -> T:
    """Call a storage function, retrying with backoff while the database is unreachable.

    Gives up after ``timeout`` seconds (default: ABLATE_STORAGE_TIMEOUT, or 300) with a
    message naming the problem; nothing already recorded in storage is affected.
    """
    limit = float(os.environ.get("ABLATE_STORAGE_TIMEOUT", "300")) if timeout is None else timeout
    deadline = time.monotonic() + limit
    delay = 0.5
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            cause = _connection_cause(err)
            if cause is None:
                raise
            reason = first_line(getattr(cause, "orig", None) or cause)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AblateError(
                    f"the storage database has been unreachable for {limit:.0f} s "
                    f"({reason}). Every result recorded before remains in storage; start the "
                    "database again and rerun the same command to carry on."
                ) from None
            _log.warning("storage unreachable (%s); retrying in %.0f s", reason, min(delay, left))
            time.sleep(min(delay, left))
            delay = min(delay * 2, 15.0)


def _connection_cause(err: BaseException) -> BaseException | None:
    """The database-connection failure behind ``err``, following its causes, if any.

    Optuna wraps SQLAlchemy's errors in StorageInternalError, and a connection cut in the
    middle of a transaction surfaces as PendingRollbackError over an OperationalError.
    """
    try:
        import sqlalchemy.exc as sa_exc
    except ImportError:  # pragma: no cover
        return None
    kinds = (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.PendingRollbackError,
        sa_exc.DisconnectionError,
    )
    seen: set[int] = set()
    current: BaseException | None = err
    found = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kinds) or (
            isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated
        ):
            found = current  # keep going: the innermost one says what happened
        current = current.__cause__ or current.__context__
    return found
