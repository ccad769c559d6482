"""kopf wiring: which events reach the reconciler, the in-memory indexes the webhooks decide from, the
timers, and the admission webhooks. The logic lives in reconcile.py and admission.py; this module only
routes to them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from aiohttp import web
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from aigate.api.crd import POLICY_CRD_NAME
from aigate.api.digest import acceptance_digest
from aigate.api.errors import WorkloadError, format_validation_error
from aigate.api.load import configmap_lookup, resolve, workload_from_api
from aigate.api.models import API_GROUP, API_VERSION, WORKLOAD_LABEL
from aigate.api.policy import POLICY_PLURAL, AIGatePolicy
from aigate.controller import names
from aigate.controller.admission import VerifyCache, rollout_decision
from aigate.controller.certs import start_rotator
from aigate.controller.config import OperatorConfig
from aigate.controller.configmaps import ConfigMapUnavailable, ConfigMapView, FetchedConfigMaps
from aigate.controller.kube import JSON, Kube, load_api_client
from aigate.controller.lanes import DigestLanes, TooLate
from aigate.controller.metrics import Metrics
from aigate.controller.reconcile import Reconciler, Signer, job_finished
from aigate.controller.signingkey import ensure_signing_key
from aigate.controller.webhooks import ACCEPTANCES_ID, AIWORKLOADS_ID, ROLLOUTS_ID, TIMEOUT_SECONDS, AdmissionServer
from aigate.evidence.keys import key_id, load_private_key, load_public_key
from aigate.policy.acceptance import AcceptanceDecision, acceptance_patch
from aigate.policy.configmaps import configmap_entry, configmap_matters, configmaps_read
from aigate.policy.governance import EffectivePolicy, effective, violations
from aigate.policy.references import added, refusal
from aigate.policy.rollout import not_judged, shape_problem

log = logging.getLogger("aigate.operator")

WORKLOADS = ("aigate.dev", "v1alpha1", "aiworkloads")
# kopf logs "Handler '<id>' succeeded." for every event these see (every ConfigMap in the cluster): not logged
WORKLOAD_EVENTS_ID, JOB_EVENTS_ID, CONFIGMAP_EVENTS_ID = "workload-events", "gate-job-events", "configmap-events"
EVIDENCE_TIMER_ID = "evidence-timer"  # and "Timer '<id>' succeeded." per workload per interval
ROLLOUT_RESOURCES = [
    ("", "v1", "pods"),  # bare Pods only: policy.rollout.not_judged lets controller-made ones through
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("apps", "v1", "daemonsets"),
    ("batch", "v1", "jobs"),
    ("batch", "v1", "cronjobs"),
    ("argoproj.io", "v1alpha1", "rollouts"),
]


def plain(body: Any) -> JSON:
    """A kopf body as the plain JSON the API sent (indexes must not hold live views)."""
    return json.loads(json.dumps(dict(body), default=str))  # type: ignore[no-any-return]


def apply_json_patch(doc: JSON, ops: list[JSON]) -> JSON:
    """add / replace / remove on object and list paths: enough for the webhook's acceptedBy patches, which
    kopf answers with as a patch of its own."""
    for op in ops:
        *parents, leaf = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        key: Any = int(leaf) if isinstance(node, list) else leaf
        if op["op"] == "remove":
            del node[key]
        else:
            node[key] = op["value"]
    return doc


def first(index: Any, key: tuple[str, str]) -> JSON | None:
    store = index.get(key)
    if not store:
        return None
    for value in store:
        return value  # type: ignore[no-any-return]
    return None


def configmaps(index: Any, namespace: str, fetched: FetchedConfigMaps | None = None) -> ConfigMapView:
    """The ConfigMap index seen as one namespace's name -> ConfigMap, without copying it; with `fetched`, an entry
    kept without its data is completed from the API (off the event loop only)."""
    return ConfigMapView(
        lambda ns, name: first(index, (ns, name)), namespace, fetched=fetched, listing=lambda: list(index.keys())
    )


class Regates:
    """Re-gating a workload when a ConfigMap it reads changes, coalesced per workload and off kopf's event worker.

    kopf queues each object's events until its handler returns. Were the ConfigMap handler to await the reconcile
    (seconds, for a large suite on a busy machine), a tenant rewriting a referenced 1 MB ConfigMap in a loop would
    pile its events up in the operator's memory. So the handler only asks; a workload whose ConfigMaps change while
    it is being reconciled is reconciled once more afterwards, whatever the number of changes."""

    def __init__(self) -> None:
        self._again: dict[tuple[str, str], bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def request(self, key: tuple[str, str], regate: Callable[[], Awaitable[None]]) -> None:
        if key in self._again:
            self._again[key] = True
            return
        self._again[key] = False
        task = asyncio.create_task(self._run(key, regate))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: tuple[str, str], regate: Callable[[], Awaitable[None]]) -> None:
        try:
            while True:
                self._again[key] = False
                try:
                    await regate()
                except Exception:
                    log.exception("%s/%s: re-gating after a ConfigMap change failed", *key)
                if not self._again[key]:
                    return
        finally:
            del self._again[key]

    async def idle(self) -> None:
        """Until every requested re-gate has run (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))


