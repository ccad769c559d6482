"""What each simulated request does: the seeded draw of its fate (answer, error, hang, reset, malformed),
its latency, the scripted answer it gets, and the counters tests read back.

No HTTP here, so the decisions are easy to reason about; the server turns a `Plan` into bytes and timing.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Literal

from aigate.simulator.profile import ModelSpec, SimProfile
from aigate.simulator.wire import Answer, ChatRequest, count_tokens

Fate = Literal["ok", "error", "hang", "reset", "malformed", "stall"]
DEFAULT_CONTENT = "This is a simulated answer."
DEFAULT_TTFT_SHARE = 0.2
"""Streaming without `ttftMs`: the first token comes after this share of the total latency."""


@dataclass(frozen=True, slots=True)
class Plan:
    fate: Fate
    status: int = 200
    latency_s: float = 0.0
    ttft_s: float = 0.0


@dataclass(frozen=True, slots=True)
class _Rule:
    contains: str | None
    regex: re.Pattern[str] | None
    any_message: bool
    probability: float
    content: str
    tool_calls: list[tuple[str, dict[str, Any]]]

    @property
    def always(self) -> bool:
        return self.contains is None and self.regex is None


class ModelRuntime:
    """One served model: its spec, its own random stream (so one model's traffic never shifts another's
    draws), its compiled rules and its counters."""

    def __init__(self, name: str, spec: ModelSpec, seed: int | None, time_scale: float) -> None:
        self.name = name
        self.spec = spec
        self.served_model = spec.served_model or name
        self._seed = seed
        self.rng = self._new_rng()
        self._scale_s = time_scale / 1000
        self._mu, self._sigma = spec.latency.mu_sigma if spec.latency.fixed_ms is None else (0.0, 0.0)
        # cumulative thresholds over one uniform draw: errors (by status), then hang, reset, malformed
        self._fates: list[tuple[float, Fate, int]] = []
        acc = 0.0
        for status, rate in sorted(spec.errors.items()):
            acc += rate
            self._fates.append((acc, "error", status))
        for fate, rate in (
            ("hang", spec.hang_rate),
            ("reset", spec.reset_rate),
            ("malformed", spec.malformed_rate),
            ("stall", spec.stall_rate),
        ):
            acc += rate
            self._fates.append((acc, fate, 200))  # type: ignore[arg-type]
        self._rules = [
            _Rule(
                contains=r.match.contains.lower() if r.match and r.match.contains is not None else None,
                regex=re.compile(r.match.regex) if r.match and r.match.regex is not None else None,
                any_message=r.match is not None and r.match.scope == "anyMessage",
                probability=r.probability,
                content=r.content or "",
                tool_calls=[(t.name, dict(t.arguments)) for t in r.tool_calls or []],
            )
            for r in spec.responses
        ]
        self.counts: dict[str, int] = {}
        self.reset_counts()

    def _new_rng(self) -> random.Random:
        return random.Random(f"{self._seed}/{self.name}") if self._seed is not None else random.Random()

    def reset_counts(self) -> None:
        keys = ["requests", "streamed", "ok", "hang", "reset", "malformed"]
        keys += [str(s) for s in sorted(self.spec.errors)]
        if self.spec.stall_rate:
            keys.append("stall")
        self.counts = dict.fromkeys(keys, 0)

    def reseed(self) -> None:
        self.rng = self._new_rng()
        self.reset_counts()

    def _latency_ms(self) -> float:
        lat = self.spec.latency
        if lat.fixed_ms is not None:
            return lat.fixed_ms
        ms = self.rng.lognormvariate(self._mu, self._sigma)
        return min(ms, lat.max_ms) if lat.max_ms is not None else ms

    def plan(self, stream: bool) -> Plan:
        """Draw this request's fate and timing (always two draws, so the stream of draws stays aligned)."""
        counts = self.counts
        counts["requests"] += 1
        if stream:
            counts["streamed"] += 1
        u = self.rng.random()
        latency_ms = self._latency_ms()
        fate: Fate = "ok"
        status = 200
        for threshold, f, s in self._fates:
            if u < threshold:
                fate, status = f, s
                break
        counts[str(status) if fate == "error" else fate] += 1
        ttft_ms = self.spec.ttft_ms if self.spec.ttft_ms is not None else latency_ms * DEFAULT_TTFT_SHARE
        return Plan(fate, status, max(latency_ms, ttft_ms) * self._scale_s, ttft_ms * self._scale_s)

    def answer(self, req: ChatRequest) -> Answer:
        """The first matching rule's answer; tool calls only for tools the request declared (a real model
        cannot call a tool it was not given)."""
        content, calls = DEFAULT_CONTENT, []
        for rule in self._rules:
            if not rule.always:
                text = req.all_text if rule.any_message else req.last_user
                if rule.contains is not None and rule.contains not in text.lower():
                    continue
                if rule.regex is not None and rule.regex.search(text) is None:
                    continue
            if rule.probability < 1 and self.rng.random() >= rule.probability:
                continue
            content, calls = rule.content, rule.tool_calls
            break
        if calls:
            calls = [c for c in calls if req.tools_allowed and c[0] in req.tool_names]
        spec = self.spec
        cached = reasoning = 0
        if spec.usage is not None:
            inp, out = spec.usage.input_tokens, spec.usage.output_tokens
            cached, reasoning = spec.usage.cached_tokens, spec.usage.reasoning_tokens
        else:
            inp = count_tokens(req.input_chars)
            out = count_tokens(len(content) + sum(len(n) + len(str(a)) for n, a in calls))
        return Answer(
            model=self.served_model,
            content=content,
            tool_calls=calls,
            input_tokens=inp,
            output_tokens=out,
            cached_tokens=cached,
            reasoning_tokens=reasoning,
            usage=not spec.omit_usage,
            fingerprint=spec.system_fingerprint,
        )


class Simulator:
    """Every served model and the counters of requests that reached no model."""

    def __init__(self, profile: SimProfile) -> None:
        self.profile = profile
        self.models = self._runtimes(profile)
        self.other: dict[str, int] = {}
        self.apis: dict[str, int] = {}
        """Requests that reached a model, per API: chatCompletions, responses, messages."""
        self.reset()

    @staticmethod
    def _runtimes(profile: SimProfile) -> dict[str, ModelRuntime]:
        return {
            name: ModelRuntime(name, spec, profile.seed, profile.time_scale) for name, spec in profile.models.items()
        }

    def reload(self, profile: SimProfile) -> None:
        """Serve `profile` from the next request on, without a restart: a provider's silent update (a new
        `servedModel`, other answers, other latency) under a workload that passed. Requests in flight finish as
        planned; counters and random streams start again, as after a reset."""
        self.profile = profile
        self.models = self._runtimes(profile)
        self.reset()

    def find(self, name: str, wire: str) -> ModelRuntime | None:
        """The model named in the request, if it answers on this wire format."""
        m = self.models.get(name)
        return m if m is not None and m.spec.provider == wire else None

    def reset(self) -> None:
        """Back to the start: counters zeroed and random streams reseeded."""
        for m in self.models.values():
            m.reseed()
        self.other = dict.fromkeys(("unknownModel", "unauthorized", "badRequest"), 0)
        self.apis = dict.fromkeys(("chatCompletions", "responses", "messages"), 0)

    def stats(self) -> dict[str, Any]:
        """A snapshot (safe to take from another thread: the counters' keys never change after a reset)."""
        return {
            "models": {name: dict(m.counts) for name, m in self.models.items()},
            **dict(self.other),
            "apis": dict(self.apis),
            "timeScale": self.profile.time_scale,
        }
