"""The words for a doctor's verdict (issue 16), shared by the kiosk's history, its PDF report
and the server's review pages: the actions and the "reviewed by dr. X on DATE" line.

>>> review_line({"doctor": "Ana", "reviewed_at": "2026-12-07T13:05:00Z"}, "id")
'Ditinjau oleh dr. Ana pada 7 Desember 2026'
>>> translator("en")(ACTIONS["cardiology"])
'refer to cardiology'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detak.kiosk.i18n import N_, translator

#: the verdict's action → its words (translated where shown)
ACTIONS: dict[str, str] = {"none": N_("no action"), "routine": N_("routine follow-up"),
                           "cardiology": N_("refer to cardiology"), "urgent": N_("urgent")}


def action_text(action: str | None) -> str:
    """The message id of ``action`` (unknown: the code itself)."""
    return ACTIONS.get(action or "", action or "—")


def review_date(when: str, lang: str) -> str:
    """An ISO time as the locale's long date (``7 Desember 2026`` / ``December 7, 2026``)."""
    from datetime import datetime

    from babel.dates import format_date

    try:
        d = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError:
        return str(when)[:10]
    return format_date(d.date(), format="long", locale=lang)


def review_line(verdict: Mapping[str, Any], lang: str) -> str:
    """``Reviewed by dr. NAME on DATE`` in ``lang``."""
    return translator(lang)("Reviewed by dr. {name} on {date}").format(
        name=verdict.get("doctor") or "—", date=review_date(verdict.get("reviewed_at") or "",
                                                            lang))