class State:
    """What the handlers share (kopf's memo): the reconciler, keys, metrics, readiness."""

    def __init__(self, config: OperatorConfig, reconciler: Reconciler, signer: Signer, metrics: Metrics) -> None:
        self.config = config
        self.reconciler = reconciler
        self.signer = signer
        self.metrics = metrics
        self.ready = False
        # signature checks and spec digests, remembered per envelope hash and per resourceVersion: without it
        # every review re-digests the spec and re-verifies ECDSA (bench/README.md, "Admission end to end")
        self.verify_cache = VerifyCache()
        metrics.watch_verify_cache(self.verify_cache)
        # the data of referenced ConfigMaps the index holds without it (indexed before the workload naming them)
        self.fetched = FetchedConfigMaps(reconciler.kube.get_configmap)
        self.lanes = DigestLanes(give_up_after=TIMEOUT_SECONDS)
        self.regates = Regates()


def bound_to(body: kopf.Body, configmap_index: Any, namespace: str, fetched: FetchedConfigMaps) -> str | None:
    """The acceptance digest of the spec as it will be stored (its ConfigMaps from the index); None when it cannot
    be resolved (the acceptance is then recorded unbound, as the CLI's are). Only when the spec has acceptances.
    Runs in kopf's worker threads (a sync handler): a ConfigMap kept without its data may be fetched."""
    if not (body.get("spec") or {}).get("riskAcceptances"):
        return None
    try:
        workload = workload_from_api(plain(body))
        cms = configmaps(configmap_index, namespace, fetched)

        def read(name: str) -> Mapping[str, Any] | None:
            cm = cms.get(name)
            return None if cm is None else (cm.get("data") or {})

        return acceptance_digest(resolve(workload, configmap_lookup(namespace, read)))
    except WorkloadError:
        return None


def governing(kw: Mapping[str, Any], namespace: str) -> EffectivePolicy:
    """The AIGatePolicies selecting `namespace`, from the indexes (parsed when they changed, not per request)."""
    index = kw.get("policy_index")
    if index is None:
        return EffectivePolicy()
    policies = [p for _, store in list(index.items()) for p in list(store)]
    labels = kw["namespace_index"].get(namespace)
    found: Mapping[str, str] = next(iter(labels), {}) if labels else {}
    return effective(policies, found)


