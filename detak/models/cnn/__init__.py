"""1-D CNNs for 12-lead ECG classification (issue 4): S1's three architectures and the kiosk's
edge model. Every model takes (batch, 12, 1000) — 10 s at 100 Hz, standardised — and returns 5
logits (NORM, MI, STTC, CD, HYP); each exposes ``features(x)`` (the last convolutional feature
map, for Grad-CAM) and ``head`` (the classifier after it).

Importing this package imports torch: it is host-only. Use `detak.models.cnn.registry` to build
models by name.
"""

from detak.models.cnn.registry import MODEL_NAMES, build_model, count_macs, count_parameters

__all__ = ["MODEL_NAMES", "build_model", "count_macs", "count_parameters"]
