"""Languages of the expert-system pages: Bahasa Indonesia (default) and English, from the
gettext catalogs ``detak/server/locale/LANG/LC_MESSAGES/expert.po`` (compiled ``.mo`` committed
beside them, as the kiosk's). Numbers use the kiosk's locale formats (`detak.kiosk.i18n`).

Update after adding a message::

    pybabel extract -F detak/server/expert_babel.cfg -o detak/server/locale/expert.pot \\
        --no-location --omit-header .
    pybabel update -i detak/server/locale/expert.pot -d detak/server/locale -D expert -w 100 \\
        --no-fuzzy-matching
    # translate the new entries in both .po files, then
    pybabel compile -d detak/server/locale -D expert

>>> translator("id")("Case bases"), translator("en")("Case bases")
('Basis kasus', 'Case bases')
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import cache
from pathlib import Path

from detak.kiosk.i18n import DEFAULT_LANGUAGE, LANGUAGES, check_language, number

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "LOCALE_DIR", "number", "translator"]

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "expert"


@cache
def _catalog(lang: str) -> gettext.NullTranslations:
    return gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang])


def translator(lang: str = DEFAULT_LANGUAGE) -> Callable[[str], str]:
    """The gettext function for ``lang`` (``id`` or ``en``); a missing catalog is an OSError."""
    return _catalog(check_language(lang)).gettext
