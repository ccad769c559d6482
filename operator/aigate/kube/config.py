"""The operator's settings: one declared table, read from `AIGATE_*` environment variables (the Helm chart and hack/
set them).

Each field of `OperatorConfig` carries its variable, unit, default and why; `from_env` reads and validates them all
at start-up, so a bad value stops the operator with one line naming the variable, and `settings_table` renders the
same declaration as the documentation (docs/settings.md, kept equal by a test).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aigate.api.errors import UsageError
from aigate.api.models import parse_duration
from aigate.policy.governance import Enforcement, PlatformDefault


@dataclass(frozen=True)
class Env:
    """Where a setting comes from, as field metadata: its variable, unit, and how a list or an empty value reads."""

    name: str
    unit: str = ""
    separator: str | None = None
    """For a list: the character between items (None: whitespace)."""
    empty: str | None = None
    """What an empty value means, when it does not mean the default; the value it reads as is None or an empty list."""


@dataclass(frozen=True)
class Security:
    """Why a setting matters for security, as field metadata: what its default protects, and what changing it
    exposes (docs/settings.md lists them)."""

    protects: str
    exposes: str


DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "500m", "memory": "256Mi"},
    "limits": {"memory": "1Gi"},
}
"""The gate container's resources unless the settings say otherwise (`controller.jobs.gate_job`): a CPU request, no
CPU limit."""

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_SUFFIX.update({f"{p}i": 1024 ** (i + 1) for i, p in enumerate("KMGTPE")})
_QUANTITY_FIELDS = ("job_cpu_request", "job_memory_request", "job_memory_limit")


class OperatorConfig(BaseModel):
    """Everything the operator may be told at start-up; every other number it uses is policy, not configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signing_key: Annotated[
        Path,
        Env("AIGATE_SIGNING_KEY", unit="path"),
        Security(
            "evidence only the operator can have signed: the key is mounted into the operator alone, never into a "
            "gate Job or the webhook",
            "whoever reads the file, or the Secret it comes from, can sign evidence that admits anything",
        ),
    ] = Field(
        description="path to the evidence signing key, mounted from a Secret into the operator only; "
        "the gate Jobs never see it"
    )
    public_key: Annotated[
        Path | None,
        Env("AIGATE_PUBLIC_KEY", unit="path"),
        Security(
            "the webhook admits only evidence the operator's own key signed",
            "another key: the webhook trusts whatever its holder signs",
        ),
    ] = Field(
        default=None,
        description="the public key published with the evidence, and the one `aigate webhook` verifies it with; "
        "unset: derived from the signing key",
    )
    namespace: Annotated[
        str,
        Env("AIGATE_OPERATOR_NAMESPACE", unit="name"),
        Security(
            "the evidence admission trusts, and the signing key's Secret, live where no team has rights",
            "a namespace a team may write in: it writes the evidence the webhook trusts (and reads the key)",
        ),
    ] = Field(
        default="aigate-system",
        description="the operator's own namespace, where the evidence admission trusts is kept",
    )
    gate_namespace: Annotated[
        str,
        Env("AIGATE_GATE_NAMESPACE", unit="name"),
        Security(
            "gate runs, with the credentials copied for them, out of every team's reach",
            "a namespace a team has rights in: it reads other teams' copied credentials and writes runs' results",
        ),
    ] = Field(
        default="aigate-gates",
        description="where gate Jobs run, with their input and per-run credentials: a namespace no team has rights in",
    )
    gate_image: Annotated[
        str,
        Env("AIGATE_GATE_IMAGE", unit="image"),
        Security(
            "the measurements come from aigate's own code (the chart gives the operator's own image)",
            "another image measures as it likes, and the operator signs what it reports",
        ),
    ] = Field(
        default="aigate:dev",
        description="the image of the gate Jobs; the operator's own, so that the Job measures as the CLI does "
        "(aigate:dev is what `make image` builds for a local cluster; the Helm chart sets its release image)",
    )
    gate_command: Annotated[list[str], Env("AIGATE_GATE_COMMAND", unit="words")] = Field(
        default_factory=lambda: ["aigate"],
        min_length=1,
        description="the gate Job's command before `run-gates`, split on whitespace",
    )
    job_deadline_s: Annotated[int, Env("AIGATE_JOB_DEADLINE_SECONDS", unit="seconds")] = Field(
        default=1800, gt=0, description="a gate Job running longer is stopped and the run is an error"
    )
    job_ttl_s: Annotated[int, Env("AIGATE_JOB_TTL_SECONDS", unit="seconds")] = Field(
        default=3600, ge=0, description="a finished gate Job is kept this long for `kubectl logs`"
    )
    job_backoff_limit: Annotated[int, Env("AIGATE_JOB_BACKOFF_LIMIT", unit="count")] = Field(
        default=0, ge=0, description="retries of a failed gate Job; 0: a failed run is reported, not re-spent"
    )
    job_cpu_request: Annotated[str | None, Env("AIGATE_JOB_CPU_REQUEST", unit="quantity", empty="no request")] = Field(
        default=DEFAULT_RESOURCES["requests"]["cpu"],
        description="the gate container's CPU request; it never has a CPU limit "
        "(throttling would show up as provider latency)",
    )
    job_memory_request: Annotated[str | None, Env("AIGATE_JOB_MEMORY_REQUEST", unit="quantity", empty="no request")] = (
        Field(default=DEFAULT_RESOURCES["requests"]["memory"], description="the gate container's memory request")
    )
    job_memory_limit: Annotated[str | None, Env("AIGATE_JOB_MEMORY_LIMIT", unit="quantity", empty="no limit")] = Field(
        default=DEFAULT_RESOURCES["limits"]["memory"],
        description="the gate container's memory limit; not below the request",
    )
    acceptor_groups: Annotated[
        frozenset[str],
        Env("AIGATE_ACCEPTOR_GROUPS", unit="comma-separated", separator=",", empty="nobody"),
        Security(
            "a group nobody is in until an admin puts them there: no team turns its own FAIL into ACCEPTED",
            "each member of a group added may accept any gate's failure (except gates an AIGatePolicy marks "
            "unacceptable); a broad group (system:authenticated) lets every team accept its own",
        ),
    ] = Field(
        default=frozenset({"aigate:risk-acceptors"}),
        description="groups whose members may add a risk acceptance to a workload",
    )
    webhook_addr: Annotated[str, Env("AIGATE_WEBHOOK_ADDR", unit="address")] = Field(
        default="127.0.0.1", description="the address the admission webhooks listen on"
    )
    webhook_port: Annotated[int, Env("AIGATE_WEBHOOK_PORT", unit="port")] = Field(
        default=9443, gt=0, lt=65536, description="the port the admission webhooks listen on"
    )
    webhook_host: Annotated[str | None, Env("AIGATE_WEBHOOK_HOST", unit="host")] = Field(
        default=None, description="the host name the API server calls the webhooks by (in their certificate)"
    )
    webhook_cert: Annotated[Path | None, Env("AIGATE_WEBHOOK_CERT", unit="path")] = Field(
        default=None, description="the webhooks' TLS certificate; re-read when it changes"
    )
    webhook_key: Annotated[Path | None, Env("AIGATE_WEBHOOK_KEY", unit="path")] = Field(
        default=None, description="the webhooks' TLS private key"
    )
    webhook_tls_secret: Annotated[str | None, Env("AIGATE_WEBHOOK_TLS_SECRET", unit="name")] = Field(
        default=None,
        description="a Secret of the operator's namespace where the operator keeps a CA and serving certificate it "
        "issues and rotates itself, writing them to AIGATE_WEBHOOK_CERT/_KEY and the CA into the webhook "
        "configurations' caBundle; unset: the certificate files are provided (cert-manager, a Secret of your own)",
    )
    webhook_configuration: Annotated[str, Env("AIGATE_WEBHOOK_CONFIGURATION", unit="name")] = Field(
        default="aigate",
        description="the validating and mutating webhook configurations whose caBundle the operator keeps "
        "(with AIGATE_WEBHOOK_TLS_SECRET)",
    )
    webhook_cert_validity_s: Annotated[
        int,
        Env("AIGATE_WEBHOOK_CERT_VALIDITY_SECONDS", unit="seconds"),
        Security(
            "a serving key that leaks is good for a year at most, and is replaced with a third of it left, "
            "without a restart",
            "longer: a leaked serving key can answer for the webhook longer; shorter costs only renewals",
        ),
    ] = Field(
        default=365 * 24 * 3600,
        ge=60,
        description="the validity of the serving certificate the operator issues; renewed with a third of it left",
    )
    signing_key_secret: Annotated[
        str | None,
        Env("AIGATE_SIGNING_KEY_SECRET", unit="name"),
        Security(
            "unset, the key file is yours to provide; the chart sets it: a key generated in the cluster once, "
            "never replaced, in a Secret of the operator's namespace",
            "a Secret others may read hands them the key; deleted, a new key is generated and no earlier evidence "
            "verifies (rollouts wait for new gate runs)",
        ),
    ] = Field(
        default=None,
        description="a Secret of the operator's namespace holding the signing key as aigate.key, created once with a "
        "new ECDSA P-256 key if absent and written to AIGATE_SIGNING_KEY at start-up; unset: that file is mounted",
    )
    metrics_addr: Annotated[
        str,
        Env("AIGATE_METRICS_ADDR", unit="address"),
        Security(
            "loopback: nothing off the host reads /metrics",
            "0.0.0.0 (the chart's, for probes and Prometheus): workload names, namespaces and decisions, "
            "unauthenticated, to whoever reaches the pod's port",
        ),
    ] = Field(default="127.0.0.1", description="the address of /metrics, /healthz and /readyz")
    metrics_port: Annotated[int, Env("AIGATE_METRICS_PORT", unit="port")] = Field(
        default=8080, gt=0, lt=65536, description="the port of /metrics, /healthz and /readyz"
    )
    timer_interval_s: Annotated[float, Env("AIGATE_TIMER_INTERVAL_SECONDS", unit="seconds")] = Field(
        default=60.0, gt=0, description="how often each workload's evidence expiry is checked (re-gate, expire)"
    )
    watch_namespaces: Annotated[
        list[str],
        Env("AIGATE_WATCH_NAMESPACES", unit="comma-separated", separator=","),
        Security(
            "every namespace is gated (but aigate's own and kube-system)",
            "a namespace left out is not gated at all: the webhooks do not see its rollouts",
        ),
    ] = Field(default_factory=list, description="the namespaces to watch; empty: every namespace")
    default_enforcement: Annotated[
        Enforcement,
        Env("AIGATE_DEFAULT_ENFORCEMENT", unit="mode"),
        Security(
            "enforce: where no AIGatePolicy sets a floor, no team switches its own gate off with spec.enforcement",
            "warn or audit: wherever no AIGatePolicy sets a floor, a failing workload's rollouts are admitted (with "
            "a warning; or whenever the workload asks for audit): the judged object sets its own policy",
        ),
    ] = Field(
        default=PlatformDefault.enforcement,
        description="the platform default's enforcement floor (enforce, warn or audit), in force wherever no "
        "AIGatePolicy selecting the namespace sets one: a workload asking for a looser mode is judged under it",
    )
    default_max_valid_for: Annotated[
        str,
        Env("AIGATE_DEFAULT_MAX_VALID_FOR", unit="duration"),
        Security(
            "evidence is earned again at least every 30 days: a provider or model that changed is measured again",
            "longer: evidence outlives what it measured, up to 3650d",
        ),
    ] = Field(
        default=PlatformDefault.max_valid_for,
        description="the platform default's longest evidence validity, in force wherever no AIGatePolicy selecting "
        "the namespace sets `maxValidFor`: a longer `spec.evidence.validFor` is refused, and evidence never "
        "outlives it",
    )

    @field_validator(*_QUANTITY_FIELDS)
    @classmethod
    def _quantity(cls, v: str | None) -> str | None:
        if v is not None and not _QUANTITY.match(v):
            raise ValueError("not a Kubernetes quantity such as 500m or 256Mi")
        return v

    @field_validator("default_max_valid_for")
    @classmethod
    def _duration(cls, v: str) -> str:
        try:
            limit = parse_duration(v)
        except ValueError as e:  # its own words, without the value: the line names it once
            raise ValueError(str(e).split(" (got ")[0]) from None
        if limit <= timedelta(0):
            raise ValueError("must be longer than 0s (evidence would expire as it is signed)")
        return v

    @model_validator(mode="after")
    def _rotated_files_in_one_directory(self) -> OperatorConfig:
        if self.webhook_tls_secret is None:
            return self
        cert, key, host = self.webhook_cert, self.webhook_key, self.webhook_host
        if cert is None or key is None or not host:
            raise ValueError(
                f"{env_name('webhook_tls_secret')} needs {env_name('webhook_cert')}, {env_name('webhook_key')} "
                f"and {env_name('webhook_host')}: where to write the certificate and the name it is for"
            )
        if cert.parent != key.parent or {cert.name, key.name} & {"ca.crt"}:
            raise ValueError(
                f"{env_name('webhook_cert')} and {env_name('webhook_key')} must be two files of one directory "
                f"(the operator replaces them together): got {cert} and {key}"
            )
        return self

    @model_validator(mode="after")
    def _request_within_limit(self) -> OperatorConfig:
        request, limit = self.job_memory_request, self.job_memory_limit
        if request is not None and limit is not None and _bytes(request) > _bytes(limit):
            raise ValueError(
                f"{env_name('job_memory_request')} ({request}) is above {env_name('job_memory_limit')} ({limit}); "
                "the API server would refuse every gate Job"
            )
        return self

    @property
    def platform_default(self) -> PlatformDefault:
        """The policy in force where no AIGatePolicy sets a field (the webhook's and the operator's judgements)."""
        return PlatformDefault(self.default_enforcement, self.default_max_valid_for)

    @property
    def job_resources(self) -> dict[str, dict[str, str]]:
        """The gate container's requests and limits (a fresh dict: each Job gets its own copy)."""
        requests = {
            k: v for k, v in (("cpu", self.job_cpu_request), ("memory", self.job_memory_request)) if v is not None
        }
        out: dict[str, dict[str, str]] = {}
        if requests:
            out["requests"] = requests
        if self.job_memory_limit is not None:
            out["limits"] = {"memory": self.job_memory_limit}
        return out


