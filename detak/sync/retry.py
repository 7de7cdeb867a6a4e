"""Retries with exponential backoff and full jitter, bounded (docs/sync.md §8).

The wait before retry ``attempt`` (1, 2, ...) is ``uniform(0, min(cap, base * 2**attempt))``;
a request is tried at most ``attempts`` times in one run.

>>> import random
>>> policy = RetryPolicy()
>>> all(0 <= policy.delay(a, random.Random(a)) <= min(30.0, 0.5 * 2 ** a) for a in range(1, 9))
True
>>> retryable_status(503), retryable_status(429), retryable_status(404), retryable_status(409)
(True, True, False, False)
"""

from __future__ import annotations

import dataclasses
import random

ENV = "DETAK_SYNC_RETRY"


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """``base`` and ``cap`` in seconds; ``attempts``: tries per request (the first included)."""

    base: float = 0.5
    cap: float = 30.0
    attempts: int = 6

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.attempts < 1:
            raise ValueError("base and cap must be >= 0 and attempts >= 1")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RetryPolicy:
        """The policy, with ``DETAK_SYNC_RETRY`` (e.g. ``base=0.05,cap=1,attempts=4``)
        overriding its fields: for tests and fault benchmarks that cannot wait 30 s.

        >>> RetryPolicy.from_env({"DETAK_SYNC_RETRY": "base=0.1,attempts=3"})
        RetryPolicy(base=0.1, cap=30.0, attempts=3)
        """
        import os

        text = (environ if environ is not None else os.environ).get(ENV, "")
        fields: dict[str, float | int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            if name not in ("base", "cap", "attempts"):
                raise ValueError(f"{ENV}: unknown field {name!r} (base, cap, attempts)")
            fields[name] = int(value) if name == "attempts" else float(value)
        return cls(**fields)  # type: ignore[arg-type]

    def ceiling(self, attempt: int) -> float:
        """The longest wait before retry ``attempt``."""
        return min(self.cap, self.base * 2.0 ** min(int(attempt), 60))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """A wait drawn with full jitter before retry ``attempt``."""
        return (rng or random).uniform(0.0, self.ceiling(attempt))


def retryable_status(status: int) -> bool:
    """5xx, 408 and 429 are retried; other answers are final (409 is handled by the blob
    upload: it names the server's offset)."""
    return status >= 500 or status in (408, 429)


def retry_after_s(value: str | None, cap: float) -> float | None:
    """A ``Retry-After`` header in seconds (capped), or None (absent or an HTTP date).

    >>> retry_after_s("3", 30.0), retry_after_s("900", 30.0), retry_after_s(None, 30.0)
    (3.0, 30.0, None)
    """
    try:
        return min(max(float(value), 0.0), cap) if value is not None else None
    except ValueError:
        return None
