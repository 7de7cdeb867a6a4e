"""Signed model bundles: how a kiosk receives a model (``detak bundle create|verify|install``).

A bundle is a gzip-compressed tar holding

* ``manifest.json`` — format, bundle name and version, model name and architecture, label names,
  the rule-set versions (SHA-256 of each shipped rule-set TOML), the detak version, the signing
  key's id, and for every file its size and SHA-256;
* ``manifest.sig`` — an Ed25519 signature (base64) of the exact bytes of ``manifest.json``;
* ``files/…`` — the model files (``*.onnx``, ``*.tflite``; ``*.pt`` only on request), the model
  card (``card.json``), the export card (``export.json``), the preprocessing statistics
  (``standardizer.json``) and ``labels.json`` (class names).

`verify_bundle` reads the whole archive (a truncated one fails to decompress:
`BundleTruncatedError`), checks the signature against the kiosk's public key
(`BundleSignatureError`: wrong key, or the manifest was altered), then every file's size and
hash (`BundleTamperedError`; a listed file that is absent is `BundleTruncatedError`). Unsafe
member names (absolute, ``..``, links, devices) are `BundleFormatError`.

`install_bundle` verifies, extracts into a staging folder, verifies the extracted files again,
moves them to ``ROOT/versions/NAME-DIGEST`` and only then switches ``ROOT/active/NAME`` (a
symlink) with one atomic rename: any failure leaves the previous bundle active. ROOT is
``$DETAK_BUNDLES`` or ``cache_dir()/bundles``; `active_bundle` gives the active folder, which
`detak.export.predict.resolve_model_dir` prefers to a shipped model of the same name.

Keys are PEM files (`generate_keypair`): PKCS#8 private key (mode 0600) on the build host,
SubjectPublicKeyInfo public key on the kiosks.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     priv, pub = generate_keypair(Path(d) / "k.pem", Path(d) / "k.pub")
...     key_id(load_public_key(pub)) == key_id(load_private_key(priv).public_key())
True
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from detak.models.model_card import sha256_file

__all__ = ["BUNDLE_FORMAT", "BundleError", "BundleFormatError", "BundleTruncatedError",
           "BundleSignatureError", "BundleTamperedError", "BundleKeyError", "Manifest",
           "generate_keypair", "load_private_key", "load_public_key", "key_id",
           "create_bundle", "verify_bundle", "install_bundle", "active_bundle", "active_bundles",
           "bundles_root",
           "rule_set_versions", "BUNDLES_ENV", "PUBLIC_KEY_ENV"]

BUNDLE_FORMAT = "detak-bundle/1"
BUNDLES_ENV = "DETAK_BUNDLES"
PUBLIC_KEY_ENV = "DETAK_BUNDLE_PUBLIC_KEY"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FILES_DIR = "files"
MODEL_SUFFIXES = (".onnx", ".tflite")
META_FILES = ("card.json", "export.json", "standardizer.json")
MAX_FILE_BYTES = 256 << 20


class BundleError(Exception):
    """A bundle that cannot be verified or installed; subclasses say why."""


class BundleFormatError(BundleError):
    """Not a detak bundle: wrong format, unsafe member names, malformed manifest."""


class BundleTruncatedError(BundleError):
    """The archive ends early or lacks a file its manifest lists."""


class BundleSignatureError(BundleError):
    """The manifest's signature does not verify with the given public key."""


class BundleTamperedError(BundleError):
    """A file's size or SHA-256 differs from the signed manifest, or a file is not listed."""


class BundleKeyError(BundleError):
    """A key file that is missing or not an Ed25519 PEM key."""


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A verified manifest: ``data`` (the parsed JSON) and the SHA-256 of its bytes."""

    data: dict[str, Any]
    digest: str

    @property
    def name(self) -> str:
        return str(self.data["bundle"])

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return dict(self.data["files"])


# ---------------------------------------------------------------- keys

def generate_keypair(private_path: str | Path, public_path: str | Path) -> tuple[Path, Path]:
    """A new Ed25519 key pair as PEM files (the private one readable by its owner only)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    priv, pub = Path(private_path), Path(public_path)
    for p in (priv, pub):
        if p.exists():
            raise BundleKeyError(f"{p}: already exists; refusing to overwrite a key")
        p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


