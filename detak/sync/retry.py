"""Retries with exponential backoff and full jitter, bounded (docs/sync.md §8).

The wait before retry ``attempt`` (1, 2, ...) is ``uniform(0, min(cap, base * 2**attempt))``;
a request is tried at most ``attempts`` times in one run.

A server that sheds load answers ``503 overloaded`` with ``Retry-After`` (§8.1): that is a
*deferral*, not a failed attempt. The client waits ``Retry-After`` (at most 30 s) times
``uniform(1, 1.5)`` — jittered, so kiosks sent home together do not come back together — and
sends the request again; one run waits at most ``defer_s`` seconds in all for a busy server.

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
    """``base`` and ``cap`` in seconds; ``attempts``: tries per request (the first included);
    ``defer_s``: the seconds one run may spend waiting on ``503 overloaded`` answers."""

    base: float = 0.5
    cap: float = 30.0
    attempts: int = 6
    defer_s: float = 600.0

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.attempts < 1 or self.defer_s < 0:
            raise ValueError("base, cap and defer_s must be >= 0 and attempts >= 1")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RetryPolicy:
        """The policy, with ``DETAK_SYNC_RETRY`` (e.g. ``base=0.05,cap=1,attempts=4``)
        overriding its fields: for tests and fault benchmarks that cannot wait 30 s.

        >>> RetryPolicy.from_env({"DETAK_SYNC_RETRY": "base=0.1,attempts=3"})
        RetryPolicy(base=0.1, cap=30.0, attempts=3, defer_s=600.0)
        """
        import os

        text = (environ if environ is not None else os.environ).get(ENV, "")
        fields: dict[str, float | int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            if name not in ("base", "cap", "attempts", "defer"):
                raise ValueError(f"{ENV}: unknown field {name!r} (base, cap, attempts, defer)")
            name = "defer_s" if name == "defer" else name
            fields[name] = int(value) if name == "attempts" else float(value)
        return cls(**fields)  # type: ignore[arg-type]

    def ceiling(self, attempt: int) -> float:
        """The longest wait before retry ``attempt``."""
        return min(self.cap, self.base * 2.0 ** min(int(attempt), 60))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """A wait drawn with full jitter before retry ``attempt``."""
        return (rng or random).uniform(0.0, self.ceiling(attempt))


#: the longest ``Retry-After`` of an overloaded server that is honoured as it is
DEFER_CAP_S = 30.0
#: the error code of a server shedding load (503 with Retry-After)
OVERLOADED = "overloaded"


def deferral_s(retry_after: str | None, rng: random.Random | None = None) -> float:
    """How long to wait after ``503 overloaded`` with this ``Retry-After``: its seconds
    (1 when absent or unreadable, at most 30) times ``uniform(1, 1.5)``.

    >>> 3.0 <= deferral_s("3", random.Random(0)) <= 4.5, deferral_s("900") <= 45.0
    (True, True)
    """
    after = retry_after_s(retry_after, DEFER_CAP_S) or 1.0
    return max(after, 0.1) * (rng or random).uniform(1.0, 1.5)


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
