"""Admission work that parses or hashes (a spec digest not remembered), kept from stalling other tenants' reviews
(used by aigate.webhook.review).

A review whose spec digest is remembered decides on the event loop in microseconds. One that needs a digest parses
the spec and its ConfigMaps (up to 256 KB of YAML each): that goes to a worker thread, but threads share the GIL
with the event loop, and a tenant who rewrites a referenced ConfigMap in a loop while flooding dry-run creates
makes every one of their reviews need a fresh digest. Unchecked, every worker parses that tenant's suite at once
and the loop, which answers everybody else, gets a sliver of the interpreter.

So digests run one namespace at a time each (a lane per namespace) on a small pool: the flooding tenant occupies
one worker and queues behind themselves; other namespaces' digests take the other workers; the loop keeps most of
the GIL. After its turn comes, a review whose digest was computed meanwhile (by the review ahead of it, for the
same versions) decides on the loop, and one the API server has stopped waiting for is not worked on at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

DIGEST_WORKERS = 2


class TooLate(Exception):
    """The review waited in its namespace's lane past the webhook timeout: the API server has answered it already
    (with the webhook configuration's failurePolicy)."""


class DigestLanes:
    def __init__(self, workers: int = DIGEST_WORKERS, give_up_after: float = 5.0) -> None:
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="aigate-digest")
        self.give_up_after = give_up_after
        self._lanes: dict[str, asyncio.Lock] = {}  # one per namespace that ever needed a digest: bounded by them

    async def decide(self, namespace: str, decide: Callable[[], T], fresh: Callable[[], bool], started: float) -> T:
        """`decide` off the loop, in `namespace`'s lane, unless `fresh()` says the digest is remembered by the time
        its turn comes. `started`: the review's time.perf_counter() at arrival."""
        lane = self._lanes.setdefault(namespace, asyncio.Lock())
        async with lane:
            waited = time.perf_counter() - started
            if waited > self.give_up_after:
                raise TooLate(f"waited {waited:.1f}s behind namespace {namespace}'s other reviews")
            if fresh():
                return decide()
            return await asyncio.get_running_loop().run_in_executor(self.pool, decide)
