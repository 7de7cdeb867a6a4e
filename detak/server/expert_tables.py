"""The expert system's tables (S4): case bases, their features and classes, and the cases.

Kept apart from `detak.server.models` (same declarative ``Base``) so the expert system is one
module set; migration ``0003_expert`` makes them. A case's ``values`` map feature keys to
numbers (null = missing); a case made from a doctor's signed verdict links back to its
screening (``screening_id``) and names the verdict (``verdict_ref``).

>>> sorted(t for t in Base.metadata.tables if t.startswith("expert_"))
['expert_bases', 'expert_cases', 'expert_classes', 'expert_features']
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from detak.server.models import Base


class ExpertBase(Base):
    """A case base: its schema (features, classes) and its cases."""

    __tablename__ = "expert_bases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, server_default="")
    target: Mapped[str] = mapped_column(String(100), server_default="diagnosis")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class ExpertFeature(Base):
    __tablename__ = "expert_features"
    __table_args__ = (UniqueConstraint("base_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("expert_bases.id", ondelete="CASCADE"),
                                         index=True)
    key: Mapped[str] = mapped_column(String(100))
    column: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(50), server_default="")
    description: Mapped[str] = mapped_column(Text, server_default="")
    position: Mapped[int] = mapped_column(Integer, server_default="0")


class ExpertClass(Base):
    __tablename__ = "expert_classes"
    __table_args__ = (UniqueConstraint("base_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("expert_bases.id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, server_default="0")


class ExpertCase(Base):
    __tablename__ = "expert_cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("expert_bases.id", ondelete="CASCADE"),
                                         index=True)
    #: RESTRICT: a class with cases cannot be deleted (`ClassInUseError` says so first)
    class_id: Mapped[int] = mapped_column(ForeignKey("expert_classes.id", ondelete="RESTRICT"))
    values: Mapped[dict] = mapped_column(JSONB)
    source: Mapped[str] = mapped_column(String(20), server_default="admin")
    screening_id: Mapped[int | None] = mapped_column(
        ForeignKey("screenings.id", ondelete="SET NULL"), index=True)
    verdict_ref: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())
