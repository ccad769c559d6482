"""kopf wiring: which events reach the reconciler, the timers, the probes. The logic lives in reconcile.py; this
module only routes to it. The admission webhooks are not served here: `aigate webhook` (aigate.webhook) serves them
from a process of its own, so that reconciliation and admission never share an event loop."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf
from aiohttp import web
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from aigate.controller.certs import start_rotator
from aigate.controller.reconcile import Reconciler, Signer, job_finished
from aigate.controller.signingkey import SigningKeyError, ensure_signing_key, publish_public_key
from aigate.evidence.keys import key_id, load_private_key, load_public_key
from aigate.kube import names
from aigate.kube.client import JSON, Kube, load_api_client
from aigate.kube.config import OperatorConfig
from aigate.kube.metrics import Metrics
from aigate.policy.configmaps import configmaps_read

log = logging.getLogger("aigate.operator")

WORKLOADS = ("aigate.dev", "v1alpha1", "aiworkloads")
# kopf logs "Handler '<id>' succeeded." for every event these see (every ConfigMap in the cluster): not logged
WORKLOAD_EVENTS_ID, JOB_EVENTS_ID, CONFIGMAP_EVENTS_ID = "workload-events", "gate-job-events", "configmap-events"
CANARY_EVENTS_ID = "canary-job-events"
EVIDENCE_TIMER_ID = "evidence-timer"  # and "Timer '<id>' succeeded." per workload per interval
TIMER_EXIT_WAIT_S = 10.0
"""How long a deletion waits in memory for a running evidence tick to end before kopf polls for it."""
TIMER_EXIT_POLL_S = 2.0


def plain(body: Any) -> JSON:
    """A kopf body as the plain JSON the API sent (indexes must not hold live views)."""
    return json.loads(json.dumps(dict(body), default=str))  # type: ignore[no-any-return]


def first(index: Any, key: tuple[str, str]) -> JSON | None:
    store = index.get(key)
    if not store:
        return None
    for value in store:
        return value  # type: ignore[no-any-return]
    return None


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
        self.regates = Regates()


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

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
        # A workload deleted while its evidence timer's tick runs (a thread: not cancellable) keeps kopf's finalizer
        # until the timer has exited. kopf's defaults look again only after 60 s; wait for the tick instead, and
        # look again every few seconds if it takes longer.
        settings.background.instant_exit_timeout = TIMER_EXIT_WAIT_S
        settings.background.cancellation_polling = TIMER_EXIT_POLL_S
        await _serve_probes(state)
        if memo.get("rotator") is not None:  # renewals, and a caBundle Helm re-applied without repaired
            memo["rotator_task"] = asyncio.create_task(memo["rotator"].run())

    @kopf.index(*WORKLOADS, id="workload_index", registry=registry)
    def workload_index(*, namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], JSON]:
        return {(namespace or "", name): plain(body)}

    @kopf.index(*WORKLOADS, id="reference_index", registry=registry)
    def reference_index(*, namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], str]:
        """(namespace, ConfigMap) -> the workloads that read it: which workloads a ConfigMap's change re-gates,
        parsed once per workload event, not once per workload of the namespace on every ConfigMap event."""
        return {(namespace or "", cm): name for cm in configmaps_read(plain(body))}

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
        await job_finished_event(state, body, type, state.reconciler.job_done, "gate Job")

    @kopf.on.event(
        "batch", "v1", "jobs", id=CANARY_EVENTS_ID, labels={names.ROLE_LABEL: names.CANARY_JOB_ROLE}, registry=registry
    )
    async def canary_job_event(*, body: kopf.Body, type: str, memo: Any, **_: Any) -> None:
        """A canary's Job finished: judge it against the evidence (`Reconciler.canary_job_done`)."""
        state: State = memo["state"]
        await job_finished_event(state, body, type, state.reconciler.canary_job_done, "canary Job")

    @kopf.on.event("", "v1", "configmaps", id=CONFIGMAP_EVENTS_ID, registry=registry)
    async def configmap_event(
        *,
        type: str,
        namespace: str | None,
        name: str,
        labels: Mapping[str, str],
        body: kopf.Body,
        memo: Any,
        **kw: Any,
    ) -> None:
        state: State = memo["state"]
        mark_indexed(state)
        if type in ("ADDED", "MODIFIED") and labels.get(names.ROLE_LABEL) == names.GATE_RESULT_ROLE:
            outcome = await asyncio.to_thread(state.reconciler.run_progress, plain(body))
            log.debug("gate result %s/%s: %s", namespace, name, outcome)
            return
        if type is None or names.ROLE_LABEL in labels:
            return  # the initial listing (resume handles it) and aigate's own ConfigMaps
        ns = namespace or ""
        workload_index = kw["workload_index"]
        for workload in sorted(set(kw["reference_index"].get((ns, name)) or ())):

            async def regate(workload: str = workload) -> None:
                found = first(workload_index, (ns, workload))  # as it is when the turn comes, not as it was
                if found is not None:
                    outcome = await asyncio.to_thread(state.reconciler.reconcile, found)
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

    return registry


