"""Accounts, facilities, kiosk enrolment codes and kiosks (the admin commands' operations).

Passwords are hashed with argon2id (argon2-cffi's default); enrolment codes are random, shown
once, stored as their SHA-256, single use, valid for `CODE_TTL`. A kiosk is known by its
Ed25519 public key (docs/sync.md §3).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from detak.server.audit import audit
from detak.server.errors import ApiError
from detak.server.models import (
    ROLES,
    DoctorFacility,
    EnrolmentCode,
    Facility,
    Kiosk,
    User,
)

CODE_TTL = timedelta(hours=24)
MIN_PASSWORD = 10


class AccountError(ValueError):
    """An admin command that cannot be done (unknown facility, name taken, ...)."""


def now() -> datetime:
    return datetime.now(UTC)


@cache
def _hasher():  # noqa: ANN202 - argon2.PasswordHasher
    from argon2 import PasswordHasher

    return PasswordHasher()


def hash_password(password: str) -> str:
    """argon2id hash of ``password``.

    >>> hash_password("correct horse battery").startswith("$argon2id$")
    True
    """
    return _hasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Does ``password`` match ``stored``? (A missing account costs the same time.)"""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return hash_password("not-a-password-of-anyone")


def facility_by_name(session: Session, name: str) -> Facility:
    fac = session.scalar(select(Facility).where(Facility.name == name))
    if fac is None:
        raise AccountError(f"no facility named {name!r} (detak server facility add NAME)")
    return fac


def add_facility(session: Session, name: str, actor: str = "cli:admin") -> Facility:
    name = name.strip()
    if not name or len(name) > 200:
        raise AccountError("a facility name is 1 to 200 characters")
    if session.scalar(select(Facility).where(Facility.name == name)) is not None:
        raise AccountError(f"facility {name!r} exists already")
    fac = Facility(name=name)
    session.add(fac)
    session.flush()
    audit(session, actor, "facility.add", object_kind="facility", object_id=fac.id)
    return fac


def create_user(session: Session, name: str, role: str, password: str,
                facility: str | None = None, actor: str = "cli:admin") -> User:
    """A new user; a nurse needs a ``facility``; a doctor may get one (more by assign)."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise AccountError(f"user {name!r} exists already")
    if role == "nurse" and facility is None:
        raise AccountError("a nurse belongs to a facility: give --facility NAME")
    fac = facility_by_name(session, facility) if facility else None
    user = User(name=name, role=role, password_hash=hash_password(password),
                facility_id=fac.id if (fac and role == "nurse") else None)
    session.add(user)
    session.flush()
    if fac is not None and role == "doctor":
        session.add(DoctorFacility(user_id=user.id, facility_id=fac.id))
    audit(session, actor, "user.create", object_kind="user", object_id=user.id,
          detail={"role": role})
    return user


def assign_doctor(session: Session, doctor: str, facility: str,
                  actor: str = "cli:admin") -> None:
    user = session.scalar(select(User).where(User.name == doctor))
    if user is None or user.role != "doctor":
        raise AccountError(f"no doctor named {doctor!r}")
    fac = facility_by_name(session, facility)
    if session.get(DoctorFacility, (user.id, fac.id)) is None:
        session.add(DoctorFacility(user_id=user.id, facility_id=fac.id))
    audit(session, actor, "doctor.assign", object_kind="user", object_id=user.id,
          facility_id=fac.id)


def user_facilities(session: Session, user: User) -> set[int] | None:
    """The facilities ``user`` may see (None: all, for an admin)."""
    if user.role == "admin":
        return None
    if user.role == "nurse":
        return {user.facility_id} if user.facility_id else set()
    return set(session.scalars(select(DoctorFacility.facility_id)
                               .where(DoctorFacility.user_id == user.id)))


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def new_enrolment_code(session: Session, facility: str, ttl: timedelta = CODE_TTL,
                       actor: str = "cli:admin") -> tuple[str, datetime]:
    """A one-time code for enrolling one kiosk in ``facility``; returns (code, expiry)."""
    fac = facility_by_name(session, facility)
    code = secrets.token_urlsafe(18)  # 144 bits, URL- and shell-safe
    while code.startswith("-"):  # a command line would take it for an option
        code = secrets.token_urlsafe(18)
    expires = now() + ttl
    session.add(EnrolmentCode(code_hash=_code_hash(code), facility_id=fac.id, expires_at=expires))
    audit(session, actor, "enrolment_code.create", object_kind="facility", object_id=fac.id,
          facility_id=fac.id)
    return code, expires


def enrol_kiosk(session: Session, code: str, public_key_b64: str, name: str | None,
                remote: str | None) -> tuple[Kiosk, Facility]:
    """Use ``code`` (single use) to register a kiosk with its Ed25519 public key. The same
    code with the same key again, while the code is valid, answers the same kiosk (a retry
    whose first answer was lost); any other reuse is refused."""
    invalid = ApiError(403, "enrolment_code_invalid",
                       "the enrolment code is unknown, used or expired")
    try:
        key = base64.b64decode(public_key_b64, validate=True)
    except (ValueError, TypeError):
        raise ApiError(422, "bad_public_key", "public_key is not base64") from None
    if len(key) != 32:
        raise ApiError(422, "bad_public_key", "public_key is not 32 raw Ed25519 bytes")
    row = session.scalar(select(EnrolmentCode).where(EnrolmentCode.code_hash == _code_hash(code))
                         .with_for_update())
    if row is not None and row.used_at is not None and row.expires_at > now():
        again = session.get(Kiosk, row.kiosk_id) if row.kiosk_id else None
        if again is not None and again.public_key == key and again.revoked_at is None:
            # the same kiosk retrying after its answer was lost: the same kiosk id again
            audit(session, f"kiosk:{again.id}", "kiosk.enrol_repeated", object_kind="kiosk",
                  object_id=again.id, facility_id=again.facility_id, remote=remote)
            return again, session.get(Facility, again.facility_id)
    if row is None or row.used_at is not None or row.expires_at <= now():
        audit(session, "anonymous", "kiosk.enrol_refused", remote=remote)
        session.commit()
        raise invalid
    kiosk = Kiosk(id=uuid.uuid4().hex, facility_id=row.facility_id, public_key=key,
                  name=(name or None) and name[:200])
    session.add(kiosk)
    session.flush()
    row.used_at, row.kiosk_id = now(), kiosk.id
    audit(session, f"kiosk:{kiosk.id}", "kiosk.enrol", object_kind="kiosk", object_id=kiosk.id,
          facility_id=row.facility_id, remote=remote)
    return kiosk, session.get(Facility, row.facility_id)


def revoke_kiosk(session: Session, kiosk_id: str, actor: str = "cli:admin") -> Kiosk:
    kiosk = session.get(Kiosk, kiosk_id)
    if kiosk is None:
        raise AccountError(f"no kiosk {kiosk_id!r} (detak server kiosk list)")
    if kiosk.revoked_at is None:
        session.execute(update(Kiosk).where(Kiosk.id == kiosk_id).values(revoked_at=now()))
    audit(session, actor, "kiosk.revoke", object_kind="kiosk", object_id=kiosk_id,
          facility_id=kiosk.facility_id)
    return kiosk