def build_registry(config: OperatorConfig, *, policies: bool = False) -> kopf.OperatorRegistry:
    """`policies`: the AIGatePolicy CRD is installed (an index of a resource that does not exist would never be
    complete, and would hold the webhook unready)."""
    registry = kopf.OperatorRegistry()

    @kopf.index("", "v1", "namespaces", id="namespace_index", registry=registry)
    def namespace_index(*, name: str, labels: Mapping[str, str], **_: Any) -> dict[str, dict[str, str]]:
        return {name: dict(labels)}

    if policies:

        @kopf.index(API_GROUP, API_VERSION, POLICY_PLURAL, id="policy_index", registry=registry)
        def policy_index(*, name: str, body: kopf.Body, **_: Any) -> dict[str, AIGatePolicy]:
            try:
                return {name: AIGatePolicy.model_validate(plain(body))}
            except ValidationError as e:
                log.warning("AIGatePolicy %s ignored: %s", name, "; ".join(format_validation_error(e)))
                return {}

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        """The same configuration as every other client of aigate (`load_api_client`), handed to kopf."""
        return connection_info(load_api_client()[0])

    @kopf.on.startup(registry=registry)
    async def startup(*, settings: kopf.OperatorSettings, memo: Any, **kw: Any) -> None:
        state: State = memo["state"]
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="aigate.dev")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="aigate.dev", key="last-handled-configuration"
        )
        settings.posting.enabled = False  # aigate posts its own Events, in its own words
        settings.watching.server_timeout = 300
        settings.admission.managed = None  # the webhook configurations are rendered by hack/ and the chart
        # not kopf's own server: kopf answers some malformed reviews with a 500 and admits unknown paths
        settings.admission.server = AdmissionServer(
            addr=config.webhook_addr,
            port=config.webhook_port,
            host=config.webhook_host,
            certfile=str(config.webhook_cert) if config.webhook_cert else None,
            pkeyfile=str(config.webhook_key) if config.webhook_key else None,
            file_check_interval=10.0,
        )
        await _serve_probes(state)
        if memo.get("rotator") is not None:  # renewals, and a caBundle Helm re-applied without repaired
            memo["rotator_task"] = asyncio.create_task(memo["rotator"].run())

    @kopf.index(*WORKLOADS, id="workload_index", registry=registry)
    def workload_index(*, namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], JSON]:
        return {(namespace or "", name): plain(body)}

    @kopf.index(*WORKLOADS, id="reference_index", registry=registry)
    def reference_index(*, namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], str]:
        """(namespace, ConfigMap) -> the workloads that read it: which ConfigMaps' data the index keeps, and which
        workloads a ConfigMap's change re-gates (parsed once per workload event, not per ConfigMap event)."""
        return {(namespace or "", cm): name for cm in configmaps_read(plain(body))}

    @kopf.index("", "v1", "configmaps", id="configmap_index", registry=registry)
    def configmap_index(
        *, namespace: str | None, name: str, body: kopf.Body, **kw: Any
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Every ConfigMap by identity and version (uid, resourceVersion: what VerifyCache keys a remembered digest
        on), its data only when a decision reads it (`policy.configmaps`): a tenant's unrelated ConfigMaps cost the
        webhook a few hundred bytes each, whatever they hold."""
        ns = namespace or ""
        keep = configmap_matters(ns, name, operator_namespace=config.namespace, referenced=kw["reference_index"])
        return {(ns, name): configmap_entry(body, keep_data=keep)}

    @kopf.on.resume(*WORKLOADS, registry=registry)
    @kopf.on.create(*WORKLOADS, registry=registry)
    @kopf.on.update(*WORKLOADS, field="spec", registry=registry)
    async def workload_changed(*, body: kopf.Body, memo: Any, **_: Any) -> None:
        state: State = memo["state"]
        mark_indexed(state)
        outcome = await asyncio.to_thread(state.reconciler.reconcile, plain(body))
        log.info("%s/%s: %s", body["metadata"]["namespace"], body["metadata"]["name"], outcome)

    @kopf.on.delete(*WORKLOADS, registry=registry)
    async def workload_deleted(*, body: kopf.Body, memo: Any, **_: Any) -> None:
        """kopf holds its finalizer on every AIWorkload until this returns: the gate runs (and their Secrets) and
        the trusted evidence live in other namespaces, where no owner reference reaches."""
        state: State = memo["state"]
        meta = body["metadata"]
        outcome = await asyncio.to_thread(
            state.reconciler.forget_workload, meta["namespace"], meta["name"], meta.get("uid", "")
        )
        log.info("%s/%s: deleted: %s", meta["namespace"], meta["name"], outcome)

    @kopf.on.event(*WORKLOADS, id=WORKLOAD_EVENTS_ID, registry=registry)
    async def workload_event(*, type: str, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
        if type == "DELETED":
            memo["state"].reconciler.forget(namespace or "", name)

    @kopf.on.event("batch", "v1", "jobs", id=JOB_EVENTS_ID, labels={names.ROLE_LABEL: "gate-job"}, registry=registry)
    async def gate_job_event(*, body: kopf.Body, type: str, memo: Any, **_: Any) -> None:
        state: State = memo["state"]
        mark_indexed(state)
        if type == "DELETED" or not job_finished(dict(body)):
            return
        outcome = await asyncio.to_thread(state.reconciler.job_done, plain(body))
        log.info("gate Job %s/%s: %s", body["metadata"]["namespace"], body["metadata"]["name"], outcome)

    @kopf.on.event("", "v1", "configmaps", id=CONFIGMAP_EVENTS_ID, registry=registry)
    async def configmap_event(
        *, type: str, namespace: str | None, name: str, labels: Mapping[str, str], memo: Any, **kw: Any
    ) -> None:
        state: State = memo["state"]
        mark_indexed(state)
        if type is None or names.ROLE_LABEL in labels:
            return  # the initial listing (resume handles it) and aigate's own ConfigMaps
        ns = namespace or ""
        workload_index = kw["workload_index"]
        for workload in sorted(set(kw["reference_index"].get((ns, name)) or ())):

            async def regate(workload: str = workload) -> None:
                body = first(workload_index, (ns, workload))  # as it is when the turn comes, not as it was
                if body is not None:
                    outcome = await asyncio.to_thread(state.reconciler.reconcile, body)
                    log.info("%s/%s: ConfigMap %s changed: %s", ns, workload, name, outcome)

            state.regates.request((ns, workload), regate)

    @kopf.timer(
        *WORKLOADS,
        id=EVIDENCE_TIMER_ID,
        interval=config.timer_interval_s,
        initial_delay=config.timer_interval_s,
        registry=registry,
    )
    async def evidence_timer(*, body: kopf.Body, memo: Any, **_: Any) -> None:
        state: State = memo["state"]
        await asyncio.to_thread(state.reconciler.tick, plain(body))

    _register_webhooks(registry)
    return registry


def _register_webhooks(registry: kopf.OperatorRegistry) -> None:

    async def validate_rollout(
        *,
        body: kopf.Body,
        namespace: str | None,
        labels: Mapping[str, str],
        warnings: list[str],
        memo: Any,
        resource: kopf.Resource,
        **kw: Any,
    ) -> None:
        workload_index, configmap_index = kw["workload_index"], kw["configmap_index"]
        state: State = memo["state"]
        started = time.perf_counter()
        kind = str(body.get("kind") or resource.kind)
        # before readiness: removing a finalizer, or a ReplicaSet scaling an admitted Deployment, never waits
        if not_judged(kind, body):
            return
        if not state.ready:
            state.metrics.admitted("not-ready", kind, "", time.perf_counter() - started, ROLLOUTS_ID)
            raise kopf.AdmissionError("aigate is starting: its index of workloads is not complete yet; retry", code=503)
        if state.config.watch_namespaces and (namespace or "") not in state.config.watch_namespaces:
            return  # not a namespace this operator gates: its webhook configuration should not send it here
        shape = shape_problem(kind, body, labels)
        floor = governing(kw, namespace or "").enforcement
        if shape is not None:
            state.metrics.admitted("denied", kind, "", time.perf_counter() - started, ROLLOUTS_ID)
            raise kopf.AdmissionError(shape, code=403)
        ns = namespace or ""
        workload_name = labels.get(WORKLOAD_LABEL, "")
        workload = first(workload_index, (ns, workload_name))
        # only the copy in the operator's namespace counts: the one beside the workload is the tenant's to write
        uid = str(((workload or {}).get("metadata") or {}).get("uid") or "")
        trusted = names.trusted_evidence(uid)
        decide = functools.partial(
            rollout_decision,
            kind=kind,
            namespace=ns,
            labels=dict(labels),
            workload=workload,
            evidence_cm=first(configmap_index, (state.config.namespace, trusted)) if uid else None,
            configmaps=configmaps(configmap_index, ns, state.fetched),
            public_key=state.signer.public_key,
            now=datetime.now(UTC),
            verify_cache=state.verify_cache,
            evidence_name=f"{state.config.namespace}/{trusted}",
            enforcement_floor=floor,
        )

        # parsing and hashing a spec (a remembered digest costs neither) go to a worker thread, one namespace at a
        # time (controller/lanes.py): the event loop answers every other review meanwhile, whatever one tenant's
        # spec weighs. The freshness check reads versions only: a ConfigMap kept without its data is not fetched.
        def fresh() -> bool:
            return workload is None or state.verify_cache.fresh(workload, configmaps(configmap_index, ns))

        try:
            decision = decide() if fresh() else await state.lanes.decide(ns, decide, fresh, started)
        except (ConfigMapUnavailable, TooLate) as e:
            state.metrics.admitted("error", kind, "", time.perf_counter() - started, ROLLOUTS_ID)
            raise kopf.AdmissionError(f"aigate cannot decide now: {e}; retry", code=503) from None
        elapsed = time.perf_counter() - started
        state.metrics.admitted(decision.result, kind, decision.enforcement or "", elapsed, ROLLOUTS_ID)
        warnings.extend(decision.warnings)
        if not decision.allowed:
            raise kopf.AdmissionError(decision.message, code=403)

    for group, version, plural in ROLLOUT_RESOURCES:
        kopf.on.validate(
            group,
            version,
            plural,
            id=ROLLOUTS_ID,
            operation=None,
            registry=registry,
            labels={WORKLOAD_LABEL: kopf.PRESENT},
        )(validate_rollout)

    def judge_acceptances(
        body: kopf.Body, userinfo: kopf.UserInfo, memo: Any, kw: Any, validate_only: bool
    ) -> AcceptanceDecision:
        old, operation = kw.get("old"), kw.get("operation")
        state: State = memo["state"]
        namespace = str(body.get("metadata", {}).get("namespace") or "")
        policy = governing(kw, namespace)
        try:
            bound = bound_to(body, kw["configmap_index"], namespace, state.fetched)
        except ConfigMapUnavailable as e:
            raise kopf.AdmissionError(f"aigate cannot decide now: {e}; retry", code=503) from None
        decision = acceptance_patch(
            operation=operation or "CREATE",
            new_spec=plain(body.get("spec") or {}),
            old_spec=plain(old.get("spec") or {}) if old else None,
            userinfo=dict(userinfo or {}),
            acceptor_groups=set(state.config.acceptor_groups) | set(policy.acceptor_groups),
            now=datetime.now(UTC),
            validate_only=validate_only,
            spec_digest=bound,
        )
        if not decision.allowed:
            raise kopf.AdmissionError(decision.message, code=403)
        return decision

    @kopf.on.mutate(*WORKLOADS, id=ACCEPTANCES_ID, registry=registry)
    def mutate_acceptances(
        *, body: kopf.Body, userinfo: kopf.UserInfo, patch: kopf.Patch, memo: Any, **kw: Any
    ) -> None:
        decision = judge_acceptances(body, userinfo, memo, kw, validate_only=False)
        if decision.patch:
            spec = apply_json_patch({"spec": plain(body.get("spec") or {})}, decision.patch)["spec"]
            patch.setdefault("spec", {})["riskAcceptances"] = spec.get("riskAcceptances")

    @kopf.on.validate(*WORKLOADS, id=AIWORKLOADS_ID, registry=registry)
    def validate_workload(*, body: kopf.Body, userinfo: kopf.UserInfo, memo: Any, **kw: Any) -> None:
        judge_acceptances(body, userinfo, memo, kw, validate_only=True)
        check_policy(body, kw)
        check_references(body, dict(userinfo or {}), memo["state"], kw)


def check_policy(body: kopf.Body, kw: Any) -> None:
    """What the governing AIGatePolicies refuse (validity, endpoints, SLO floors, unacceptable gates)."""
    if kw.get("operation") not in ("CREATE", "UPDATE"):
        return
    try:
        workload = workload_from_api(plain(body))
    except WorkloadError:
        return
    policy = governing(kw, workload.metadata.namespace)
    refused = violations(workload, policy)
    if refused:
        names = ", ".join(policy.names)
        raise kopf.AdmissionError(f"refused by AIGatePolicy {names}: " + "; ".join(refused), code=403)


def check_references(body: kopf.Body, userinfo: JSON, state: State, kw: Any) -> None:
    """The requesting user may read every Secret and ConfigMap this request adds a reference to (a
    SubjectAccessReview each: one API call per added reference, on the rare create or edit of an AIWorkload)."""
    if kw.get("operation") not in ("CREATE", "UPDATE"):
        return
    try:
        new = workload_from_api(plain(body))
    except WorkloadError:
        return  # refused by the CRD or marked InvalidSpec: nothing is read for a spec aigate cannot parse
    old = None
    if kw.get("old"):
        with contextlib.suppress(WorkloadError):
            old = workload_from_api(plain(kw["old"]))
    ns = new.metadata.namespace
    kube = state.reconciler.kube
    denied = [r for r in added(new, old) if not kube.may(userinfo, "get", r.resource, ns, r.name)]
    message = refusal(str(userinfo.get("username") or ""), ns, denied)
    if message is not None:
        raise kopf.AdmissionError(message, code=403)


class AdmissionLogFilter(logging.Filter):
    """kopf logs every AdmissionError as "Webhook '…' failed permanently" at ERROR, and every admitted review as
    "Webhook '…' succeeded." at INFO. For aigate a refused rollout is the product working, and an ERROR per
    `kubectl apply` would page whoever alerts on operator errors: its own denials go out at INFO. An admitted
    review is not logged at all (the admission metrics count it): a line per review costs more CPU than the
    decision; nor is each event the watch handlers saw (they log what they did themselves). Anything else a
    handler raises stays an error."""

    def __init__(self, webhook_ids: tuple[str, ...], event_handler_ids: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.denied = tuple(f"Webhook {i!r} failed permanently: " for i in webhook_ids)
        self.admitted = frozenset(
            [f"Webhook {i!r} succeeded." for i in webhook_ids]
            + [f"{kind} {i!r} succeeded." for i in event_handler_ids for kind in ("Handler", "Timer")]
        )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args or not isinstance(record.msg, str):
            return True
        if record.levelno == logging.INFO and record.msg in self.admitted:
            return False
        if record.levelno == logging.ERROR:
            for prefix in self.denied:
                if record.msg.startswith(prefix):
                    webhook = prefix.split("'")[1]
                    record.msg = f"denied by {webhook}: {record.msg[len(prefix) :]}"
                    record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def mark_indexed(state: State) -> None:
    """kopf holds every non-index handler until all indexes hold the initial listings, so the first handler call of
    any kind says the indexes are complete. Every cluster has ConfigMaps (kube-root-ca.crt in each namespace), so
    the ConfigMap handler's first call comes right after. Until then the webhook refuses, and the webhook
    configuration's failurePolicy decides for what it cannot answer."""
    if not state.ready:
        state.ready = True
        gc.freeze()  # the indexes live as long as the operator: keep the collector from walking them again
        log.info("indexes populated: webhook ready")


async def _serve_probes(state: State) -> None:
    """/healthz, /readyz (503 until the indexes are populated) and /metrics on one port."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ready\n") if state.ready else web.Response(status=503, text="indexing\n")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(state.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)])
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, state.config.metrics_addr, state.config.metrics_port).start()


def connection_info(api: k8s.ApiClient) -> kopf.ConnectionInfo:
    """kopf's credentials from the client's configuration (as kopf's own `login_via_client` reads them)."""
    cfg = api.configuration
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0] if parts else None)
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        username=cfg.username or None,
        password=cfg.password or None,
        scheme=scheme,
        token=token,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )


