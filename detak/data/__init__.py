"""Datasets (PTB-XL, LUDB, heart-failure records), record I/O (WFDB, CSV, EDF) and `Recording`."""

from detak.data.recording import Recording

__all__ = ["Recording"]
