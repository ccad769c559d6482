"""The load driver: runs a workload's suite against every declared model and through the fallback path.

Baseline: the suite x `suite.repeats` against every model (primary and each fallback), scheduled open-loop
at `traffic.peakRequestsPerSecond` with Poisson arrivals (exponential gaps, seeded: as independent callers
arrive, so bursts and the queueing they cause show as in production; `RunOptions.arrivals="uniform"` for even
gaps), with at most `concurrency` requests in flight. Concurrency is what
Little's law gives for the declared traffic: ceil(peak rps x slo.p95LatencyMs), capped by
`traffic.maxTestConcurrency`. The SLO's p95 is used as the expected latency (not a warm-up request): it
needs no extra spend, and a provider slower than its SLO then shows up as client queue time, which is
included in the latency the gates judge, as a caller at peak load would see it.

Fallback: for each fault mode, each case goes through the production path: the primary with the fault
injected on every attempt (retries per spec), each fallback model in order, the human route, safe stop.

Spend is tracked against `budget.gateRunMaxUSD`: before each request its worst case (prompt tokens +
max_tokens) is reserved, and a request that could push the spend over the limit is not sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from aigate import __version__
from aigate.api.load import ResolvedWorkload
from aigate.api.models import AIWorkloadSpec, Case, ModelRef
from aigate.gates.numbers import ASSUMED_TIMEOUT_X_P95, STOP_MIN_REQUESTS, fault_deadline_ms
from aigate.measurements import (
    Attempt,
    CaseRun,
    ErrorKind,
    FaultMode,
    FaultRun,
    HumanRouteProbe,
    Measurements,
    ModelIdentity,
    ModelMeasurement,
    Outcome,
    Price,
    Usage,
    required_fault_modes,
)
from aigate.probes.assertions import evaluate
from aigate.probes.credentials import HUMAN_ROUTE_KEY, Scrubber
from aigate.probes.humanroute import probe_human_route
from aigate.probes.pricing import cost_of, cost_usd, resolve_price
from aigate.probes.providers import Prepared, ProviderClient, Reply, estimate_tokens

Progress = Callable[[str], None]

RETRYABLE: frozenset[ErrorKind] = frozenset({"timeout", "http_429", "http_5xx", "connection", "malformed"})
"""What a production client retries; a 4xx is the caller's fault and is not retried."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunOptions:
    concurrency: int | None = None
    """Overrides the concurrency derived from the traffic and the SLO."""
    rate_rps: float | None = None
    """Overrides the open-loop request rate (default traffic.peakRequestsPerSecond)."""
    default_timeout_ms: float | None = None
    """Per-request timeout when slo.timeoutMs is undeclared; None means 2 x slo.p95LatencyMs."""
    clock: Callable[[], datetime] = _utcnow
    endpoint_overrides: Mapping[str, str] = field(default_factory=dict)
    """Model name -> base URL that replaces the declared endpoint (the demo's in-process simulators)."""
    fault_repeats: int = 1
    """How many times each case goes through the fallback path per fault mode."""
    fault_modes: Sequence[FaultMode] | None = None
    """Default: every mode the primary must be tried with (`required_fault_modes`: a streaming primary's stall too)."""
    fault_retry_after_s: float = 1.0
    """Retry-After the injected 429 carries."""
    run_faults: bool = True
    progress_every_s: float = 2.0
    """Progress lines at most this often per phase (plus one at the end of each phase)."""
    arrivals: Literal["poisson", "uniform"] = "poisson"
    """Open-loop arrival process at the rate: Poisson (exponential gaps) or uniform (even gaps)."""
    arrival_seed: int = 0
    """Seed of the Poisson gaps, so a run's schedule can be replayed."""
    time_scale: float = 1.0
    """The providers run this many times as slow as real time (a simulator's timeScale: 0.2 answers five times
    faster). Every wait (timeouts, backoff, Retry-After, deadlines, the open-loop schedule) shrinks by it and
    every measured duration grows by its inverse, so that figures and judgements read as at real time. The human
    route is not a model: its probe keeps real time. Error details keep the wall-clock timeout they waited."""


