"""The content-addressed file store of the server: each blob under its SHA-256.

Layout under ``DIR/blobs``: ``ab/abcdef…`` (complete blobs, named by the lower-case hex SHA-256
of their bytes, read-only 0400 … 0600) and ``partial/<sha>`` (uploads in flight, see
`detak.server.blobs`). `LocalFileStore` is the one backend; an object-store backend would
implement the same five methods (`has`, `path`, `open`, `adopt`, `size`).

>>> import tempfile, hashlib
>>> fs = LocalFileStore(tempfile.mkdtemp())
>>> p = fs.partial_path("a" * 64); _ = p.write_bytes(b"x")
>>> sha = hashlib.sha256(b"x").hexdigest()
>>> fs.adopt(p, sha) and fs.has(sha), fs.open(sha).read()
(True, b'x')
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

from detak.device.chunks import fsync_dir

SHA256_RE = re.compile(r"[0-9a-f]{64}")


def check_sha(sha: str) -> str:
    """``sha`` if it is 64 lower-case hex characters, else ValueError (no path from other text).

    >>> check_sha("../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: not a SHA-256 name
    """
    if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
        raise ValueError("not a SHA-256 name")
    return sha


class LocalFileStore:
    """Blobs as files under ``root/blobs``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root) / "blobs"
        self.partial_dir = self.root / "partial"
        self.partial_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, sha: str) -> Path:
        sha = check_sha(sha)
        return self.root / sha[:2] / sha

    def partial_path(self, sha: str) -> Path:
        return self.partial_dir / check_sha(sha)

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def size(self, sha: str) -> int:
        return self.path(sha).stat().st_size

    def open(self, sha: str) -> BinaryIO:
        return self.path(sha).open("rb")

    def adopt(self, tmp: Path, sha: str) -> bool:
        """Move the fsynced file ``tmp`` into the store as ``sha`` (atomic rename, the store's
        folder fsynced: the new name is durable); returns True. The folder ``tmp`` left is not
        fsynced: should a crash bring its old name back there, the start's recovery
        (`detak.server.blobs.recover`) removes a partial file without a record and adopts the
        stored copy of one with a record."""
        final = self.path(sha)
        final.parent.mkdir(exist_ok=True, mode=0o700)
        os.chmod(tmp, 0o600)
        os.replace(tmp, final)
        fsync_dir(final.parent)
        return True
