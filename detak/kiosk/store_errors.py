"""The named errors of the kiosk store (one line each; ``detak`` exits 1 on them).

>>> from detak.errors import error_line, exit_code
>>> err = CorruptStoreError("/srv/store/detak.sqlite3: file is not a database")
>>> error_line("store check", err), exit_code(err)
('detak store check: error: /srv/store/detak.sqlite3: file is not a database', 1)
"""

from __future__ import annotations

from datetime import datetime

from detak.errors import DetakError


class StoreError(DetakError):
    """A store that cannot be opened or used, or a request the store refuses."""


class StoreLocationError(StoreError):
    """The store folder cannot be used (it is a file, missing, or not writable)."""


class CorruptStoreError(StoreError):
    """The database file is not a SQLite database, or SQLite finds it damaged."""


class SchemaVersionError(StoreError):
    """The database was written by a newer detak (its schema version is unknown here)."""


class InvalidScreeningError(StoreError):
    """A screening that cannot be saved (no ``id``, no ``created_at``, not JSON ...)."""


class DuplicateError(StoreError):
    """A resident number, nurse name or screening id that is already in the store."""


class NotFoundError(StoreError, KeyError):
    """No resident, nurse or screening with that id."""

    def __str__(self) -> str:  # KeyError quotes its message
        return str(self.args[0]) if self.args else ""


class NurseLockedError(StoreError):
    """Too many wrong PINs: the nurse's sign-in is locked until ``until`` (UTC)."""

    def __init__(self, until: datetime) -> None:
        super().__init__("too many wrong PINs: sign-in is locked until "
                         f"{until.strftime('%Y-%m-%d %H:%M:%S')} UTC")
        self.until = until
