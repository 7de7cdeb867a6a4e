"""The review pages' messages (detak/server/review*.py and templates) are in both catalogs."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from detak.kiosk.i18n import LANGUAGES, LOCALE_DIR

SERVER = Path(__file__).resolve().parents[2] / "detak" / "server"


def _messages() -> set[str]:
    method_map = [("review.py", "python"), ("review_*.py", "python"),
                  ("templates/review/**.html", "jinja2"), ("templates/message.html", "jinja2")]
    # (templates/expert/ has its own catalog: tests/server/test_expert_i18n.py)
    out = set()
    for _f, _l, msg, _c, _x in extract_from_dir(str(SERVER), method_map):
        out.update([msg] if isinstance(msg, str) else [m for m in msg if m])
    return out


def test_extraction_sees_the_review_pages():
    msgs = _messages()
    assert {"Review queue", "Sign verdict", "The review pages are for doctors."} <= msgs


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_review_message_is_translated(lang):
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "detak.po", "rb") as fh:
        cat = read_po(fh, locale=lang)
    missing = sorted(m for m in _messages()
                     if cat.get(m) is None or not cat.get(m).string or cat.get(m).fuzzy)
    assert missing == [], f"{lang}: no translation for {missing}"
