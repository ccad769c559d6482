"""Digest lanes (webhook/lanes.py): one namespace's reviews that need a digest queue behind each other, never
in front of another namespace's; a review whose digest was computed while it waited decides on the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aigate.controller.handlers import Regates
from aigate.webhook.lanes import DigestLanes, TooLate


def test_a_namespace_busy_digesting_does_not_hold_another_back() -> None:
    async def scenario() -> list[str]:
        lanes = DigestLanes(workers=2)
        release_a = threading.Event()
        done: list[str] = []

        def slow_a() -> str:
            release_a.wait(30)
            done.append("a")
            return "a"

        def quick(name: str) -> str:
            done.append(name)
            return name

        now = time.perf_counter()
        a1 = asyncio.create_task(lanes.decide("team-a", slow_a, lambda: False, now))
        a2 = asyncio.create_task(lanes.decide("team-a", lambda: quick("a2"), lambda: False, now))
        b = asyncio.create_task(lanes.decide("team-b", lambda: quick("b"), lambda: False, now))
        assert await b == "b"
        assert done == ["b"], "team-a's second review ran beside its first, or team-b waited for team-a"
        release_a.set()
        assert await a1 == "a" and await a2 == "a2"
        return done

    assert asyncio.run(scenario()) == ["b", "a", "a2"]


def test_a_digest_computed_while_waiting_is_decided_on_the_loop() -> None:
    async def scenario() -> tuple[int, int]:
        lanes = DigestLanes(workers=2)
        remembered = threading.Event()
        release = threading.Event()
        threads: list[int] = []

        def first() -> None:
            release.wait(30)
            remembered.set()
            threads.append(threading.get_ident())

        def second() -> None:
            threads.append(threading.get_ident())

        now = time.perf_counter()
        t1 = asyncio.create_task(lanes.decide("team-a", first, remembered.is_set, now))
        t2 = asyncio.create_task(lanes.decide("team-a", second, remembered.is_set, now))
        await asyncio.sleep(0)
        release.set()
        await t1
        await t2
        return threads[1], threading.get_ident()

    on, loop = asyncio.run(scenario())
    assert on == loop


def test_a_review_the_api_server_stopped_waiting_for_is_not_worked_on() -> None:
    ran: list[str] = []

    async def scenario() -> None:
        lanes = DigestLanes(give_up_after=5)
        long_ago = time.perf_counter() - 6
        with pytest.raises(TooLate, match="behind namespace team-a's other reviews"):
            await lanes.decide("team-a", lambda: ran.append("x"), lambda: False, long_ago)

    asyncio.run(scenario())
    assert ran == []


def test_configmap_changes_during_a_regate_coalesce_into_one_more() -> None:
    """A tenant rewriting a referenced ConfigMap while its workload is being reconciled costs one more reconcile,
    not one per write; another workload's re-gate is not held back."""

    async def scenario() -> list[str]:
        regates = Regates()
        runs: list[str] = []
        release = asyncio.Event()

        async def slow() -> None:
            runs.append("a")
            if len(runs) == 1:
                await release.wait()

        async def other() -> None:
            runs.append("b")

        regates.request(("team-a", "wl"), slow)
        await asyncio.sleep(0)
        for _ in range(50):  # written 50 times while the first reconcile runs
            regates.request(("team-a", "wl"), slow)
        regates.request(("team-b", "wl"), other)
        await asyncio.sleep(0)
        assert runs == ["a", "b"]
        release.set()
        await regates.idle()
        return runs

    assert asyncio.run(scenario()) == ["a", "b", "a"]
