"""What a model's tokens cost: the spec's declared price, else the pinned `genai-prices` catalog.

An unknown price is reported as unknown with the reason, never as $0: the cost gate fails on it.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import genai_prices

from aigate.api.models import ModelRef
from aigate.measurements import Price, TierPrice, Usage

CATALOG_VERSION = str(genai_prices.__version__)

_CATALOG_PROVIDERS: dict[str, tuple[str | None, ...]] = {
    "anthropic": ("anthropic",),
    "openai": ("openai",),
    "azure-openai": ("azure", "openai"),
    # a local server names its model freely: let the catalog find a provider by the model name
    "openai-compatible": (None,),
}
_PROBE_TOKENS = 1000
"""Price a small request and scale up: tiered prices (e.g. above 200k input tokens) must not leak in."""


@lru_cache(maxsize=128)
def catalog_price(provider: str, model: str) -> tuple[Price | None, str | None]:
    """(price, None) from the catalog, or (None, why it is unknown)."""
    tried: list[str] = []
    for pid in _CATALOG_PROVIDERS.get(provider, (None,)):
        tried.append(pid or "any provider")
        try:
            inp = genai_prices.calc_price(
                genai_prices.Usage(input_tokens=_PROBE_TOKENS, output_tokens=0), model, provider_id=pid
            )
            out = genai_prices.calc_price(
                genai_prices.Usage(input_tokens=0, output_tokens=_PROBE_TOKENS), model, provider_id=pid
            )
        except (LookupError, ValueError, TypeError):
            continue
        read = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=_PROBE_TOKENS, cache_read_tokens=_PROBE_TOKENS), model, provider_id=pid
        )
        write = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=_PROBE_TOKENS, cache_write_tokens=_PROBE_TOKENS), model, provider_id=pid
        )
        scale = Decimal(1_000_000) / _PROBE_TOKENS
        in_price = float(Decimal(inp.input_price) * scale)
        out_price = float(Decimal(out.output_price) * scale)
        tiers = _tier_prices(model, pid, (in_price, out_price))
        if in_price <= 0 and out_price <= 0:
            return None, f"genai-prices {CATALOG_VERSION} lists {model!r} at $0, which aigate does not trust"
        return Price(
            input_per_m_tok_usd=in_price,
            output_per_m_tok_usd=out_price,
            cache_read_per_m_tok_usd=float(Decimal(read.input_price) * scale),
            cache_write_per_m_tok_usd=float(Decimal(write.input_price) * scale),
            tiers=tiers,
            source=f"genai-prices {CATALOG_VERSION}",
        ), None
    return None, f"{model!r} is not in genai-prices {CATALOG_VERSION} (looked under {', '.join(tried)})"


TIER_CONTEXTS: dict[str, dict[str, str]] = {
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
    "batch": {"processing": "batch"},
}
"""The service tiers a provider reports on an answer (OpenAI's `service_tier`, Anthropic's `usage.service_tier`),
as genai-prices selects their price variants."""


def _tier_prices(model: str, pid: str | None, standard: tuple[float, float]) -> dict[str, TierPrice]:
    """The tiers whose catalog prices differ from the standard ones."""
    out = {}
    scale = Decimal(1_000_000) / _PROBE_TOKENS
    for tier, context in TIER_CONTEXTS.items():
        usage = genai_prices.Usage(input_tokens=_PROBE_TOKENS, output_tokens=_PROBE_TOKENS)
        cached = genai_prices.Usage(input_tokens=_PROBE_TOKENS, cache_read_tokens=_PROBE_TOKENS)
        try:
            p = genai_prices.calc_price(usage, model, provider_id=pid, price_context=context)
            c = genai_prices.calc_price(cached, model, provider_id=pid, price_context=context)
        except (LookupError, ValueError, TypeError):
            continue
        inp, outp = float(Decimal(p.input_price) * scale), float(Decimal(p.output_price) * scale)
        if (inp, outp) != standard:
            out[tier] = TierPrice(
                input_per_m_tok_usd=inp,
                output_per_m_tok_usd=outp,
                cache_read_per_m_tok_usd=float(Decimal(c.input_price) * scale),
            )
    return out


def resolve_price(ref: ModelRef) -> tuple[Price | None, str | None]:
    """The spec's `pricing` wins (source 'spec'); else the catalog; else (None, the reason)."""
    if ref.pricing is not None:
        return Price(
            input_per_m_tok_usd=ref.pricing.input_per_m_tok_usd,
            output_per_m_tok_usd=ref.pricing.output_per_m_tok_usd,
            cache_read_per_m_tok_usd=ref.pricing.cache_read_per_m_tok_usd,
            cache_write_per_m_tok_usd=ref.pricing.cache_write_per_m_tok_usd,
            source="spec",
        ), None
    return catalog_price(ref.provider, ref.model)


def cost_usd(price: Price | None, usage: Usage) -> float | None:
    """Tokens as the provider bills them: uncached input at the input price, cache reads and writes at theirs
    (counted once: they are part of `input_tokens`), output (reasoning included, once) at the output price."""
    if price is None:
        return None
    tier = price.tiers.get(usage.service_tier or "")
    if tier is not None:  # the tier's own prices; a cache write is billed as input there
        price = Price(
            input_per_m_tok_usd=tier.input_per_m_tok_usd,
            output_per_m_tok_usd=tier.output_per_m_tok_usd,
            cache_read_per_m_tok_usd=tier.cache_read_per_m_tok_usd,
            source=price.source,
        )
    read, write = usage.cache_read_tokens, usage.cache_write_tokens
    uncached = max(0, usage.input_tokens - read - write)
    read_price = (
        price.cache_read_per_m_tok_usd if price.cache_read_per_m_tok_usd is not None else price.input_per_m_tok_usd
    )
    write_price = (
        price.cache_write_per_m_tok_usd if price.cache_write_per_m_tok_usd is not None else price.input_per_m_tok_usd
    )
    return (
        uncached * price.input_per_m_tok_usd
        + read * read_price
        + write * write_price
        + usage.output_tokens * price.output_per_m_tok_usd
    ) / 1e6


def cost_of(price: Price | None, input_tokens: int, output_tokens: int) -> float:
    """Cost in USD of a token count; 0 when the price is unknown (spend cannot be tracked then)."""
    if price is None:
        return 0.0
    return (input_tokens * price.input_per_m_tok_usd + output_tokens * price.output_per_m_tok_usd) / 1e6
