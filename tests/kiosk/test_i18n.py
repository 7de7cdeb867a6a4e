"""The kiosk's catalogs: every message marked in the code has a translation in both
languages, and the committed .mo files are what the .po files compile to."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from detak.kiosk.i18n import LANGUAGES, LOCALE_DIR, LanguageError, number, translator

ROOT = Path(__file__).resolve().parents[2]


def _code_messages() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    out = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(str(ROOT / "detak" / "kiosk"),
                                                              method_map):
        out.update([msg] if isinstance(msg, str) else [m for m in msg if m])
    return out


def _catalog(lang: str):
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "detak.po", "rb") as fh:
        return read_po(fh, locale=lang)


def test_extraction_finds_the_messages():
    msgs = _code_messages()
    assert "refer today" in msgs and len(msgs) >= 20


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_in_the_code_is_translated(lang):
    cat = _catalog(lang)
    missing = sorted(m for m in _code_messages()
                     if cat.get(m) is None or not cat.get(m).string or cat.get(m).fuzzy)
    assert missing == [], f"{lang}: no translation for {missing}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_survive_translation(lang):
    import string

    for msg in _catalog(lang):
        if not msg.id:
            continue
        names = {f for _, f, _, _ in string.Formatter().parse(msg.id) if f}
        got = {f for _, f, _, _ in string.Formatter().parse(msg.string) if f}
        assert names == got, (lang, msg.id, msg.string)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_committed_mo_matches_the_po(lang):
    buf = io.BytesIO()
    write_mo(buf, _catalog(lang))
    mo = LOCALE_DIR / lang / "LC_MESSAGES" / "detak.mo"
    assert mo.read_bytes() == buf.getvalue(), (
        f"{mo} is stale: pybabel compile -d detak/kiosk/locale -D detak")


def test_indonesian_is_translated_and_english_is_itself():
    assert translator("id")("no finding") == "tidak ada temuan"
    assert translator("en")("no finding") == "no finding"


@pytest.mark.parametrize("bad", ["fr", "", "ID", None])
def test_unknown_language_is_a_named_error(bad):
    with pytest.raises(LanguageError):
        translator(bad)


def test_numbers_in_the_locale_format():
    assert number(1234.5, "id") == "1.234,5" and number(1234.5, "en") == "1,234.5"
    assert number(61.0, "id", 0) == "61"
