"""Pydantic schemas of the JSON API (docs/sync.md §3, §6), with size limits on every field.

>>> EnrolRequest(code="abc", public_key="A" * 44).name is None
True
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HEX64 = r"^[0-9a-f]{64}$"
HEX32 = r"^[0-9a-f]{32}$"
MAX_ITEMS = 50


class EnrolRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: str = Field(min_length=1, max_length=200)
    public_key: str = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, max_length=200)


class FileRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(pattern=HEX64)
    size: int = Field(ge=0, le=64 << 20)


class Files(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recording: str = Field(pattern=r"^[0-9A-Za-z_.-]{1,100}$")
    hea: FileRef
    dat: FileRef
    report_pdf: FileRef | None = None


class ResidentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    resident_number: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=400)
    birth_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    sex: Literal["F", "M"] | None = None
    room: str | None = Field(default=None, max_length=200)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uuid: str = Field(pattern=HEX32)
    content_sha256: str = Field(pattern=HEX64)
    created_at: str = Field(min_length=1, max_length=64)
    resident: ResidentIn | None = None
    screening: dict[str, Any]
    files: Files


class BundleState(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(default="edge", max_length=100)
    version: str | None = Field(default=None, max_length=200)


class BatchRequest(BaseModel):
    """The envelope; items are validated one by one (a bad item is ``invalid``, not a 422)."""

    model_config = ConfigDict(extra="ignore")
    protocol: int
    verdicts_since: str | None = Field(default=None, max_length=200)
    bundle: BundleState | None = None
    items: list[dict[str, Any]] = Field(max_length=MAX_ITEMS)