def concurrency_for(spec: AIWorkloadSpec, override: int | None = None) -> int:
    """ceil(peak rps x expected latency), expected latency = slo.p95LatencyMs, capped by maxTestConcurrency."""
    if override is not None:
        return max(1, override)
    wanted = math.ceil(spec.traffic.peak_requests_per_second * spec.slo.p95_latency_ms / 1000)
    return max(1, min(wanted, spec.traffic.max_test_concurrency))


def effective_timeout_ms(spec: AIWorkloadSpec, options: RunOptions) -> tuple[float, bool]:
    """(timeout, assumed): the declared slo.timeoutMs, else the option, else 2 x slo.p95LatencyMs."""
    if spec.slo.timeout_ms is not None:
        return spec.slo.timeout_ms, False
    if options.default_timeout_ms is not None:
        return options.default_timeout_ms, True
    return ASSUMED_TIMEOUT_X_P95 * spec.slo.p95_latency_ms, True


def arrival_offsets(count: int, rate_rps: float, arrivals: str, seed: int) -> list[float]:
    """Seconds from the start at which each of `count` requests is due: the first at 0, then exponential gaps of
    mean 1/rate (Poisson) or even gaps of 1/rate (uniform)."""
    if arrivals == "uniform":
        return [i / rate_rps for i in range(count)]
    rng = random.Random(seed)
    out, t = [], 0.0
    for _ in range(count):
        out.append(t)
        t += rng.expovariate(rate_rps)
    return out


class Budget:
    """Spend so far plus what in-flight requests could still cost; refuses what could cross the limit."""

    __slots__ = ("exhausted", "limit", "reserved", "spent")

    def __init__(self, limit_usd: float) -> None:
        self.limit = limit_usd
        self.spent = 0.0
        self.reserved = 0.0
        self.exhausted = False

    def reserve(self, worst_case_usd: float) -> bool:
        if self.exhausted or self.spent + self.reserved + worst_case_usd > self.limit:
            self.exhausted = True
            return False
        self.reserved += worst_case_usd
        return True

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        self.reserved -= reserved_usd
        self.spent += actual_usd


@dataclass
class _Model:
    ref: ModelRef
    client: ProviderClient
    price: Price | None
    price_problem: str | None
    prepared: dict[str, Prepared]
    worst_case_usd: dict[str, float]
    gate: asyncio.Semaphore
    """Bounds real requests to this model in the fallback phase."""


@dataclass(slots=True)
class _Tried:
    attempts: list[Attempt]
    reply: Reply | None
    budget_stop: bool = False


def _sum_usage(attempts: Sequence[Attempt]) -> Usage:
    return Usage(
        input_tokens=sum(a.usage.input_tokens for a in attempts),
        output_tokens=sum(a.usage.output_tokens for a in attempts),
        cache_read_tokens=sum(a.usage.cache_read_tokens for a in attempts),
        cache_write_tokens=sum(a.usage.cache_write_tokens for a in attempts),
        reasoning_tokens=sum(a.usage.reasoning_tokens for a in attempts),
        service_tier=next((a.usage.service_tier for a in reversed(attempts) if a.usage.service_tier), None),
        estimated=any(a.usage.estimated for a in attempts),
    )


class _Reporter:
    """Throttled progress lines: 'baseline primary: 12/24 cases, 8.1s'."""

    def __init__(self, progress: Progress | None, label: str, total: int, every_s: float, scrub: Scrubber) -> None:
        self.progress = progress
        self.label = label
        self.total = total
        self.every_s = every_s
        self.scrub = scrub
        self.done = 0
        self.start = time.perf_counter()
        self.last = self.start

    def tick(self) -> None:
        self.done += 1
        if self.progress is None:
            return
        now = time.perf_counter()
        if self.done == self.total or now - self.last >= self.every_s:
            self.last = now
            self.emit()

    def emit(self) -> None:
        if self.progress is not None:
            elapsed = time.perf_counter() - self.start
            self.progress(self.scrub(f"{self.label}: {self.done}/{self.total} cases, {elapsed:.1f}s"))


