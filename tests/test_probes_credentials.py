"""Credentials: where keys come from, the exact errors when they are missing, and scrubbing; prices."""

from __future__ import annotations

from typing import Any

import pytest

from aigate.api.errors import WorkloadError
from aigate.api.models import AIWorkloadSpec, ModelRef, SecretKeyRef
from aigate.measurements import Usage
from aigate.probes.credentials import HUMAN_ROUTE_KEY, REDACTED, Scrubber, credential_value, resolve_credentials
from aigate.probes.pricing import cost_usd, resolve_price


def spec(models: list[dict[str, Any]], **extra: Any) -> AIWorkloadSpec:
    doc: dict[str, Any] = {
        "owner": "team",
        "models": models,
        "traffic": {"requestsPerDay": 1000, "peakRequestsPerSecond": 1},
        "budget": {"monthlyUSD": 100},
        "slo": {"p95LatencyMs": 1000},
        "suite": {"cases": [{"name": "c", "messages": [{"role": "user", "content": "hi"}]}]},
        **extra,
    }
    return AIWorkloadSpec.model_validate(doc)


ANTHROPIC = {"name": "primary", "provider": "anthropic", "model": "claude-sonnet-4-5"}
LOCAL = {
    "name": "local",
    "role": "fallback",
    "provider": "openai-compatible",
    "model": "llama3",
    "endpoint": "http://127.0.0.1:11434",
}


def test_env_credentials_resolve() -> None:
    s = spec([{**ANTHROPIC, "credentials": {"env": "ANTHROPIC_API_KEY"}}, LOCAL])
    assert resolve_credentials(s, {"ANTHROPIC_API_KEY": "sk-ant-canary-123"}) == {"primary": "sk-ant-canary-123"}


def test_missing_env_names_the_field_path() -> None:
    s = spec([{**ANTHROPIC, "credentials": {"env": "ANTHROPIC_API_KEY"}}])
    with pytest.raises(WorkloadError) as e:
        resolve_credentials(s, {})
    assert e.value.message == "spec.models[0].credentials.env: environment variable ANTHROPIC_API_KEY is not set"


def test_missing_env_on_second_model() -> None:
    s = spec([ANTHROPIC, {**LOCAL, "credentials": {"env": "LOCAL_KEY"}}])
    with pytest.raises(WorkloadError) as e:
        resolve_credentials(s, {"OTHER": "x"})
    assert e.value.message == "spec.models[1].credentials.env: environment variable LOCAL_KEY is not set"


def test_empty_env_is_an_error() -> None:
    s = spec([{**ANTHROPIC, "credentials": {"env": "K"}}])
    with pytest.raises(WorkloadError, match=r"spec.models\[0\].credentials.env: environment variable K is empty"):
        resolve_credentials(s, {"K": "  "})


def test_secret_ref_only_in_cli_mode_says_to_set_env() -> None:
    s = spec([{**ANTHROPIC, "credentials": {"secretRef": {"name": "anthropic", "key": "api-key"}}}])
    with pytest.raises(WorkloadError) as e:
        resolve_credentials(s, {})
    assert e.value.message.startswith("spec.models[0].credentials.secretRef:")
    assert "set credentials.env for CLI use" in e.value.message


def test_secret_ref_through_lookup_and_env_preferred() -> None:
    both = {"secretRef": {"name": "s", "key": "k"}, "env": "KEY"}
    s = spec([{**ANTHROPIC, "credentials": {"secretRef": {"name": "s", "key": "k"}}}, {**LOCAL, "credentials": both}])
    seen: list[SecretKeyRef] = []

    def lookup(ref: SecretKeyRef) -> str:
        seen.append(ref)
        return f"secret-{ref.name}-{ref.key}"

    out = resolve_credentials(s, {"KEY": "from-env"}, secret_lookup=lookup)
    assert out == {"primary": "secret-s-k", "local": "from-env"}
    assert [r.name for r in seen] == ["s"]


def test_no_credentials_means_no_key() -> None:
    assert resolve_credentials(spec([ANTHROPIC, LOCAL]), {}) == {}
    assert credential_value(None, {}, "x") is None


def test_human_route_credential() -> None:
    s = spec(
        [ANTHROPIC],
        fallback={"humanRoute": {"url": "https://queue.example/x", "credentials": {"env": "QUEUE_TOKEN"}}},
    )
    assert resolve_credentials(s, {"QUEUE_TOKEN": "tok-1234"}) == {HUMAN_ROUTE_KEY: "tok-1234"}
    with pytest.raises(WorkloadError, match=r"^spec.fallback.humanRoute.credentials.env: environment variable"):
        resolve_credentials(s, {})


def test_scrubber_removes_known_and_key_shaped_secrets() -> None:
    scrub = Scrubber(["canary-key-42", "ab"])
    assert scrub("bad key canary-key-42 given") == f"bad key {REDACTED} given"
    # too short to register: masking it would garble every message
    assert scrub("ab cd") == "ab cd"
    assert "sk-proj-abcdefghijkl" not in scrub("Incorrect API key provided: sk-proj-abcdefghijkl")


def test_price_from_spec_wins() -> None:
    ref = ModelRef.model_validate({**ANTHROPIC, "pricing": {"inputPerMTokUSD": 1, "outputPerMTokUSD": 2}})
    price, problem = resolve_price(ref)
    assert problem is None and price is not None
    assert (price.input_per_m_tok_usd, price.output_per_m_tok_usd, price.source) == (1, 2, "spec")
    assert cost_usd(price, Usage(input_tokens=1_000_000, output_tokens=500_000)) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("provider", "model", "inp", "out"),
    [
        ("anthropic", "claude-sonnet-4-5", 3.0, 15.0),
        ("openai", "gpt-4.1-mini", 0.4, 1.6),
        ("azure-openai", "gpt-4.1-mini", 0.4, 1.6),
    ],
)
def test_price_from_catalog(provider: str, model: str, inp: float, out: float) -> None:
    doc: dict[str, Any] = {"name": "m", "provider": provider, "model": model}
    if provider == "azure-openai":
        doc["endpoint"] = "https://example.openai.azure.com"
    price, problem = resolve_price(ModelRef.model_validate(doc))
    assert problem is None and price is not None
    assert price.input_per_m_tok_usd == pytest.approx(inp)
    assert price.output_per_m_tok_usd == pytest.approx(out)
    assert price.source == "genai-prices 0.2.3"


def test_unknown_price_is_none_with_reason_never_zero() -> None:
    price, problem = resolve_price(ModelRef.model_validate(LOCAL))
    assert price is None
    assert problem is not None and "'llama3' is not in genai-prices 0.2.3" in problem
    assert cost_usd(None, Usage(input_tokens=10, output_tokens=10)) is None