class HandlerLogFilter(logging.Filter):
    """kopf logs "Handler '<id>' succeeded." for every event a handler sees (every ConfigMap in the cluster) and
    "Timer '<id>' succeeded." per workload per interval: a line per event costs more CPU than the handler, and says
    nothing the handler did not log itself."""

    def __init__(self, event_handler_ids: tuple[str, ...]) -> None:
        super().__init__()
        self.quiet = frozenset(f"{kind} {i!r} succeeded." for i in event_handler_ids for kind in ("Handler", "Timer"))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args or not isinstance(record.msg, str):
            return True
        return not (record.levelno == logging.INFO and record.msg in self.quiet)


async def job_finished_event(state: State, body: kopf.Body, type: str, take: Callable[[JSON], str], what: str) -> None:
    """A Job event: once the Job has finished, `take` its result in a worker thread (a gate run's or a canary's)."""
    mark_indexed(state)
    if type == "DELETED" or not job_finished(dict(body)):
        return
    outcome = await asyncio.to_thread(take, plain(body))
    log.info("%s %s/%s: %s", what, body["metadata"]["namespace"], body["metadata"]["name"], outcome)


def mark_indexed(state: State) -> None:
    """kopf holds every non-index handler until all indexes hold the initial listings, so the first handler call of
    any kind says the indexes are complete. Every cluster has ConfigMaps (kube-root-ca.crt in each namespace), so
    the ConfigMap handler's first call comes right after. Until then /readyz says 503."""
    if not state.ready:
        state.ready = True
        gc.freeze()  # the indexes live as long as the operator: keep the collector from walking them again
        log.info("indexes populated: operator ready")


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
    rotator = start_rotator(api, config)  # the files `aigate webhook` serves (it waits for the first pair)
    key = load_private_key(config.signing_key)
    public = load_public_key(config.public_key) if config.public_key else key.public_key()
    signer = Signer(key=key, key_id=key_id(public), public_key=public)
    try:  # for `kubectl aigate evidence --verify`; the operator gates without it, so a refusal is only a warning
        done = publish_public_key(api, config.namespace, public)
        log.info(
            "public key %s in ConfigMap %s/%s: %s",
            signer.key_id[:16],
            config.namespace,
            names.PUBLIC_KEY_CONFIGMAP,
            done,
        )
    except SigningKeyError as e:
        log.warning("public key not published: %s", e)
    metrics = Metrics()
    reconciler = Reconciler(Kube(api), config, signer, metrics)
    state = State(config, reconciler, signer, metrics)
    registry = build_registry(config)
    kopf.configure(verbose=False)
    logging.getLogger("kopf.objects").addFilter(
        HandlerLogFilter((WORKLOAD_EVENTS_ID, JOB_EVENTS_ID, CANARY_EVENTS_ID, CONFIGMAP_EVENTS_ID, EVIDENCE_TIMER_ID))
    )
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
