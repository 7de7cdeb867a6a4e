"""Tests for detak.device.ringbuffer.RingBuffer."""

from __future__ import annotations

import numpy as np
import pytest

from detak.device.ringbuffer import MISSING, RingBuffer


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 1 channel and capacity"):
        RingBuffer(0, 10)


def test_random_blocks_read_back_like_a_plain_array() -> None:
    rng = np.random.default_rng(0)
    rb = RingBuffer(3, 50)
    truth = np.full((3, 1000), MISSING, dtype=np.int32)
    pos = 0
    while pos < 900:
        pos += int(rng.integers(0, 4))                   # sometimes skip samples
        n = int(rng.integers(1, 12))
        block = rng.integers(-1000, 1000, (3, n), dtype=np.int32)
        rb.write(pos, block)
        truth[:, pos:pos + n] = block
        pos += n
        a = int(rng.integers(rb.start, rb.end))
        assert np.array_equal(rb.read(a, rb.end), truth[:, a:rb.end])


def test_reading_outside_the_window_gives_missing() -> None:
    rb = RingBuffer(1, 4)
    rb.write(0, np.arange(1, 11).reshape(1, 10))        # longer than the buffer: newest kept
    assert rb.start == 6
    assert rb.read(4, 12).tolist() == [[MISSING, MISSING, 7, 8, 9, 10, MISSING, MISSING]]


def test_a_jump_beyond_the_capacity_clears_everything() -> None:
    rb = RingBuffer(1, 4)
    rb.write(0, np.array([[1, 2, 3, 4]]))
    rb.write(100, np.array([[5]]))
    assert rb.read(97, 101).tolist() == [[MISSING, MISSING, MISSING, 5]]
