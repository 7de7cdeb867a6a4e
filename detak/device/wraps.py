"""Absolute sample indices from a short counter that wraps (the Cyton's 8-bit sample number).

A counter of ``modulo`` values cannot tell a jump of k from a jump of k + m x modulo: after a
silence longer than one wrap period the number of wraps ``m`` must come from time. The rule
here separates the two reasons why packets can be far apart in host time:

* the **link was silent** (packets lost on the radio): the device kept sampling, the packets
  after the silence arrive in real time, so the time between the last packet before and the
  first packet after the silence is the silence;
* the **host stalled** (an fsync on an SD card, a slow consumer): the device kept sending, the
  bytes queued in the OS and arrive together, possibly in several reads in quick succession
  (a tty read returns at most 4 KiB). They are contiguous: no wrap.

The device sends one packet per sample period ``1 / fs``, so a packet was sent no later than
``t_j - a / fs`` for every read j that came after it, where ``t_j`` is the host time of read j
and ``a`` the number of packets received after it up to and including read j. The *estimated
send time* of a packet is the smallest of these bounds. For a backlog the bound falls back to
(about) the time of the packet before the stall, so no wrap is counted; for packets arriving in
real time it is their arrival time. The wraps of a jump are ``round((elapsed * fs - k) /
modulo)`` (never negative) with ``elapsed`` the estimated send time of the first packet after
the jump minus that of the last packet before it.

Only a jump whose first estimate says "at least one wrap" needs the later reads: its packets
are held back until ``settle_s`` of host time has passed since the jump *and* a read arrives
that does not lower the bound (the host is waiting for data again, the backlog is drained), or
at once when the bound drops to "no wrap". After ``max_hold_s`` they are released whatever the
reads look like. Nothing is held when host times do not advance (captures fed without times).

>>> u = WrappingCounter(modulo=256, fs=250.0)
>>> [i for i, _ in u.feed([(n, None) for n in (0, 1, 2)], host_time=0.0)]
[0, 1, 2]
>>> stalled = u.feed([(n % 256, None) for n in range(3, 303)], host_time=1.2)   # 1.2 s backlog
>>> stalled[0][0], u.lost
(3, 0)
>>> u.feed([(559 % 256, None)], host_time=2.236)     # after ~1 s of radio silence: held
[]
>>> out = []
>>> for k in range(1, 60):                          # more packets in real time
...     out += u.feed([((559 + k) % 256, None)], host_time=2.236 + k / 250)
>>> out[0][0], len(out), u.lost, u.holding          # 303 .. 558 were lost: a wrap
(559, 60, 256, 0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class WrappingCounter(Generic[T]):
    """Unwraps a ``modulo`` counter into absolute indices (see the module docstring).

    `feed` takes one read's packets as ``(counter value, payload)`` in arrival order and returns
    the released ones as ``(absolute index, payload)``; repeated values (a jump of 0) are
    dropped and counted in ``duplicates``, missing ones counted in ``lost``.
    """

    def __init__(self, modulo: int, fs: float, settle_s: float = 0.2,
                 max_hold_s: float = 2.0) -> None:
        if modulo < 2 or not fs > 0:
            raise ValueError(f"WrappingCounter needs modulo >= 2 and fs > 0, got {modulo}, {fs}")
        self.modulo = int(modulo)
        self.fs = float(fs)
        self.settle_s = float(settle_s)
        self.max_hold_s = float(max_hold_s)
        self.lost = 0
        self.duplicates = 0
        self.reset()

    def reset(self) -> None:
        """Forget the stream (the device restarted its counter); held packets are dropped."""
        self._last: int | None = None          # counter value of the last released packet
        self._index = 0
        self._last_t = 0.0                     # its estimated send time
        self._held: list[tuple[int, T, float]] = []
        self._bound = 0.0                      # estimated send time of the held jump's first
        self._opened = 0.0                     # host time of the read that opened the jump
        self._step = 0

    @property
    def holding(self) -> int:
        """Packets held back while the wraps of a jump are not yet known."""
        return len(self._held)

    def _wraps(self, elapsed: float, step: int) -> int:
        return max(0, int(round((elapsed * self.fs - step) / self.modulo)))

    def feed(self, packets: Sequence[tuple[int, T]], host_time: float) -> list[tuple[int, T]]:
        n = len(packets)
        out: list[tuple[int, T]] = []
        if self._held:
            candidate = host_time - (len(self._held) - 1 + n) / self.fs
            lowered = candidate < self._bound - 0.5 / self.fs
            self._bound = min(self._bound, candidate)
            waited = host_time - self._opened
            if (self._wraps(self._bound - self._last_t, self._step) == 0
                    or (waited >= self.settle_s and not lowered) or waited >= self.max_hold_s):
                out += self._release()
        for k, (num, payload) in enumerate(packets):
            est = host_time - (n - 1 - k) / self.fs
            if self._held:
                self._held.append((num, payload, est))
                continue
            if self._last is None:
                self._take(0, num, est)
                out.append((self._index, payload))
                continue
            step = (num - self._last) % self.modulo
            if step == 0:
                self.duplicates += 1
                continue
            if self._wraps(est - self._last_t, step):      # maybe wrapped: wait for more reads
                self._held, self._bound, self._opened, self._step = [(num, payload, est)], est, \
                    host_time, step
                continue
            self._take(self._index + step, num, est)
            out.append((self._index, payload))
        return out

    def _take(self, index: int, num: int, est: float) -> None:
        self.lost += max(0, index - self._index - 1) if self._last is not None else 0
        self._index, self._last, self._last_t = index, num, est

    def _release(self) -> list[tuple[int, T]]:
        held, self._held = self._held, []
        out: list[tuple[int, T]] = []
        first_num, first_payload, first_est = held[0]
        wraps = self._wraps(self._bound - self._last_t, self._step)
        self._take(self._index + self._step + wraps * self.modulo, first_num,
                   min(first_est, self._bound))
        out.append((self._index, first_payload))
        for num, payload, est in held[1:]:
            assert self._last is not None
            step = (num - self._last) % self.modulo
            if step == 0:
                self.duplicates += 1
                continue
            self._take(self._index + step, num, est)
            out.append((self._index, payload))
        return out
