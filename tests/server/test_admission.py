"""`detak.server.admission.Gate` and the Retry-After estimate, without a server (the real
server's shedding: tests/sync/test_load_shedding.py)."""

from __future__ import annotations

import asyncio

from detak.server.admission import Admission, Gate


def test_waiters_are_served_in_order_returning_kiosks_first() -> None:
    async def run() -> list[str]:
        gate = Gate(limit=1, waiting=3, wait_s=5.0)
        order: list[str] = []

        async def ask(name: str, priority: bool = False) -> None:
            if await gate.acquire(priority):
                order.append(name)
                await asyncio.sleep(0)
                gate.release()
            else:
                order.append(f"shed {name}")

        assert await gate.acquire()
        tasks = [asyncio.ensure_future(ask("a")), asyncio.ensure_future(ask("b"))]
        await asyncio.sleep(0)
        tasks.append(asyncio.ensure_future(ask("back", priority=True)))
        await asyncio.sleep(0)
        tasks.append(asyncio.ensure_future(ask("c")))      # the line is full now: shed
        await asyncio.sleep(0)
        gate.release()
        await asyncio.gather(*tasks)
        assert gate.active == 0 and gate.queued == 0
        return order

    assert asyncio.run(run()) == ["shed c", "back", "a", "b"]


def test_a_waiter_is_shed_after_its_wait() -> None:
    async def run() -> tuple[bool, int]:
        gate = Gate(limit=1, waiting=5, wait_s=0.05)
        assert await gate.acquire()
        got = await gate.acquire()
        return got, gate.queued

    assert asyncio.run(run()) == (False, 0)


def test_retry_after_grows_with_the_kiosks_sent_home() -> None:
    now = [100.0]
    adm = Admission(None, limit=1, waiting=0, wait_s=0.0, clock=lambda: now[0])
    assert adm.retry_after(now[0]) == 1                   # nothing known yet: 1 s
    adm._done.extend(100.0 - i * 0.1 for i in range(100, 0, -1))   # 10 completions/s
    for k in range(60):
        adm._deferred[f"{k:032x}"] = 99.0
    assert adm.retry_after(now[0]) == 6                   # (60 sent home + 0 held) / 10 per s
    now[0] = 200.0                                         # an hour of nothing: forgotten
    assert adm.retry_after(now[0]) == 1