def _read_key_bytes(source: str | Path | bytes, what: str) -> bytes:
    if isinstance(source, bytes):
        return source
    p = Path(source).expanduser()
    if not p.is_file():
        raise BundleKeyError(f"{what} {p}: no such file")
    return p.read_bytes()


def load_private_key(source: str | Path | bytes) -> Any:
    """An Ed25519 private key from a PEM file (or PEM bytes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_key_bytes(source, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise BundleKeyError(f"private key {source!s:.80}: not a PEM private key ({err})") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleKeyError(f"private key {source!s:.80}: not an Ed25519 key")
    return key


def load_public_key(source: str | Path | bytes) -> Any:
    """An Ed25519 public key from a PEM file (or PEM bytes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read_key_bytes(source, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as err:
        raise BundleKeyError(f"public key {source!s:.80}: not a PEM public key ({err})") from err
    if not isinstance(key, Ed25519PublicKey):
        raise BundleKeyError(f"public key {source!s:.80}: not an Ed25519 key")
    return key


def key_id(public_key: Any) -> str:
    """First 16 hex digits of the SHA-256 of the raw public key: names a key in manifests."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


# ---------------------------------------------------------------- create

def rule_set_versions() -> dict[str, str]:
    """Each shipped rule set → ``sha256:`` of its TOML file (the rule-set version a bundle was
    built against).

    >>> sorted(rule_set_versions())
    ['clinical', 's3']
    """
    folder = Path(__file__).resolve().parents[1] / "models" / "rulesets"
    return {p.stem: "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.glob("*.toml"))}


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"


def create_bundle(model_dir: str | Path, out: str | Path, private_key: str | Path | bytes, *,
                  name: str | None = None, version: str | None = None,
                  include_torch: bool = False) -> Path:
    """Bundle the exported model files of ``model_dir`` with its cards, standardizer, label
    names and the rule-set versions; sign the manifest with ``private_key``; write ``out``.

    >>> create_bundle("/nonexistent", "b.tar.gz", b"")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detak.export.bundle.BundleFormatError: /nonexistent: no card.json; not a model folder ...
    """
    import detak

    folder = Path(model_dir)
    if not (folder / "card.json").is_file():
        raise BundleFormatError(f"{folder}: no card.json; not a model folder (detak train, "
                                "detak export)")
    key = load_private_key(private_key)
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    suffixes = MODEL_SUFFIXES + ((".pt",) if include_torch else ())
    models = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in suffixes)
    if include_torch:   # a shipped model's checkpoint lives outside the package
        from detak.models.trained import torch_weights_file

        weights = torch_weights_file(folder, card)
        if weights is not None and weights.name not in {p.name for p in models}:
            models.append(weights)
    if not any(p.suffix in MODEL_SUFFIXES for p in models):
        raise BundleFormatError(f"{folder}: no exported model files (*.onnx, *.tflite); run "
                                "`detak export onnx|tflite` first")
    if not (folder / "standardizer.json").is_file():
        raise BundleFormatError(f"{folder}: standardizer.json is missing")
    labels = list(card.get("architecture", {}).get("outputs") or
                  ["NORM", "MI", "STTC", "CD", "HYP"])
    payload: dict[str, bytes] = {p.name: p.read_bytes() for p in models}
    for meta in META_FILES:
        if (folder / meta).is_file():
            payload[meta] = (folder / meta).read_bytes()
    payload["labels.json"] = _canonical({"labels": labels})
    bundle_name = name or str(card.get("name") or folder.name)
    manifest = {
        "format": BUNDLE_FORMAT, "bundle": bundle_name,
        "version": version or _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ"),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "model": {"name": card.get("name"), "architecture": card.get("architecture", {}).get(
            "name"), "weights": card.get("weights", {}).get("file")},
        "labels": labels, "rule_sets": rule_set_versions(),
        "detak_version": getattr(detak, "__version__", "unknown"),
        "key_id": key_id(key.public_key()),
        "files": {n: {"bytes": len(b), "sha256": _sha256_bytes(b)}
                  for n, b in sorted(payload.items())},
    }
    manifest_bytes = _canonical(manifest)
    signature = base64.b64encode(key.sign(manifest_bytes)) + b"\n"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            members = [(MANIFEST, manifest_bytes), (SIGNATURE, signature)]
            members += [(f"{FILES_DIR}/{n}", b) for n, b in sorted(payload.items())]
            for arcname, data in members:
                info = tarfile.TarInfo(arcname)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


# ---------------------------------------------------------------- verify

def _safe_name(name: str, bundle: Path) -> str:
    pure = PurePosixPath(name)
    if pure.is_absolute() or any(part in ("..", "") for part in pure.parts) or "\\" in name:
        raise BundleFormatError(f"{bundle}: unsafe member name {name!r}")
    return str(pure)


def _read_members(path: Path) -> dict[str, bytes]:
    """Every regular member of the archive, read to the end (so truncation shows)."""
    out: dict[str, bytes] = {}
    if not path.is_file():
        raise BundleTruncatedError(f"{path}: no such bundle file")
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = _safe_name(member.name, path)
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BundleFormatError(f"{path}: member {name!r} is not a regular file")
                if member.size > MAX_FILE_BYTES:
                    raise BundleFormatError(f"{path}: member {name!r} is {member.size} bytes")
                if name in out:
                    raise BundleFormatError(f"{path}: member {name!r} appears twice")
                fh = tar.extractfile(member)
                data = fh.read() if fh is not None else b""
                if len(data) != member.size:
                    raise BundleTruncatedError(f"{path}: member {name!r} is cut short "
                                               f"({len(data)} of {member.size} bytes)")
                out[name] = data
    except (EOFError, zlib.error, tarfile.ReadError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise BundleTruncatedError(f"{path}: no such bundle file") from err
        raise BundleTruncatedError(f"{path}: the archive is truncated or corrupt ({err})"
                                   ) from err
    return out


def _check_manifest(path: Path, members: dict[str, bytes], public_key: Any) -> Manifest:
    from cryptography.exceptions import InvalidSignature

    for required in (MANIFEST, SIGNATURE):
        if required not in members:
            raise BundleTruncatedError(f"{path}: {required} is missing (truncated or not a "
                                       "detak bundle)")
    manifest_bytes = members[MANIFEST]
    try:
        signature = base64.b64decode(members[SIGNATURE].strip(), validate=True)
    except ValueError as err:
        raise BundleSignatureError(f"{path}: {SIGNATURE} is not base64 ({err})") from err
    try:
        public_key.verify(signature, manifest_bytes)
    except InvalidSignature:
        try:
            signer = json.loads(manifest_bytes).get("key_id")
        except (ValueError, AttributeError):
            signer = None
        mine = key_id(public_key)
        why = (f"it was signed by key {signer}, this kiosk trusts key {mine}"
               if signer and signer != mine else "the manifest was altered after signing")
        raise BundleSignatureError(f"{path}: signature does not verify: {why}") from None
    try:
        data = json.loads(manifest_bytes)
    except ValueError as err:
        raise BundleFormatError(f"{path}: {MANIFEST} is not JSON ({err})") from err
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise BundleFormatError(f"{path}: manifest format {data.get('format')!r} is not "
                                f"{BUNDLE_FORMAT!r}")
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleFormatError(f"{path}: the manifest lists no files")
    for n in files:
        if "/" in n or n in ("", ".", ".."):
            raise BundleFormatError(f"{path}: unsafe file name {n!r} in the manifest")
    return Manifest(data=data, digest=_sha256_bytes(manifest_bytes))


def _check_file(path: Path, name: str, data: bytes, entry: dict[str, Any]) -> None:
    if len(data) != int(entry["bytes"]):
        raise BundleTamperedError(f"{path}: {name} is {len(data)} bytes, the signed manifest "
                                  f"says {entry['bytes']}")
    if _sha256_bytes(data) != entry["sha256"]:
        raise BundleTamperedError(f"{path}: {name} does not match its SHA-256 in the signed "
                                  "manifest (tampered or corrupted)")


def verify_bundle(path: str | Path, public_key: Any) -> Manifest:
    """Verify a bundle file against ``public_key`` (a key object, or a PEM file / bytes);
    returns its `Manifest` or raises a `BundleError` subclass naming the problem."""
    path = Path(path)
    if not hasattr(public_key, "verify"):
        public_key = load_public_key(public_key)
    members = _read_members(path)
    manifest = _check_manifest(path, members, public_key)
    listed = manifest.files
    present = {n[len(FILES_DIR) + 1:]: b for n, b in members.items()
               if n.startswith(FILES_DIR + "/")}
    extra = sorted(set(present) - set(listed)) + sorted(
        n for n in members if n not in (MANIFEST, SIGNATURE) and not n.startswith(FILES_DIR + "/"))
    if extra:
        raise BundleTamperedError(f"{path}: file(s) not in the signed manifest: "
                                  f"{', '.join(extra)}")
    missing = sorted(set(listed) - set(present))
    if missing:
        raise BundleTruncatedError(f"{path}: file(s) listed in the manifest are missing: "
                                   f"{', '.join(missing)}")
    for n, entry in sorted(listed.items()):
        _check_file(path, n, present[n], entry)
    return manifest


# ---------------------------------------------------------------- install

def bundles_root() -> Path:
    """Where bundles are installed: ``$DETAK_BUNDLES`` or ``cache_dir()/bundles``."""
    env = os.environ.get(BUNDLES_ENV)
    if env:
        return Path(env).expanduser()
    from detak.data.paths import cache_dir

    return cache_dir() / "bundles"


def active_bundle(name: str, root: str | Path | None = None) -> Path | None:
    """The folder of the active bundle ``name`` (None if none is installed).

    >>> active_bundle("edge", "/nonexistent") is None
    True
    """
    link = Path(root or bundles_root()) / "active" / name
    if not link.is_symlink() and not link.is_dir():
        return None
    target = link.resolve()
    return target if (target / "card.json").is_file() else None


def active_bundles(root: str | Path | None = None) -> dict[str, Path]:
    """NAME → folder of every active installed bundle under ``root``.

    >>> active_bundles("/nonexistent")
    {}
    """
    root = Path(root or bundles_root())
    active = root / "active"
    if not active.is_dir():
        return {}
    found = {}
    for link in sorted(active.iterdir()):
        folder = None if link.name.startswith(".") else active_bundle(link.name, root)
        if folder is not None:
            found[link.name] = folder
    return found


def _intact(folder: Path, manifest: Manifest) -> bool:
    """True if an installed folder holds exactly the manifest's bytes."""
    try:
        if sha256_file(folder / MANIFEST) != manifest.digest:
            return False
        return all((folder / f).is_file() and (folder / f).stat().st_size == int(e["bytes"])
                   and sha256_file(folder / f) == e["sha256"]
                   for f, e in manifest.files.items())
    except OSError:
        return False


def install_bundle(path: str | Path, public_key: Any, root: str | Path | None = None) -> Path:
    """Verify ``path`` and make it the active bundle of its name under ``root``; returns the
    installed folder. On any error the previously active bundle stays active."""
    path = Path(path)
    if not hasattr(public_key, "verify"):
        public_key = load_public_key(public_key)
    root = Path(root or bundles_root())
    members = _read_members(path)
    manifest = verify_bundle(path, public_key)  # reads again: cheap, and one code path
    name = manifest.name
    _safe_name(name, path)
    if "/" in name:
        raise BundleFormatError(f"{path}: bundle name {name!r} contains '/'")
    versions, active = root / "versions", root / "active"
    versions.mkdir(parents=True, exist_ok=True)
    active.mkdir(parents=True, exist_ok=True)
    final = versions / f"{name}-{manifest.digest[:16]}"
    n = 1
    while final.is_dir() and not _intact(final, manifest):  # a damaged earlier copy: keep it
        n += 1
        final = versions / f"{name}-{manifest.digest[:16]}-{n}"
    if not final.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=versions))
        try:
            for fname, entry in manifest.files.items():
                target = staging / fname
                target.write_bytes(members[f"{FILES_DIR}/{fname}"])
                os.chmod(target, 0o644)
                _check_file(path, fname, target.read_bytes(), entry)  # as written on disk
            (staging / MANIFEST).write_bytes(members[MANIFEST])
            (staging / SIGNATURE).write_bytes(members[SIGNATURE])
            os.chmod(staging, 0o755)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    link = active / name
    tmp_link = active / f".{name}.{os.getpid()}.tmp"
    tmp_link.unlink(missing_ok=True)
    os.symlink(os.path.relpath(final, active), tmp_link)
    os.replace(tmp_link, link)  # the atomic switch
    return final
