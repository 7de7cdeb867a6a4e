"""API errors: ``{"error": {"code": ..., "message": ...}}`` with the status of docs/sync.md §9.

>>> e = ApiError(409, "offset_mismatch", "continue from 5", headers={"Upload-Offset": "5"})
>>> e.status, e.body()
(409, {'error': {'code': 'offset_mismatch', 'message': 'continue from 5'}})
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answer; the message names no resident."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}
