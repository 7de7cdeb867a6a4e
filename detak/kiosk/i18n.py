"""The kiosk's languages: gettext catalogs (Bahasa Indonesia, the default, and English).

Every user-facing string the kiosk adds is marked in the code with ``_("...")`` (translated at
once) or ``N_("...")`` (marked where it is defined, translated where it is shown) and lives in
``detak/kiosk/locale/LANG/LC_MESSAGES/detak.po``. The compiled ``detak.mo`` files are committed
beside them, so the wheel carries working catalogs without a build step; a test checks every
marked message has a translation in both catalogs and the ``.mo`` files match the ``.po``.

Update after adding a message (``babel.cfg`` says which files are scanned)::

    pybabel extract -F babel.cfg -o detak/kiosk/locale/detak.pot --no-location --omit-header .
    pybabel update -i detak/kiosk/locale/detak.pot -d detak/kiosk/locale -D detak -w 100 \
        --no-fuzzy-matching
    # translate the new entries in both .po files, then
    pybabel compile -d detak/kiosk/locale -D detak

Numbers are written in the locale's format (`number`): a decimal comma in Indonesian.

>>> _ = translator("en")
>>> _("refer today")
'refer today'
>>> translator("id")("refer today")
'rujuk hari ini'
>>> number(0.62, "id"), number(0.62, "en"), number(10774, "id")
('0,62', '0.62', '10.774')
>>> translator("fr")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
detak.kiosk.i18n.LanguageError: language 'fr' is not available: use id or en
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "detak"
LANGUAGES: tuple[str, ...] = ("id", "en")
DEFAULT_LANGUAGE = "id"


class LanguageError(ValueError):
    """A language the kiosk has no catalog for (a usage error on the command line)."""


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark ``message`` for extraction without translating it (translated where shown)."""
    return message


def check_language(lang: str) -> str:
    """``lang`` if the kiosk speaks it, else `LanguageError`."""
    if lang not in LANGUAGES:
        raise LanguageError(f"language {lang!r} is not available: use {' or '.join(LANGUAGES)}")
    return lang


@cache
def _catalog(lang: str) -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang])


def translator(lang: str = DEFAULT_LANGUAGE) -> Callable[[str], str]:
    """The gettext function for ``lang`` (``id`` or ``en``); a missing catalog file is an
    ``OSError`` (the install is broken), never a silent fallback to the message ids."""
    return _catalog(check_language(lang)).gettext


def number(value: float, lang: str = DEFAULT_LANGUAGE, digits: int = 2) -> str:
    """``value`` in the locale's number format with at most ``digits`` decimals."""
    from babel.numbers import format_decimal

    pattern = "#,##0" + ("." + "#" * digits if digits > 0 else "")
    return format_decimal(round(float(value), digits), format=pattern,
                          locale=check_language(lang))
