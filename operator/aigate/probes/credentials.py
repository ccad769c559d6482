"""API keys for the declared models, and keeping them out of everything aigate writes.

On a laptop or in CI a key comes from the environment variable `credentials.env` names; in a cluster the
operator reads `credentials.secretRef` and hands the runner the value. A model with no credentials gets
no key at all (a local openai-compatible server).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from aigate.api.errors import WorkloadError
from aigate.api.models import AIWorkloadSpec, Credentials, SecretKeyRef
from aigate.redact import MASK, redact, register_secret

SecretLookup = Callable[[SecretKeyRef], str]
"""Returns the value at a Secret key, or raises WorkloadError naming what is missing (operator side)."""

HUMAN_ROUTE_KEY = "@humanRoute"
"""Key of the human route's credential in the mapping `resolve_credentials` returns ('@' is not a model name)."""

REDACTED = MASK


def _resolve_one(creds: Credentials, where: str, environ: Mapping[str, str], secret_lookup: SecretLookup | None) -> str:
    if creds.env is not None:
        value = environ.get(creds.env)
        if value is None:
            raise WorkloadError(f"{where}.env: environment variable {creds.env} is not set")
        if not value.strip():
            raise WorkloadError(f"{where}.env: environment variable {creds.env} is empty")
        return value.strip()
    assert creds.secret_ref is not None
    if secret_lookup is None:
        raise WorkloadError(
            f"{where}.secretRef: Secret {creds.secret_ref.name!r} is only read in a cluster; "
            "set credentials.env for CLI use"
        )
    return secret_lookup(creds.secret_ref)


def credential_value(
    creds: Credentials | None,
    environ: Mapping[str, str],
    where: str,
    *,
    secret_lookup: SecretLookup | None = None,
) -> str | None:
    """One credential (`where` is its field path, for the error); None when none is declared.

    The value is registered with `aigate.redact`, so that nothing aigate prints can carry it.
    """
    if creds is None:
        return None
    value = _resolve_one(creds, where, environ, secret_lookup)
    register_secret(value)
    return value


def resolve_credentials(
    spec: AIWorkloadSpec,
    environ: Mapping[str, str],
    *,
    secret_lookup: SecretLookup | None = None,
) -> dict[str, str]:
    """Model name -> API key, for every model that declares credentials.

    `env` wins when both sources are set and the variable exists outside a cluster; with `secret_lookup`
    (the operator) a `secretRef` is read through it. The human route's credential, if declared, is under
    `HUMAN_ROUTE_KEY`. Errors name the field path exactly, e.g.
    `spec.models[0].credentials.env: environment variable ANTHROPIC_API_KEY is not set`.
    """
    out: dict[str, str] = {}
    for i, m in enumerate(spec.models):
        if m.credentials is not None:
            out[m.name] = _resolve_one(m.credentials, f"spec.models[{i}].credentials", environ, secret_lookup)
    hr = spec.fallback.human_route
    if hr is not None and hr.credentials is not None:
        out[HUMAN_ROUTE_KEY] = _resolve_one(
            hr.credentials, "spec.fallback.humanRoute.credentials", environ, secret_lookup
        )
    return out


class Scrubber:
    """Replaces every known secret in a text: applied to anything that leaves a probe (details, progress)."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so that a key containing another is removed whole
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, REDACTED)
        # and anything shaped like a key, e.g. a provider echoing a wrong key back in its error message
        return redact(text)

    def extend(self, secrets: Iterable[str]) -> Scrubber:
        return Scrubber([*self._secrets, *secrets])
