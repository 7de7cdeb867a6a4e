"""Talking to hardware: transports chosen by URL, one driver per device family, the Recorder
(issue 6)."""
