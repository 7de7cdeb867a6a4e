"""Counts to microvolts, device profiles, lead derivation, int8 calibration sets (issues 5, 6)."""
