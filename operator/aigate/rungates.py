"""`aigate run-gates`: the gate Job's entry point.

The Job measures and the operator judges. The Job runs in the gate namespace (see `controller/jobs.py`) and
reads nothing in the workload's namespace: its input ConfigMap holds the resolved spec the operator put there,
its credentials come as env from the per-run Secret. It checks that the input is the spec the operator started
it for (the digest), runs the measurements, and writes them into the result ConfigMap the operator pre-created.
It never sees the evidence signing key and never probes RBAC (the operator holds the SubjectAccessReview
permission).

The result is one JSON document under `names.RESULT_KEY`, in the format `aigate.kube.gaterun` defines for both
sides, bounded to `MAX_RESULT_BYTES` (a ConfigMap holds less than 1 MiB): each CaseRun.text is cut to `TEXT_LIMIT`
characters, and if that is still too big every text is dropped (`textLimit: 0`); a result that cannot be bounded is
written as an error.

While it measures, the Job also says how far along it is: the annotation `PROGRESS_ANNOTATION` on the same result
ConfigMap (the one object its Role lets it write), patched from a thread at most every `PROGRESS_EVERY_S` and only
when it changed, so the API server sees a bounded write rate and the event loop that times the requests never
waits on it. The operator copies it into `status.progress` (`progress_status`); the final result write removes it.
Progress is informational: nothing is judged from it, and a Job that never reports still gets its result taken.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from aigate.api.digest import spec_digest as digest_of
from aigate.api.errors import WorkloadError
from aigate.api.load import ResolvedWorkload, configmap_lookup, resolve, workload_from_api
from aigate.api.models import AIWorkload, Credentials
from aigate.console import parse_count
from aigate.gateapi import TIMEOUT_S, GateApi, GateApiConfigError, GateApiError, connect
from aigate.kube import names
from aigate.kube.gaterun import PROGRESS_ANNOTATION, GateRunResult, Outcome, bound_result
from aigate.kube.names import INPUT_KEY, JOB_NAME_ENV
from aigate.measurements import Measurements, required_fault_modes
from aigate.measuring import CheckOptions, measure
from aigate.probes.runner import RunOptions
from aigate.redact import redacted_line, register_secret
from aigate.times import rfc3339, utcnow

Progress = Callable[[str], None]

PROGRESS_EVERY_S = 2.0
"""The gate pod writes its progress at most this often."""


def planned_cases(resolved: ResolvedWorkload, options: RunOptions | None = None) -> int:
    """The requests a run plans: repeats x cases per model, and the cases `fault_repeats` times per fault mode (the
    runner's plan; a run the budget or suite.stopOnErrorRate stops does fewer)."""
    opts = options or RunOptions()
    spec = resolved.workload.spec
    cases = len(resolved.cases)
    total = len(spec.models) * spec.suite.repeats * cases
    if opts.run_faults:
        modes = opts.fault_modes if opts.fault_modes is not None else required_fault_modes(spec.primary.stream)
        total += len(modes) * max(1, opts.fault_repeats) * cases
    return total


class ProgressReporter:
    """A progress callback for the runner's lines that keeps the latest state and writes it to the result
    ConfigMap's annotation from its own thread, at most every `every_s`, only when it changed."""

    def __init__(self, write: Callable[[str], None], planned: int, *, every_s: float = PROGRESS_EVERY_S) -> None:
        self._write = write
        self._planned = planned
        self._every_s = every_s
        self._lock = threading.Lock()
        self._phase = "starting"
        self._done: dict[str, int] = {}
        self._totals: dict[str, int] = {}
        self._version = 0
        self._written = -1
        self._stop = threading.Event()
        self._failed = False
        self._thread = threading.Thread(target=self._loop, name="aigate-progress", daemon=True)

    def __call__(self, line: str) -> None:
        count = parse_count(line)
        with self._lock:
            if count is not None:
                self._phase = count.label
                self._done[count.label] = count.done
                self._totals[count.label] = count.total
            elif line.startswith("MCP server "):
                self._phase = line.split(":", 1)[0]
            else:
                return
            self._version += 1

    def snapshot(self) -> dict[str, Any]:
        """The annotation's JSON document as of now."""
        with self._lock:
            done = sum(self._done.values())
            total = max(self._planned, sum(self._totals.values()))
            return {"phase": self._phase, "done": done, "total": total, "at": rfc3339(utcnow())}

    def start(self) -> ProgressReporter:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop writing (before the result is written: the result write removes the annotation)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=TIMEOUT_S + 5)

    def flush(self) -> None:
        """Write the current state when it changed since the last write."""
        with self._lock:
            version = self._version
        if version == self._written:
            return
        try:
            self._write(json.dumps(self.snapshot(), separators=(",", ":")))
            self._written = version
        except Exception as e:  # informational: a refused or failed write never stops the run
            if not self._failed:
                self._failed = True
                _err(f"aigate run-gates: progress not reported: {redacted_line(str(e))}")

    def _loop(self) -> None:
        self.flush()  # 'starting': the pod is up
        while not self._stop.wait(self._every_s):
            self.flush()