def has_crd(kube: Kube, name: str) -> bool:
    try:
        k8s.ApiextensionsV1Api(kube.api).read_custom_resource_definition(name)
    except ApiException as e:
        if e.status in (403, 404):
            log.warning("CRD %s not readable (HTTP %s): AIGatePolicies are not applied", name, e.status)
            return False
        raise
    return True


def ensure_namespace(kube: Kube, name: str) -> None:
    """The gate namespace: created by the chart; created here when missing (and allowed), so a run can start."""
    try:
        kube.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
        log.info("created the gate namespace %s", name)
    except ApiException as e:
        if e.status not in (403, 409):
            raise


def run_operator(config: OperatorConfig) -> int:
    api, how = load_api_client()
    log.info("Kubernetes API: %s", how)
    if config.signing_key_secret is not None:  # the chart's default: a key the operator generated once
        ensure_signing_key(api, config.namespace, config.signing_key_secret, config.signing_key)
    rotator = start_rotator(api, config)  # before kopf's webhook server first reads its certificate files
    key = load_private_key(config.signing_key)
    public = load_public_key(config.public_key) if config.public_key else key.public_key()
    signer = Signer(key=key, key_id=key_id(public), public_key=public)
    metrics = Metrics()
    reconciler = Reconciler(Kube(api), config, signer, metrics)
    state = State(config, reconciler, signer, metrics)
    registry = build_registry(config, policies=has_crd(reconciler.kube, POLICY_CRD_NAME))
    kopf.configure(verbose=False)
    logging.getLogger("kopf.objects").addFilter(
        AdmissionLogFilter(
            (ROLLOUTS_ID, ACCEPTANCES_ID, AIWORKLOADS_ID),
            (WORKLOAD_EVENTS_ID, JOB_EVENTS_ID, CONFIGMAP_EVENTS_ID, EVIDENCE_TIMER_ID),
        )
    )
    # one access-log line per admission review costs more than the decision itself (bench/README.md)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    ensure_namespace(reconciler.kube, config.gate_namespace)
    # with a namespace list, the operator's own (trusted evidence) and the gate namespace (gate Jobs) are watched too
    watched = [*config.watch_namespaces, config.namespace, config.gate_namespace] if config.watch_namespaces else []
    kopf.run(
        registry=registry,
        memo=kopf.Memo(state=state, rotator=rotator),
        standalone=True,
        clusterwide=not config.watch_namespaces,
        namespaces=sorted(set(watched)),
    )
    return 0