class _Run:
    def __init__(
        self,
        resolved: ResolvedWorkload,
        credentials: Mapping[str, str],
        options: RunOptions,
        progress: Progress | None,
    ) -> None:
        self.resolved = resolved
        self.spec = resolved.workload.spec
        self.credentials = credentials
        self.options = options
        self.scrub = Scrubber(credentials.values())
        self.progress = progress
        self.concurrency = concurrency_for(self.spec, options.concurrency)
        timeout_ms, self.timeout_assumed = effective_timeout_ms(self.spec, options)
        self.timeout_ms = timeout_ms
        self.timeout_s = timeout_ms / 1000
        self.rate = options.rate_rps or self.spec.traffic.peak_requests_per_second
        self.budget = Budget(self.spec.budget.gate_run_max_usd)
        self.stopped_before: str | None = None
        self.error_stop: str | None = None
        """Why suite.stopOnErrorRate stopped the run, once it has."""
        retries = self.spec.fallback.retries
        self.max_attempts = 1 + retries.attempts
        self.backoff_s = retries.backoff_ms / 1000
        self.models: dict[str, _Model] = {}
        if not options.time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {options.time_scale}")
        self.scale = options.time_scale

    @property
    def stopped(self) -> bool:
        return self.budget.exhausted or self.error_stop is not None

    def _check_error_rate(self, m: _Model, runs: list[CaseRun | None]) -> None:
        """Stop the run once the model's error rate so far passes suite.stopOnErrorRate (from STOP_MIN_REQUESTS on)."""
        bound = self.spec.suite.stop_on_error_rate
        done = [r for r in runs if r is not None]
        if bound is None or self.error_stop is not None or len(done) < STOP_MIN_REQUESTS:
            return
        errors = [r for r in done if not r.ok]
        if len(errors) / len(done) > bound:
            kinds: dict[str, int] = {}
            for r in errors:
                kinds[r.error or "other"] = kinds.get(r.error or "other", 0) + 1
            detail = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
            self.error_stop = (
                f"suite.stopOnErrorRate {bound:g} passed on {m.ref.name}: {len(errors)}/{len(done)} requests ended "
                f"in an error ({detail})"
            )

    def _offsets(self, count: int) -> list[float]:
        """The open-loop schedule in wall-clock seconds (shrunk by the time scale)."""
        rate = self.rate / self.scale
        return arrival_offsets(count, rate, self.options.arrivals, self.options.arrival_seed)

    def _ms(self, wall_s: float) -> float:
        """A wall-clock duration as it would have been at real time, in ms."""
        return wall_s * 1000 / self.scale

    def _rescaled(self, reply: Reply) -> Reply:
        if self.scale != 1.0:
            a = reply.attempt
            ttft = a.ttft_ms / self.scale if a.ttft_ms is not None else None
            itl = a.itl_ms / self.scale if a.itl_ms is not None else None
            update = {"latency_ms": a.latency_ms / self.scale, "ttft_ms": ttft, "itl_ms": itl}
            reply.attempt = a.model_copy(update=update)
        return reply

    def _say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(self.scrub(line))

    def _open_models(self, stack: AsyncExitStack) -> None:
        pool = max(self.concurrency, self.spec.traffic.max_test_concurrency)
        for ref in self.spec.models:
            client = ProviderClient(
                ref,
                api_key=self.credentials.get(ref.name),
                system_prompt=self.resolved.system_prompt,
                tools=self.resolved.tools,
                base_url=self.options.endpoint_overrides.get(ref.name),
                max_connections=pool,
                timeout_s=self.timeout_s,
                scrubber=self.scrub,
                fault_retry_after_s=self.options.fault_retry_after_s,
            )
            stack.push_async_callback(client.aclose)
            price, problem = resolve_price(ref)
            prepared = {c.name: client.prepare(c.messages) for c in self.resolved.cases}
            worst = {
                name: cost_of(price, estimate_tokens(p.input_chars), ref.max_tokens) for name, p in prepared.items()
            }
            gate = asyncio.Semaphore(self.spec.traffic.max_test_concurrency)
            self.models[ref.name] = _Model(ref, client, price, problem, prepared, worst, gate)

    # -- one case against one model, retries included ------------------------------------------------------

    async def _try(
        self,
        m: _Model,
        case: Case,
        *,
        fault: FaultMode | None = None,
        deadline: float | None = None,
        gated: bool = False,
    ) -> _Tried:
        prepared = m.prepared[case.name]
        worst = m.worst_case_usd[case.name]
        attempts: list[Attempt] = []
        reply: Reply | None = None
        for i in range(self.max_attempts):
            if reply is not None:
                wait = self.backoff_s * (2 ** (i - 1))
                if reply.retry_after_s is not None:
                    wait = max(wait, reply.retry_after_s)
                wait *= self.scale
                if deadline is not None and time.perf_counter() + wait >= deadline:
                    break
                if wait > 0:
                    await asyncio.sleep(wait)
            timeout = self.timeout_s * self.scale
            if deadline is not None:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                timeout = min(timeout, remaining)
            if fault is not None:
                # answered by the transport: nothing is sent, nothing is spent
                reply = self._rescaled(await m.client.call(prepared, timeout_s=timeout, fault=fault))
            else:
                if not self.budget.reserve(worst):
                    if self.stopped_before is None:
                        self.stopped_before = f"{m.ref.name} case {case.name}"
                    return _Tried(attempts, reply, budget_stop=True)
                actual = 0.0
                try:
                    if gated:
                        async with m.gate:
                            reply = self._rescaled(await m.client.call(prepared, timeout_s=timeout))
                    else:
                        reply = self._rescaled(await m.client.call(prepared, timeout_s=timeout))
                    actual = cost_usd(m.price, reply.attempt.usage) or 0.0
                finally:
                    self.budget.settle(worst, actual)
            attempts.append(reply.attempt)
            if reply.ok or reply.attempt.error not in RETRYABLE:
                break
        return _Tried(attempts, reply)

    # -- baseline -------------------------------------------------------------------------------------------

    async def _baseline_one(self, m: _Model, case: Case, repeat: int, scheduled: float) -> CaseRun | None:
        sent = time.perf_counter()
        queue_ms = max(0.0, self._ms(sent - scheduled))
        tried = await self._try(m, case)
        if not tried.attempts or tried.reply is None:
            return None  # the budget refused it: never sent
        reply = tried.reply
        latency = queue_ms + self._ms(time.perf_counter() - sent)
        usage = _sum_usage(tried.attempts)
        ok = reply.ok
        ttft = None
        if ok and reply.attempt.ttft_ms is not None:
            ttft = queue_ms + self._ms(reply.sent_at - sent) + reply.attempt.ttft_ms
        return CaseRun(
            case=case.name,
            model=m.ref.name,
            repeat=repeat,
            adversarial=case.adversarial,
            ok=ok,
            error=reply.attempt.error,
            error_detail=reply.attempt.error_detail,
            latency_ms=latency,
            queue_ms=queue_ms,
            ttft_ms=ttft,
            itl_ms=reply.attempt.itl_ms if ok else None,
            attempts=tried.attempts,
            usage=usage,
            cost_usd=cost_usd(m.price, usage),
            text=reply.text,
            tool_calls=reply.tool_calls,
            assertions=evaluate(case.expect, reply.text, reply.tool_calls, latency) if ok else [],
            identity=reply.identity,
        )

    async def baseline(self, m: _Model) -> ModelMeasurement:
        """Open-loop: request i is due at t0 + i / rate; waiting for a free slot is client queue time."""
        plan = [(rep, case) for rep in range(self.spec.suite.repeats) for case in self.resolved.cases]
        slots = asyncio.Semaphore(self.concurrency)
        results: list[CaseRun | None] = [None] * len(plan)
        report = _Reporter(
            self.progress, f"baseline {m.ref.name}", len(plan), self.options.progress_every_s, self.scrub
        )
        tasks: list[asyncio.Task[None]] = []

        async def one(i: int, rep: int, case: Case, scheduled: float) -> None:
            try:
                results[i] = await self._baseline_one(m, case, rep, scheduled)
                self._check_error_rate(m, results)
            finally:
                slots.release()
                report.tick()

        offsets = self._offsets(len(plan))
        t0 = time.perf_counter()
        for i, (rep, case) in enumerate(plan):
            scheduled = t0 + offsets[i]
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            if self.stopped:
                slots.release()
                if self.error_stop is not None and self.stopped_before is None:
                    self.stopped_before = f"{m.ref.name} case {case.name}"
                break
            tasks.append(asyncio.create_task(one(i, rep, case, scheduled)))
        await asyncio.gather(*tasks)
        runs = [r for r in results if r is not None]
        if report.done < len(plan):
            report.emit()
        identities: list[ModelIdentity] = []
        for r in runs:
            if r.identity is not None and r.identity not in identities:
                identities.append(r.identity)
        return ModelMeasurement(
            model=m.ref.name,
            provider=m.ref.provider,
            requested_model=m.ref.model,
            api=m.client.dialect.api,
            price=m.price,
            price_problem=m.price_problem,
            runs=runs,
            identities=identities,
            concurrency=self.concurrency,
        )

    # -- fallback path under faults -------------------------------------------------------------------------

    async def _fault_case(
        self, mode: FaultMode, case: Case, repeat: int, human: HumanRouteProbe | None, deadline_s: float
    ) -> Outcome:
        start = time.perf_counter()
        deadline = start + deadline_s * self.scale
        path: list[str] = []
        notes: list[str] = []
        primary = self.models[self.spec.primary.name]
        chain: list[tuple[str, _Model, FaultMode | None]] = [("primary", primary, mode)]
        chain += [(f"model:{f.name}", self.models[f.name], None) for f in self.spec.fallbacks]
        for label, m, fault in chain:
            if time.perf_counter() >= deadline:
                path.append(f"{label}:skipped (deadline)")
                continue
            tried = await self._try(m, case, fault=fault, deadline=deadline, gated=True)
            prefix = "primary" if label == "primary" else label
            for a in tried.attempts:
                path.append(f"{prefix}:{a.error or 'ok'}")
            if tried.budget_stop:
                path.append(f"{prefix}:budget")
            reply = tried.reply
            if reply is not None and reply.ok and tried.attempts:
                latency = self._ms(time.perf_counter() - start)
                failed = [a for a in evaluate(case.expect, reply.text, reply.tool_calls, latency) if not a.passed]
                detail = "; ".join(f"{a.name} ({a.detail})" if a.detail else a.name for a in failed)
                return Outcome(
                    case=case.name,
                    repeat=repeat,
                    served_by=label,
                    valid=not failed,
                    latency_ms=latency,
                    detail=f"answer failed: {detail}" if failed else "",
                    path=path,
                )
            if reply is not None and not reply.ok:
                notes.append(f"{prefix}: {reply.attempt.error} x{len(tried.attempts)}")
        hr = self.spec.fallback.human_route
        if hr is not None and human is not None:
            path.append(f"humanRoute:{'acknowledged' if human.acknowledged else 'refused'}")
            if human.acknowledged:
                latency = self._ms(time.perf_counter() - start) + (human.latency_ms or 0.0)
                return Outcome(
                    case=case.name, repeat=repeat, served_by="humanRoute", valid=True, latency_ms=latency, path=path
                )
            notes.append(f"human route: {human.detail}")
        latency = self._ms(time.perf_counter() - start)
        if self.spec.fallback.safe_stop is not None:
            path.append("safeStop")
            return Outcome(
                case=case.name, repeat=repeat, served_by="safeStop", valid=True, latency_ms=latency, path=path
            )
        return Outcome(
            case=case.name,
            repeat=repeat,
            served_by="none",
            valid=False,
            latency_ms=latency,
            detail=self.scrub("no path served the case: " + "; ".join(notes)),
            path=path,
        )

    async def faults(self, human: HumanRouteProbe | None) -> list[FaultRun]:
        """Each mode in turn, its cases open-loop at the peak rate (no burst the production path never sees)."""
        deadline_s = fault_deadline_ms(self.spec, self.timeout_ms) / 1000
        plan = [(rep, case) for rep in range(max(1, self.options.fault_repeats)) for case in self.resolved.cases]
        out: list[FaultRun] = []
        offsets = self._offsets(len(plan))
        modes = self.options.fault_modes
        if modes is None:
            modes = required_fault_modes(self.spec.primary.stream)
        for mode in modes:
            if self.budget.exhausted:
                break
            report = _Reporter(self.progress, f"fallback {mode}", len(plan), self.options.progress_every_s, self.scrub)

            async def one(rep: int, case: Case, mode: FaultMode = mode, report: _Reporter = report) -> Outcome:
                try:
                    return await self._fault_case(mode, case, rep, human, deadline_s)
                finally:
                    report.tick()

            tasks: list[asyncio.Task[Outcome]] = []
            t0 = time.perf_counter()
            for i, (rep, case) in enumerate(plan):
                delay = t0 + offsets[i] - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.budget.exhausted:
                    break
                tasks.append(asyncio.create_task(one(rep, case)))
            outcomes = list(await asyncio.gather(*tasks))
            out.append(FaultRun(mode=mode, outcomes=outcomes))
        return out

    async def human_route(self) -> HumanRouteProbe | None:
        hr = self.spec.fallback.human_route
        if hr is None:
            return None
        meta = self.resolved.workload.metadata
        probe = await probe_human_route(
            str(hr.url),
            workload=meta.name,
            namespace=meta.namespace,
            token=self.credentials.get(HUMAN_ROUTE_KEY),
            timeout_s=self.timeout_s,
            scrubber=self.scrub,
        )
        self._say(
            f"human route {hr.url}: {'acknowledged' if probe.acknowledged else 'not acknowledged'} ({probe.detail})"
        )
        return probe

    async def run(self) -> Measurements:
        started = self.options.clock()
        measured: dict[str, ModelMeasurement] = {}
        fault_runs: list[FaultRun] = []
        human: HumanRouteProbe | None = None
        async with AsyncExitStack() as stack:
            self._open_models(stack)
            for ref in self.spec.models:
                if self.stopped:
                    break
                mm = await self.baseline(self.models[ref.name])
                if mm.runs or not self.stopped:  # a model the run never reached was not measured
                    measured[ref.name] = mm
            human = await self.human_route()
            if self.options.run_faults and not self.stopped:
                fault_runs = await self.faults(human)
        aborted = None
        stopped_by: Literal["budget", "errorRate"] | None = None
        if self.error_stop is not None:
            stopped_by = "errorRate"
            where = f", stopped before {self.stopped_before}" if self.stopped_before else ""
            aborted = self.error_stop + where
            self._say(f"stopped: {aborted}")
        elif self.budget.exhausted:
            stopped_by = "budget"
            where = f" before {self.stopped_before}" if self.stopped_before else ""
            aborted = (
                f"budget.gateRunMaxUSD ${self.budget.limit:.2f} reached: spent ${self.budget.spent:.4f}, stopped{where}"
            )
            self._say(f"stopped: {aborted}")
        return Measurements(
            started_at=started,
            finished_at=self.options.clock(),
            runner_version=__version__,
            concurrency=self.concurrency,
            models=measured,
            faults=fault_runs,
            human_route=human,
            spent_usd=self.budget.spent,
            budget_exhausted=self.budget.exhausted,
            aborted=self.scrub(aborted) if aborted else None,
            stopped_by=stopped_by,
            timeout_ms=self.timeout_ms,
            timeout_assumed=self.timeout_assumed,
            arrivals=self.options.arrivals,
            arrival_rate_rps=self.rate,
        )


async def run_workload(
    resolved: ResolvedWorkload,
    credentials: Mapping[str, str],
    *,
    options: RunOptions | None = None,
    progress: Progress | None = None,
) -> Measurements:
    """Measure a workload: baseline of every model, the human route, the fallback path under each fault.

    `credentials` maps model names to API keys (see `resolve_credentials`); a model without one is called
    without a key. Never raises for a provider failure: failures are measurements.
    """
    with _quiet_gc():
        return await _Run(resolved, credentials, options or RunOptions(), progress).run()


@contextlib.contextmanager
def _quiet_gc() -> Iterator[None]:
    """No collector pauses while latencies are measured: a full collection stalls every request in flight for
    50-200 ms, which would be charged to the provider (bench/README.md, runner overhead). A gate run is bounded,
    so the garbage it leaves is collected once, at the end."""
    gc.collect()
    gc.freeze()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()
        gc.collect()
