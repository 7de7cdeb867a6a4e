"""The expert pages' catalogs: every message marked in expert.py and the expert templates has a
translation in both languages, and the committed .mo files are what the .po files compile to."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from detak.server.expert_i18n import LANGUAGES, LOCALE_DIR, translator

ROOT = Path(__file__).resolve().parents[2]


def _code_messages() -> set[str]:
    method_map = [("expert.py", "python"), ("templates/expert/**.html", "jinja2")]
    out = set()
    for _f, _l, msg, _c, _x in extract_from_dir(str(ROOT / "detak" / "server"), method_map):
        out.update([msg] if isinstance(msg, str) else [m for m in msg if m])
    return out


def _catalog(lang: str):  # noqa: ANN202
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "expert.po", "rb") as fh:
        return read_po(fh, locale=lang)


def test_extraction_finds_the_messages() -> None:
    msgs = _code_messages()
    assert "Nearest cases" in msgs and "Sign in first." in msgs and len(msgs) >= 60


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated_and_the_mo_is_fresh(lang: str) -> None:
    cat = _catalog(lang)
    missing = sorted(m for m in _code_messages()
                     if cat.get(m) is None or not cat.get(m).string or cat.get(m).fuzzy)
    assert missing == [], f"{lang}: no translation for {missing}"
    buf = io.BytesIO()
    write_mo(buf, cat)
    mo = LOCALE_DIR / lang / "LC_MESSAGES" / "expert.mo"
    assert mo.read_bytes() == buf.getvalue(), f"{mo} is stale: pybabel compile -D expert"


def test_indonesian_words() -> None:
    assert translator("id")("Nearest cases") == "Kasus terdekat"
    assert translator("en")("Nearest cases") == "Nearest cases"
