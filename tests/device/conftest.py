"""Device tests never read or write the user's saved calibration profiles (~/.config/detak):
``detak record`` looks them up in $DETAK_PROFILES, here an empty folder per test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_user_profiles(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("DETAK_PROFILES", str(tmp_path_factory.mktemp("profiles")))