def _bytes(quantity: str) -> float:
    m = _QUANTITY.match(quantity)
    assert m is not None
    return float(quantity[: len(quantity) - len(m.group(2) or "")]) * _SUFFIX[m.group(2) or ""]


def env_of(field: str) -> Env:
    """The declaration of one setting."""
    [env] = [m for m in OperatorConfig.model_fields[field].metadata if isinstance(m, Env)]
    return env


def env_name(field: str) -> str:
    return env_of(field).name


def _read(field: str, raw: str) -> Any:
    """One variable's text as the field's input: a list split, an empty value read as declared."""
    env = env_of(field)
    if env.separator is not None or OperatorConfig.model_fields[field].annotation == list[str]:
        items = [x.strip() for x in raw.split(env.separator)] if env.separator else raw.split()
        return [x for x in items if x]
    return None if raw == "" else raw


_MESSAGES = {
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "literal_error": "must be one of {expected}",
}


def from_env(env: Mapping[str, str] | None = None) -> OperatorConfig:
    """The settings from `env` (default: the process environment), or a UsageError naming the variable."""
    env = os.environ if env is None else env
    given: dict[str, Any] = {}
    raws: dict[str, str] = {}
    for field in OperatorConfig.model_fields:
        decl = env_of(field)
        raw = env.get(decl.name)
        if raw is None or (raw.strip() == "" and decl.empty is None):
            continue  # unset, or empty where empty means the default
        raws[field] = raw = raw.strip()
        given[field] = _read(field, raw)
    try:
        return OperatorConfig.model_validate(given)
    except ValidationError as e:
        raise UsageError(_one_line(e, raws)) from None


