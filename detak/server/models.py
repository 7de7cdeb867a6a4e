"""The server's tables (SQLAlchemy 2 declarative models). The schema itself is made by the
Alembic migrations in ``detak/server/migrations`` (run at start-up), not by ``create_all``.

Resident data lives in ``residents``, ``screenings``, ``conflicts`` and
``resident_mismatches``; every read or write of them adds a row to ``audit_log``, which
PostgreSQL itself keeps append-only (a trigger refuses UPDATE, DELETE and TRUNCATE).

>>> sorted(Base.metadata.tables)[:3]
['audit_log', 'blobs', 'bundles']
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("admin", "doctor", "nurse")


class Base(DeclarativeBase):
    """Declarative base of the server's tables."""


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Facility(Base):
    __tablename__ = "facilities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = _now()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'doctor', 'nurse')", name="users_role"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(Text)
    #: a nurse's facility (doctors: `DoctorFacility`; admins: none)
    facility_id: Mapped[int | None] = mapped_column(ForeignKey("facilities.id"))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = _now()


class DoctorFacility(Base):
    __tablename__ = "doctor_facilities"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), primary_key=True)


class EnrolmentCode(Base):
    __tablename__ = "enrolment_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kiosk_id: Mapped[str | None] = mapped_column(String(32))


class Kiosk(Base):
    __tablename__ = "kiosks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    name: Mapped[str | None] = mapped_column(String(200))
    enrolled_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Nonce(Base):
    __tablename__ = "nonces"
    kiosk_id: Mapped[str] = mapped_column(ForeignKey("kiosks.id"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    seen_at: Mapped[datetime] = _now()


class Blob(Base):
    """A complete blob in the content store."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    stored_at: Mapped[datetime] = _now()


class PartialUpload(Base):
    """An upload in flight: ``offset`` is the length fsynced and recorded (the truth)."""

    __tablename__ = "partial_uploads"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = _now()


class Resident(Base):
    __tablename__ = "residents"
    __table_args__ = (UniqueConstraint("facility_id", "resident_number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    resident_number: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(400))
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(1))
    room: Mapped[str | None] = mapped_column(String(200))
    created_by_kiosk: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _now()


class Screening(Base):
    __tablename__ = "screenings"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32), unique=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"), index=True)
    kiosk_id: Mapped[str] = mapped_column(ForeignKey("kiosks.id"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    created_at: Mapped[str] = mapped_column(String(64))  # the kiosk's time, as it wrote it
    received_at: Mapped[datetime] = _now()  # the server's: the record of arrival
    screening: Mapped[dict] = mapped_column(JSONB)
    files: Mapped[dict] = mapped_column(JSONB)
    item: Mapped[dict] = mapped_column(JSONB)  # the item as received (its hash is content_sha256)


class Conflict(Base):
    """A second version of a screening uuid, kept for an admin (never overwrites)."""

    __tablename__ = "conflicts"
    __table_args__ = (UniqueConstraint("uuid", "content_sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(32), index=True)
    content_sha256: Mapped[str] = mapped_column(String(64))
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    kiosk_id: Mapped[str] = mapped_column(ForeignKey("kiosks.id"))
    item: Mapped[dict] = mapped_column(JSONB)
    received_at: Mapped[datetime] = _now()
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResidentMismatch(Base):
    """A screening named a known resident number with a different name, birth date or sex."""

    __tablename__ = "resident_mismatches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    screening_id: Mapped[int] = mapped_column(ForeignKey("screenings.id"))
    kiosk_id: Mapped[str] = mapped_column(ForeignKey("kiosks.id"))
    reported: Mapped[dict] = mapped_column(JSONB)
    received_at: Mapped[datetime] = _now()
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Bundle(Base):
    __tablename__ = "bundles"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    published_at: Mapped[datetime] = _now()


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class IntegrationToken(Base):
    """A bearer token of the ``integration`` role: reads ``/fhir/...`` of one facility. Only
    its SHA-256 is kept (the token is shown once, by ``detak server create-token``)."""

    __tablename__ = "integration_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    facility_id: Mapped[int] = mapped_column(ForeignKey("facilities.id"))
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Append-only: who (actor), what (action, object), when (at), from where (remote)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = _now()
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    object_kind: Mapped[str | None] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(100))
    facility_id: Mapped[int | None] = mapped_column(Integer)
    remote: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict | None] = mapped_column(JSONB)


class LoginAttempt(Base):
    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    remote: Mapped[str | None] = mapped_column(String(100), index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = _now()


class WebSession(Base):
    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
