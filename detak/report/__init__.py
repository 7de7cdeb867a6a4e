"""Reports: per-record JSON and ECG-paper plots, and the demo pipeline."""
