"""Tokens as providers bill them: cached input at the catalog's cache prices, reasoning as output, each counted
once, on every API the simulator speaks; the expected cost is computed here from the catalog's published rates."""

from __future__ import annotations

from typing import Any

import pytest

from aigate.api.models import ModelRef
from aigate.measurements import Price, Usage
from aigate.probes.dialects import dialect_for
from aigate.probes.pricing import catalog_price, cost_usd
from aigate.probes.runner import RunOptions, run_workload
from probes_support import CANARY, model, simulator, workload

# genai-prices 0.2.3, per million tokens: (input, cache read, output)
RATES = {"claude-haiku-4-5": (1.0, 0.10, 5.0), "gpt-4.1": (2.0, 0.50, 8.0), "o4-mini": (1.10, 0.275, 4.40)}
USAGE = {"inputTokens": 1000, "outputTokens": 300, "cachedTokens": 800, "reasoningTokens": 120}


def expected(model_id: str) -> float:
    """200 uncached + 800 cached input tokens, 300 output tokens (120 of them reasoning, billed as output once)."""
    inp, read, out = RATES[model_id]
    return (200 * inp + 800 * read + 300 * out) / 1e6


def test_catalog_cache_prices() -> None:
    for model_id, provider in (("claude-haiku-4-5", "anthropic"), ("gpt-4.1", "openai")):
        price, problem = catalog_price(provider, model_id)
        assert problem is None and price is not None
        assert (price.input_per_m_tok_usd, price.cache_read_per_m_tok_usd, price.output_per_m_tok_usd) == (
            pytest.approx(RATES[model_id][0]),
            pytest.approx(RATES[model_id][1]),
            pytest.approx(RATES[model_id][2]),
        )
    haiku, _ = catalog_price("anthropic", "claude-haiku-4-5")
    assert haiku is not None and haiku.cache_write_per_m_tok_usd == pytest.approx(1.25)


def test_cached_and_reasoning_tokens_are_counted_once() -> None:
    price = Price(input_per_m_tok_usd=2, output_per_m_tok_usd=8, cache_read_per_m_tok_usd=0.5, source="spec")
    u = Usage(input_tokens=1000, output_tokens=300, cache_read_tokens=800, reasoning_tokens=120)
    assert cost_usd(price, u) == pytest.approx((200 * 2 + 800 * 0.5 + 300 * 8) / 1e6)
    # an unknown cache price is the input price, never $0
    plain = Price(input_per_m_tok_usd=2, output_per_m_tok_usd=8, source="spec")
    assert cost_usd(plain, u) == pytest.approx((1000 * 2 + 300 * 8) / 1e6)


@pytest.mark.parametrize(
    ("provider", "model_id", "extra"),
    [
        ("anthropic", "claude-haiku-4-5", {}),
        ("openai", "gpt-4.1", {}),
        ("openai", "o4-mini", {"api": "responses"}),
    ],
)
async def test_a_provider_reporting_cached_tokens_is_priced_at_the_cache_price(
    provider: str, model_id: str, extra: dict[str, Any]
) -> None:
    sim: dict[str, Any] = {
        "provider": provider,
        "latency": {"fixedMs": 5},
        "usage": USAGE,
        "responses": [{"content": "ok"}],
    }
    with simulator({model_id: sim}) as url:
        endpoint = url if provider == "anthropic" else url + "/v1"
        resolved = workload([model("p", provider, model_id, endpoint, **extra)], repeats=3)
        m = await run_workload(resolved, {"p": CANARY}, options=RunOptions(run_faults=False))
    mm = m.models["p"]
    assert mm.price is not None and mm.price.source.startswith("genai-prices")
    for r in mm.runs:
        assert r.ok, r.error_detail
        # Anthropic reports the 200 uncached tokens apart from the 800 read from cache: never 1,800 input tokens
        assert (r.usage.input_tokens, r.usage.cache_read_tokens, r.usage.output_tokens) == (1000, 800, 300)
        assert r.cost_usd == pytest.approx(expected(model_id))
        if provider == "openai":  # reasoning is reported (and billed as output, once) by OpenAI's APIs
            assert r.usage.reasoning_tokens == 120
    assert m.spent_usd == pytest.approx(len(mm.runs) * expected(model_id))


def _ref(provider: str, model_id: str) -> ModelRef:
    return ModelRef.model_validate({"name": "p", "provider": provider, "model": model_id})


def test_a_reported_service_tier_is_priced_at_the_tiers_catalog_price() -> None:
    """gpt-5 at $1.25/$10 per million standard; flex halves both (genai-prices 0.2.3's variant); Anthropic's
    batch tier halves claude-haiku-4-5's $1/$5."""
    chat = {
        "model": "gpt-5",
        "service_tier": "flex",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 200},
    }
    parsed = dialect_for(_ref("openai", "gpt-5")).parse(chat)
    assert parsed.service_tier == "flex"
    price, _ = catalog_price("openai", "gpt-5")
    assert price is not None
    flex = Usage(input_tokens=1000, output_tokens=200, service_tier="flex")
    assert cost_usd(price, flex) == pytest.approx((1000 * 0.625 + 200 * 5.0) / 1e6)
    assert cost_usd(price, Usage(input_tokens=1000, output_tokens=200)) == pytest.approx((1000 * 1.25 + 200 * 10) / 1e6)
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1000, "output_tokens": 200, "service_tier": "batch"},
    }
    parsed = dialect_for(_ref("anthropic", "claude-haiku-4-5")).parse(message)
    assert parsed.service_tier == "batch"
    haiku, _ = catalog_price("anthropic", "claude-haiku-4-5")
    batch = Usage(input_tokens=1000, output_tokens=200, service_tier="batch")
    assert cost_usd(haiku, batch) == pytest.approx((1000 * 0.5 + 200 * 2.5) / 1e6)
