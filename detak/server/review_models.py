"""The review tables (migration 0002): the doctors' signed verdicts and the queue's locks.

A verdict row is immutable once written: PostgreSQL refuses UPDATE and DELETE on it (a
trigger, as for the audit log). A correction is a new row with the next ``version`` of the
same screening; the old one stays. ``id`` order is commit order (a signing transaction takes
an EXCLUSIVE lock on the table, so the kiosks' verdict cursor never skips a slower commit).

>>> sorted(t for t in Base.metadata.tables if t.startswith("review"))
['review_locks', 'review_verdicts']
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from detak.server.models import Base, _now

ACTIONS = ("none", "routine", "cardiology", "urgent")


class Verdict(Base):
    """One signed version of a doctor's verdict on a screening."""

    __tablename__ = "review_verdicts"
    __table_args__ = (UniqueConstraint("screening_id", "version"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    screening_id: Mapped[int] = mapped_column(ForeignKey("screenings.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    doctor_name: Mapped[str] = mapped_column(String(200))
    labels: Mapped[list] = mapped_column(JSONB)
    model_labels: Mapped[list] = mapped_column(JSONB)  # what the page proposed (for the loop)
    action: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, server_default="")
    signed_at: Mapped[datetime] = _now()


class ReviewLock(Base):
    """A screening open on a doctor's screen (until ``expires_at`` or until saved)."""

    __tablename__ = "review_locks"
    screening_id: Mapped[int] = mapped_column(ForeignKey("screenings.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user_name: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
