"""Model bundles offered to kiosks (docs/sync.md §7): ``detak server bundle key PEM`` sets the
bundle-signing public key that kiosks pin at enrolment; ``detak server bundle publish FILE``
verifies a signed bundle against it (`detak.export.bundle.verify_bundle`), copies it into the
content store and makes it the current offer for its name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from detak.server.audit import audit
from detak.server.filestore import LocalFileStore
from detak.server.models import Blob, Bundle, Setting

KEY_SETTING = "bundle_public_key"


class BundlePublishError(ValueError):
    """A bundle that cannot be published (no key set, does not verify)."""


def bundle_public_key(session: Session) -> str | None:
    """The PEM of the bundle-signing public key (None until an admin sets one)."""
    row = session.get(Setting, KEY_SETTING)
    return row.value if row else None


def set_bundle_key(session: Session, pem_path: str | Path, actor: str = "cli:admin") -> str:
    """Store the bundle public key (an Ed25519 SubjectPublicKeyInfo PEM); returns its id."""
    from detak.export.bundle import key_id, load_public_key

    pem = Path(pem_path).read_bytes()
    kid = key_id(load_public_key(pem))  # refuses anything but an Ed25519 public key
    session.execute(pg_insert(Setting).values(key=KEY_SETTING, value=pem.decode())
                    .on_conflict_do_update(index_elements=["key"], set_={"value": pem.decode()}))
    audit(session, actor, "bundle.key_set", detail={"key_id": kid})
    return kid


def publish_bundle(session: Session, store: LocalFileStore, path: str | Path,
                   actor: str = "cli:admin") -> Bundle:
    """Verify and publish the bundle file ``path``; returns its row."""
    from detak.export.bundle import BundleError, verify_bundle

    pem = bundle_public_key(session)
    if pem is None:
        raise BundlePublishError("no bundle public key: run `detak server bundle key PEM` first")
    try:
        manifest = verify_bundle(path, pem.encode())
    except BundleError as err:
        raise BundlePublishError(f"the bundle does not verify with the server's key: {err}") \
            from None
    data = Path(path).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if not store.has(sha):
        with tempfile.NamedTemporaryFile(dir=store.partial_dir, delete=False) as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        store.adopt(Path(tmp.name), sha)
    session.execute(pg_insert(Blob).values(sha256=sha, size=len(data)).on_conflict_do_nothing())
    version = str(manifest.data.get("version") or manifest.digest[:16])
    session.execute(pg_insert(Bundle).values(sha256=sha, name=manifest.name, version=version,
                                             size=len(data)).on_conflict_do_nothing())
    audit(session, actor, "bundle.publish", object_kind="bundle", object_id=sha)
    return session.get(Bundle, sha)


def current_offer(session: Session, name: str, installed: str | None) -> dict | None:
    """The offer for ``name`` if the newest published version differs from ``installed``."""
    row = session.scalar(select(Bundle).where(Bundle.name == name)
                         .order_by(Bundle.published_at.desc(), Bundle.sha256).limit(1))
    if row is None or row.version == installed:
        return None
    return {"name": row.name, "version": row.version, "sha256": row.sha256, "size": row.size,
            "url": f"/api/v1/bundles/{row.sha256}"}