# ---- the Job side ----------------------------------------------------------------------------------------------------


class _Abort(Exception):
    """A one-line reason to stop the run with outcome 'error'."""


def _err(line: str) -> None:
    """Errors go to stderr even with --quiet: the pod log is where a person looks first."""
    print(line, file=sys.stderr, flush=True)


def _api_error(what: str, e: GateApiError) -> str:
    reason = str(e)
    if e.status == 403:
        reason += " (the gate Job's Role does not allow it)"
    return f"{what}: {reason}"


def _read_input(api: GateApi, namespace: str, name: str) -> tuple[ResolvedWorkload, dict[str, str]]:
    """The resolved spec from the input ConfigMap (`controller.jobs.run_input`), and the ConfigMap's data."""
    where = f"input ConfigMap {namespace}/{name}"
    try:
        cm = api.read_configmap(namespace, name)
    except GateApiError as e:
        if e.status == 404:
            raise _Abort(f"{where} not found (the operator creates it)") from None
        raise _Abort(_api_error(f"reading {where}", e)) from None
    raw = (cm.get("data") or {}).get(INPUT_KEY)
    try:
        doc = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError as e:
        raise _Abort(f"{where} {INPUT_KEY} is not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("workload"), dict):
        raise _Abort(f"{where} has no {INPUT_KEY} with a workload")
    workload = workload_from_api(doc["workload"])
    configmaps = doc.get("configMaps") if isinstance(doc.get("configMaps"), dict) else {}
    assert isinstance(configmaps, dict)
    lookup = configmap_lookup(workload.metadata.namespace, lambda n: configmaps.get(n))
    return resolve(workload, lookup), dict(cm.get("data") or {})


def canary_input(resolved: ResolvedWorkload, data: Mapping[str, str], where: str) -> ResolvedWorkload:
    """A canary's run: the cases its input names (`names.CANARY_KEY`), once each against every model path, within
    the spend the operator left it for the day. The Job only measures: the operator compares with the evidence."""
    raw = data.get(names.CANARY_KEY)
    try:
        doc = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError as e:
        raise _Abort(f"{where} {names.CANARY_KEY} is not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list) or not doc["cases"]:
        raise _Abort(f"{where} has no {names.CANARY_KEY} naming the canary's cases")
    max_usd = doc.get("maxUSD")
    if not isinstance(max_usd, int | float) or isinstance(max_usd, bool) or max_usd <= 0:
        raise _Abort(f"{where} {names.CANARY_KEY}: maxUSD must be a number above 0, got {max_usd!r}")
    wanted = [str(c) for c in doc["cases"]]
    by_name = {c.name: c for c in resolved.cases}
    missing = [c for c in wanted if c not in by_name]
    if missing:
        raise _Abort(f"{where} {names.CANARY_KEY}: the suite has no case {', '.join(missing)}")
    wl = resolved.workload.model_copy(deep=True)
    wl.spec.suite.repeats = 1
    wl.spec.suite.stop_on_error_rate = None
    wl.spec.budget.gate_run_max_usd = float(max_usd)
    return dataclasses.replace(resolved, workload=wl, cases=[by_name[c] for c in wanted])


def _for_the_job(resolved: ResolvedWorkload, environ: Mapping[str, str]) -> tuple[ResolvedWorkload, dict[str, str]]:
    """Check every Secret reference arrived as env (secretKeyRef), and return the workload with each `secretRef`
    read from that env var (the runner reads credentials from an environ), plus that environ. A `secretRef` wins
    over `env` here: a laptop's variable does not exist in the pod. Errors name the field."""
    wl = resolved.workload.model_copy(deep=True)
    job_env: dict[str, str] = {}
    for where, creds in _credential_fields(wl):
        ref = creds.secret_ref
        if ref is None:
            raise WorkloadError(
                f"{where}: in a cluster credentials come from a Secret: set secretRef (env {creds.env} is not passed "
                "to the gate Job)"
            )
        var = names.secret_env_name(ref.name, ref.key)
        value = environ.get(var, "").strip()
        if not value:
            raise WorkloadError(
                f"{where}.secretRef: Secret {ref.name!r} key {ref.key!r} did not reach the gate Job "
                f"(env {var} is unset or empty)"
            )
        register_secret(value)
        job_env[var] = value
        creds.env, creds.secret_ref = var, None
    return dataclasses.replace(resolved, workload=wl), job_env


def _credential_fields(wl: AIWorkload) -> list[tuple[str, Credentials]]:
    spec = wl.spec
    out = [(f"spec.models[{i}].credentials", m.credentials) for i, m in enumerate(spec.models)]
    out += [(f"spec.mcpServers[{i}].credentials", s.credentials) for i, s in enumerate(spec.mcp_servers)]
    if spec.fallback.human_route is not None:
        out.append(("spec.fallback.humanRoute.credentials", spec.fallback.human_route.credentials))
    return [(where, c) for where, c in out if c is not None]


def _write_progress(api: GateApi, namespace: str, name: str, doc: str) -> None:
    try:
        api.patch_configmap(namespace, name, {"metadata": {"annotations": {PROGRESS_ANNOTATION: doc}}})
    except GateApiError as e:
        raise RuntimeError(_api_error(f"writing progress to ConfigMap {namespace}/{name}", e)) from None


def _write_result(api: GateApi, namespace: str, name: str, payload: str) -> None:
    """The result, and the progress annotation removed in the same write: the run is over."""
    body = {"metadata": {"annotations": {PROGRESS_ANNOTATION: None}}, "data": {names.RESULT_KEY: payload}}
    try:
        api.patch_configmap(namespace, name, body)
    except GateApiError as e:
        if e.status == 404:
            raise _Abort(f"result ConfigMap {namespace}/{name} not found (the operator creates it)") from None
        raise _Abort(_api_error(f"writing result ConfigMap {namespace}/{name}", e)) from None


def run_gates(
    namespace: str,
    input_name: str,
    result_name: str,
    spec_digest: str,
    run_id: str,
    *,
    environ: Mapping[str, str],
    api: GateApi | None = None,
    progress: Progress | None = None,
    canary: bool = False,
) -> int:
    """Measure the resolved spec in ConfigMap NAMESPACE/INPUT_NAME for SPEC_DIGEST; write NAMESPACE/RESULT_NAME.

    0 when measured; 1 when the input does not match SPEC_DIGEST or the run failed (the result says why, when it
    could be written). `canary`: a canary after launch (`canary_input`): a few cases, no faults, no MCP servers.
    PROGRESS gets progress lines; the one error line always goes to stderr. Never raises, never prints a traceback
    or a secret.
    """
    say = progress or (lambda _msg: None)
    started = utcnow()
    for var, value in environ.items():  # before anything can print: every Secret value the Job was given
        if var.startswith("AIGATE_SECRET_"):
            register_secret(value.strip())
    job = environ.get(JOB_NAME_ENV) or None
    try:
        if api is None:
            api, how = connect(environ)
            say(f"Kubernetes API: {how}")
    except GateApiConfigError as e:
        _err(f"aigate run-gates: error: no Kubernetes API configuration: {redacted_line(str(e))}")
        return 1
    gate_api: GateApi = api

    def finish(
        outcome: Outcome, *, error: str | None = None, m: Measurements | None = None, observed: str | None = None
    ) -> int:
        result = GateRunResult(
            run_id=run_id,
            spec_digest=spec_digest,
            observed_digest=observed,
            job=job,
            started_at=started,
            finished_at=utcnow(),
            outcome=outcome,
            error=redacted_line(error) if error else None,
            measurements=m,
        )
        bounded, payload = bound_result(result)
        try:
            _write_result(gate_api, namespace, result_name, payload)
        except _Abort as e:
            _err(f"aigate run-gates: error: {redacted_line(str(e))}")
            return 1
        say(f"result ({bounded.outcome}, {len(payload.encode())} bytes) written to {result_name}")
        if bounded.outcome == "measured":
            return 0
        _err(f"aigate run-gates: {bounded.outcome}: {bounded.error}")
        return 1

    observed: str | None = None
    try:
        say(f"reading input ConfigMap {namespace}/{input_name}")
        resolved, data = _read_input(gate_api, namespace, input_name)
        observed = digest_of(resolved)
        if observed != spec_digest:
            return finish(
                "stale",
                error=f"the input is not the spec this run was started for (stale): {observed}, not {spec_digest}",
                observed=observed,
            )
        if canary:
            resolved = canary_input(resolved, data, f"input ConfigMap {namespace}/{input_name}")
        runnable, job_env = _for_the_job(resolved, environ)
        planned = planned_cases(resolved, RunOptions(run_faults=not canary))
        models = len(resolved.workload.spec.models)
        say(f"measuring {models} model(s), {len(resolved.cases)} case(s): {planned} requests planned")
        reporter = ProgressReporter(lambda doc: _write_progress(gate_api, namespace, result_name, doc), planned)

        def both(line: str) -> None:
            say(line)
            reporter(line)

        reporter.start()
        try:
            m = asyncio.run(measure(runnable, CheckOptions(environ=job_env, progress=both, canary=canary)))
        finally:
            reporter.close()
        m.rbac = None  # probed by the operator, with its own permissions
        return finish("measured", m=m, observed=observed)
    except (_Abort, WorkloadError) as e:
        return finish("error", error=str(e), observed=observed)
    except Exception as e:  # a bug or an unexpected API failure: still one line, and a result for the operator
        return finish("error", error=f"internal error: {type(e).__name__}: {e}", observed=observed)
