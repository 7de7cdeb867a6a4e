"""Counts to millivolts, device profiles, lead derivation, int8 calibration sets (issues 5, 6).

* `detak.calibration.profile`: per-device TOML profiles (gain, offset, LSB, lead map,
  sample-rate correction); a `DeviceProfile` is the `Recorder`'s calibration hook;
* `detak.calibration.pulse`: the 1 mV pulse procedure (``detak calibrate URL``);
* `detak.calibration.leads`: lead maps, III/aVR/aVL/aVF from I and II, 8-channel -> 12 leads;
* `detak.calibration.rate`: sample-rate drift against the host clock, and its correction;
* `detak.calibration.representative`: the int8 quantization calibration set (issue 5).
"""
