"""Filtering, resampling, signal quality and interval measurement."""
