"""Reports: ECG-paper plots of a recording (the kiosk's PDF report lives in `detak.kiosk`)."""
