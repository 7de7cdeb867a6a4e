"""Batch upload from kiosk to clinic server: idempotent, resumable, authenticated."""
