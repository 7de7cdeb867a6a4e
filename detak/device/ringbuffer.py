"""`RingBuffer`: the last ``capacity`` samples of a stream, addressed by absolute sample index.

Blocks are written where their indices say (``write(start, counts)``); samples never written,
or skipped by a jump forward, read back as `MISSING`. Writing far ahead simply forgets what
falls out of the window, so callers (the `Recorder`) flush what they need before writing.
Counts are int32; ``MISSING`` (-2**31) is not a value any 24-bit ADC produces.

>>> import numpy as np
>>> rb = RingBuffer(n_channels=1, capacity=4)
>>> rb.write(0, np.array([[1, 2]]))
>>> rb.write(3, np.array([[4]]))
>>> rb.read(0, 4).tolist()
[[1, 2, -2147483648, 4]]
>>> rb.write(6, np.array([[7]]))          # 2..5 now in the window; 4 and 5 never arrived
>>> rb.read(3, 7).tolist()
[[4, -2147483648, -2147483648, 7]]
"""

from __future__ import annotations

import numpy as np

from detak.calibration.counts import MISSING  # the counts sentinel (no ADC produces it)

__all__ = ["MISSING", "RingBuffer"]


class RingBuffer:
    """A circular int32 buffer (channels, capacity) over absolute sample indices."""

    def __init__(self, n_channels: int, capacity: int) -> None:
        if n_channels < 1 or capacity < 1:
            raise ValueError(f"ring buffer needs >= 1 channel and capacity, got {n_channels}, "
                             f"{capacity}")
        self.capacity = int(capacity)
        self.data = np.full((n_channels, self.capacity), MISSING, dtype=np.int32)
        self.end = 0                      # one past the highest index written

    @property
    def start(self) -> int:
        """Oldest index still held."""
        return max(0, self.end - self.capacity)

    def _clear(self, a: int, b: int) -> None:
        if b - a >= self.capacity:
            self.data[:] = MISSING
            return
        for lo, hi in self._slices(a, b):
            self.data[:, lo:hi] = MISSING

    def _slices(self, a: int, b: int) -> list[tuple[int, int]]:
        lo, hi = a % self.capacity, (b - 1) % self.capacity + 1
        return [(lo, hi)] if lo < hi else [(lo, self.capacity), (0, hi)]

    def write(self, start: int, counts: np.ndarray) -> None:
        """Store ``counts`` (channels, n) at indices ``start .. start + n - 1``."""
        counts = np.asarray(counts)
        n = counts.shape[1]
        if n == 0:
            return
        if n > self.capacity:                       # only the newest part fits
            start, counts, n = start + n - self.capacity, counts[:, -self.capacity:], \
                self.capacity
        if start > self.end:
            self._clear(self.end, start)
        pos = 0
        for lo, hi in self._slices(start, start + n):
            self.data[:, lo:hi] = counts[:, pos:pos + hi - lo]
            pos += hi - lo
        self.end = max(self.end, start + n)

    def read(self, a: int, b: int) -> np.ndarray:
        """Samples ``a .. b - 1`` (MISSING outside what the window holds)."""
        out = np.full((self.data.shape[0], max(0, b - a)), MISSING, dtype=np.int32)
        lo, hi = max(a, self.start), min(b, self.end)
        if hi > lo:
            pos = lo - a
            for s_lo, s_hi in self._slices(lo, hi):
                out[:, pos:pos + s_hi - s_lo] = self.data[:, s_lo:s_hi]
                pos += s_hi - s_lo
        return out
