"""Pydantic schemas of the JSON API (docs/sync.md §3, §6), with size limits on every field.

>>> EnrolRequest(code="abc", public_key="A" * 43 + "=").name is None
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
    public_key: str = Field(pattern=r"^[A-Za-z0-9+/]{43}=$")  # 32 raw bytes, base64
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
    protocol: Literal[1]  # a higher number is answered 400 protocol_unsupported first
    verdicts_since: str | None = Field(default=None, max_length=200)
    bundle: BundleState | None = None
    items: list[dict[str, Any]] = Field(max_length=MAX_ITEMS)


def openapi_body(model: type[BaseModel]) -> dict:
    """An OpenAPI ``requestBody`` for ``model`` with its ``$defs`` inlined (the routes read
    their bodies raw, so FastAPI does not register the models as components).

    >>> "$defs" in str(openapi_body(BatchRequest))
    False
    """
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.split("/")[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": inline(schema)}}}}
