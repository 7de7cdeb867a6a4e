"""Counts to millivolts, device profiles, lead derivation (issue 6); imports no device code.

* `detak.calibration.counts`: ``mV = (counts - offset) * lsb * gain`` (`ChannelScale`);
* `detak.calibration.profile`: per-device TOML profiles (gain, offset, LSB, lead map,
  sample-rate correction); a `DeviceProfile` is the `Recorder`'s calibration hook;
* `detak.calibration.pulse_levels`: the 1 mV pulse's levels, gain and offset from counts (the
  procedure that drives a device, ``detak calibrate URL``, is `detak.device.pulse`);
* `detak.calibration.leads`: lead maps, III/aVR/aVL/aVF from I and II, 8-channel -> 12 leads;
* `detak.calibration.rate`: sample-rate drift against the host clock, and its correction.

The int8 quantization calibration set is `detak.export.representative`.
"""