def _one_line(error: ValidationError, raws: Mapping[str, str]) -> str:
    first = error.errors()[0]
    if not first["loc"]:  # a rule between settings: its message names them
        return str(first["msg"]).removeprefix("Value error, ")
    field = str(first["loc"][0])
    name = env_name(field)
    if first["type"] == "missing":
        why = OperatorConfig.model_fields[field].description
        return f"{name}: not set ({why})"
    template = _MESSAGES.get(first["type"])
    message = template.format(**first.get("ctx", {})) if template else str(first["msg"]).removeprefix("Value error, ")
    return f"{name}: {message} (got {raws.get(field, '')!r})"


def settings_table() -> str:
    """The settings as a Markdown table, generated from the declaration (docs/settings.md)."""
    rows = ["| variable | unit | default | what it is for |", "|---|---|---|---|"]
    for field, info in OperatorConfig.model_fields.items():
        decl = env_of(field)
        if info.is_required():
            default = "required"
        else:
            value = info.get_default(call_default_factory=True)
            default = _shown(value, decl)
        why = info.description or ""
        if decl.empty:
            why += f"; empty: {decl.empty}"
        rows.append(f"| `{decl.name}` | {decl.unit} | {default} | {why} |")
    return "\n".join(rows) + "\n"


def security_of(field: str) -> Security | None:
    found = [m for m in OperatorConfig.model_fields[field].metadata if isinstance(m, Security)]
    return found[0] if found else None


def security_table() -> str:
    """The security-relevant settings as a Markdown table, from the same declaration (docs/settings.md)."""
    rows = ["| variable | default | what the default protects | what changing it exposes |", "|---|---|---|---|"]
    for field, info in OperatorConfig.model_fields.items():
        security = security_of(field)
        if security is None:
            continue
        decl = env_of(field)
        default = "required" if info.is_required() else _shown(info.get_default(call_default_factory=True), decl)
        rows.append(f"| `{decl.name}` | {default} | {security.protects} | {security.exposes} |")
    return "\n".join(rows) + "\n"


def _shown(value: Any, decl: Env) -> str:
    if value is None:
        return "unset"
    if isinstance(value, list | frozenset | set):
        joined = (decl.separator or " ").join(sorted(value) if not isinstance(value, list) else value)
        return f"`{joined}`" if joined else "empty"
    return f"`{value}`"
