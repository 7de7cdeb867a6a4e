"""The named errors of the sync client (one line each; ``detak sync`` exits 1 on them, 2 on
`InsecureURLError` and `NotEnrolledError`, which the command line can fix).

>>> from detak.errors import exit_code
>>> exit_code(InsecureURLError("x")), exit_code(ServerUnreachableError("x"))
(2, 1)
"""

from __future__ import annotations

from detak.errors import DetakError, UsageError


class SyncError(DetakError):
    """A sync that could not be done; subclasses say why."""


class InsecureURLError(UsageError, SyncError):
    """A plain ``http://`` server URL that is not a loopback address, without ``--insecure``."""


class NotEnrolledError(UsageError, SyncError):
    """The store has no enrolment: run ``detak sync enroll URL CODE --store DIR`` first."""


class EnrolmentError(SyncError):
    """The server refused the enrolment (a used, expired or unknown code) or answered oddly."""


class ServerUnreachableError(SyncError):
    """The server did not answer (connection errors, timeouts, 5xx, 429) within the retries."""


class ServerBusyError(ServerUnreachableError):
    """The server kept answering ``503 overloaded`` for longer than one run waits: nothing is
    wrong, the next run goes on (docs/sync.md §8.1)."""


class KioskRevokedError(SyncError):
    """The server revoked this kiosk: it stops syncing until it is enrolled again."""


class ApiError(SyncError):
    """The server answered a request with an error that retrying does not cure."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(f"the server answered {status} {code}" + (f": {message}"
                                                                   if message else ""))
        self.status, self.code, self.detail = status, code, message
