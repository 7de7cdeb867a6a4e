"""The model bundle a sync answer offers (docs/sync.md §7): download it, check its size and
SHA-256, verify it against the key pinned at enrolment and install it with
`detak.export.bundle.install_bundle` (atomic; the previous bundle stays on any failure).

>>> installed_version("edge", "/nonexistent") is None
True
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from detak.sync.errors import ApiError
from detak.sync.http import API, Session

log = logging.getLogger(__name__)

#: a bundle larger than this is refused before it is downloaded whole
MAX_BUNDLE_BYTES = 512 << 20
_SHA = re.compile(r"[0-9a-f]{64}")


def installed_version(name: str, root: str | Path | None = None) -> str | None:
    """The ``version`` in the manifest of the active bundle ``name`` (None: none installed)."""
    from detak.export.bundle import MANIFEST, active_bundle

    folder = active_bundle(name, root)
    if folder is None or not (folder / MANIFEST).is_file():
        return None
    version = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("version")
    return None if version is None else str(version)


def offer_problem(offer: Any) -> str | None:
    """None when ``offer`` is a well-formed bundle offer, else what is wrong with it."""
    if not isinstance(offer, dict):
        return "the offer is not an object"
    sha = offer.get("sha256")
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        return "the offer's sha256 is not 64 lower-case hex characters"
    if offer.get("url") != f"{API}/bundles/{sha}":
        return "the offer's url is not this server's bundle path for its sha256"
    size = offer.get("size")
    if not isinstance(size, int) or not 0 < size <= MAX_BUNDLE_BYTES:
        return f"the offer's size is not 1..{MAX_BUNDLE_BYTES} bytes"
    return None


def download_and_install(session: Session, offer: dict[str, Any], pinned_key_pem: str,
                         scratch: Path, root: str | Path | None = None) -> Path:
    """Fetch the offered bundle into ``scratch`` and install it; returns the installed
    folder. Raises `ApiError` (bad offer, size or hash) or a `BundleError` (signature or
    content); the active bundle is then the previous one."""
    from detak.export.bundle import install_bundle

    problem = offer_problem(offer)
    if problem:
        raise ApiError(200, "bad_bundle_offer", problem)
    fd, name = tempfile.mkstemp(prefix=".bundle-", suffix=".tmp", dir=scratch)
    path = Path(name)
    try:
        digest, got = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            resp = session.request("GET", offer["url"], stream=True)
            try:
                for block in resp.iter_bytes(1 << 16):
                    got += len(block)
                    if got > offer["size"]:
                        raise ApiError(200, "bundle_size_mismatch",
                                       f"more than the offered {offer['size']} bytes")
                    digest.update(block)
                    out.write(block)
            finally:
                resp.close()
        if got != offer["size"] or digest.hexdigest() != offer["sha256"]:
            raise ApiError(200, "bundle_hash_mismatch", f"got {got} bytes that do not hash "
                           "to the offered sha256")
        folder = install_bundle(path, pinned_key_pem.encode("ascii"), root)
    finally:
        path.unlink(missing_ok=True)
    log.info("bundle %s %s installed", offer.get("name"), offer.get("version"))
    return folder
