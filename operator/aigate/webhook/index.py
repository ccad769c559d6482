"""The webhook's own watch-fed index: exactly what admission decisions read, nothing more.

- AIWorkloads (of the watched namespaces), as the API sent them;
- Namespaces' labels (which AIGatePolicies govern a namespace);
- AIGatePolicies, parsed when they change;
- the trusted evidence ConfigMaps in the operator's namespace (label `aigate.dev/role=evidence`);
- the ConfigMaps some AIWorkload references (`policy.configmaps.configmaps_read`), and no other: a ConfigMap
  nobody references is seen on the watch and dropped; one referenced after it was listed is read once from the API.

Each watch runs in a thread of its own and applies its events under one lock. When a workload, one of its
ConfigMaps or its evidence changes, the thread that saw the change also decides a rollout for it once (`warm`): the
spec digest and the signature check land in the VerifyCache, keyed on resourceVersions and on the envelope's
hash, so that the request path finds them there and neither parses nor hashes (issue 10, point 4). A spec that
cannot be resolved is remembered the same way, per resourceVersion.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from pydantic import ValidationError

from aigate.api.errors import format_validation_error
from aigate.api.models import API_GROUP, API_VERSION, PLURAL, WORKLOAD_LABEL
from aigate.api.policy import POLICY_PLURAL, AIGatePolicy
from aigate.evidence import PublicKey
from aigate.kube import names
from aigate.kube.names import EVIDENCE_ROLE
from aigate.policy.configmaps import configmap_entry, configmaps_read
from aigate.policy.governance import EffectivePolicy, PlatformDefault, effective
from aigate.webhook.admission import VerifyCache, rollout_decision

log = logging.getLogger("aigate.webhook")

JSON = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name)"""

EVIDENCE_SELECTOR = f"{names.ROLE_LABEL}={EVIDENCE_ROLE}"
WATCH_TIMEOUT_SECONDS = 300
RETRY_SECONDS = 2.0


def _key(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _identity(body: Mapping[str, Any]) -> JSON:
    """Enough of an object for a DELETED event: name, namespace, uid, labels."""
    meta = body.get("metadata") or {}
    return {"metadata": {k: meta[k] for k in ("name", "namespace", "uid", "labels") if k in meta}}


class Index:
    """The state decisions read. Readers (the request path) only look up dicts; writers (the watch threads) hold
    `lock` and replace entries whole."""

    def __init__(
        self,
        *,
        operator_namespace: str,
        public_key: PublicKey,
        verify_cache: VerifyCache,
        platform_default: PlatformDefault,
        fetch_configmap: Callable[[str, str], JSON | None] | None = None,
        fetch_deployment: Callable[[str, str], JSON | None] | None = None,
    ) -> None:
        self.operator_namespace = operator_namespace
        self.platform_default = platform_default
        self.public_key = public_key
        self.verify_cache = verify_cache
        self.fetch_configmap = fetch_configmap
        self.fetch_deployment = fetch_deployment
        """(namespace, name) -> the Deployment, None when it does not exist; raises when it cannot be read. Not
        indexed: read once per review of a Rollout with spec.workloadRef (webhook/review.py), never watched."""
        self.workloads: dict[Key, JSON] = {}
        self.configmaps: dict[str, dict[str, JSON]] = {}
        """namespace -> name -> ConfigMap, only those some workload references"""
        self.evidence: dict[str, JSON] = {}
        """name -> trusted evidence ConfigMap of the operator's namespace"""
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self.policies: dict[str, AIGatePolicy] = {}
        self.policies_installed = False
        self.refs: dict[Key, frozenset[str]] = {}
        self.wanted: dict[str, set[str]] = {}
        """namespace -> the ConfigMap names its workloads reference (the union of `refs` there)"""
        self.by_uid: dict[str, Key] = {}
        self.missing: set[Key] = set()
        """referenced ConfigMaps the API said do not exist: not asked again until the watch shows them"""
        self.lock = threading.RLock()
        self.configmaps_synced = False
        self._dirty: dict[Key, None] = {}
        """workloads whose decision is to be warmed again, oldest first (see `start_warmer`)"""
        self._dirty_changed: threading.Condition | None = None

    # ---- reading (the request path) -------------------------------------------------------------------------------

    def workload(self, namespace: str, name: str) -> JSON | None:
        return self.workloads.get((namespace, name))

    def configmaps_of(self, namespace: str) -> Mapping[str, JSON]:
        return self.configmaps.get(namespace) or {}

    def trusted_evidence(self, workload_uid: str) -> JSON | None:
        return self.evidence.get(names.trusted_evidence(workload_uid)) if workload_uid else None

    def governing(self, namespace: str) -> EffectivePolicy:
        """The AIGatePolicies selecting `namespace` (parsed when they changed, not per request), and the platform
        default for what none of them sets."""
        policies = list(self.policies.values())
        return effective(policies, self.namespace_labels.get(namespace) or {}, self.platform_default)

    def referenced(self, namespace: str, name: str) -> bool:
        return name in self.wanted.get(namespace, ())

    # ---- writing (the watch threads) ------------------------------------------------------------------------------

    def apply_workload(self, event: str, body: JSON) -> None:
        key = _key(body)
        with self.lock:
            old = self.workloads.get(key)
            if event == "DELETED":
                self.workloads.pop(key, None)
                self.refs.pop(key, None)
                uid = str(((old or body).get("metadata") or {}).get("uid") or "")
                self.by_uid.pop(uid, None)
                self._drop_unreferenced(key[0])
                return
            body = {k: v for k, v in body.items() if k != "status"} | {"status": body.get("status") or {}}
            self.workloads[key] = body
            uid = str((body.get("metadata") or {}).get("uid") or "")
            if uid:
                self.by_uid[uid] = key
            refs = configmaps_read(body)
            self.refs[key] = refs
            self._drop_unreferenced(key[0])
            held = self.configmaps.get(key[0]) or {}
            if self.configmaps_synced:
                for name in refs - held.keys():
                    self._fetch(key[0], name)
        self.warm(key)

    def apply_configmap(self, event: str, body: JSON) -> None:
        ns, name = _key(body)
        with self.lock:
            self.missing.discard((ns, name))
            if event == "DELETED":
                (self.configmaps.get(ns) or {}).pop(name, None)
            elif self.referenced(ns, name):
                self.configmaps.setdefault(ns, {})[name] = configmap_entry(body, keep_data=True)
            else:
                return
            affected = [k for k, refs in self.refs.items() if k[0] == ns and name in refs]
        for key in affected:
            self.warm(key)

    def configmaps_listed(self) -> None:
        """The ConfigMap watch has its first listing: fetch what workloads listed before it reference and it missed."""
        with self.lock:
            self.configmaps_synced = True
            for (ns, _), refs in list(self.refs.items()):
                held = self.configmaps.get(ns) or {}
                for name in refs - held.keys():
                    self._fetch(ns, name)
            keys = list(self.workloads)
        for key in keys:
            self.warm(key)

    def apply_evidence(self, event: str, body: JSON) -> None:
        _, name = _key(body)
        with self.lock:
            if event == "DELETED":
                self.evidence.pop(name, None)
            else:
                self.evidence[name] = configmap_entry(body, keep_data=True)
            uid = str(((body.get("metadata") or {}).get("labels") or {}).get(names.WORKLOAD_UID_LABEL) or "")
            key = self.by_uid.get(uid)
        if key is not None and event != "DELETED":
            self.warm(key)

    def apply_namespace(self, event: str, body: JSON) -> None:
        _, name = _key(body)
        if event == "DELETED":
            self.namespace_labels.pop(name, None)
        else:
            self.namespace_labels[name] = dict(((body.get("metadata") or {}).get("labels")) or {})

    def apply_policy(self, event: str, body: JSON) -> None:
        _, name = _key(body)
        if event == "DELETED":
            self.policies.pop(name, None)
            return
        try:
            self.policies[name] = AIGatePolicy.model_validate(body)
        except ValidationError as e:
            log.warning("AIGatePolicy %s ignored: %s", name, "; ".join(format_validation_error(e)))
            self.policies.pop(name, None)

    def _drop_unreferenced(self, namespace: str) -> None:
        wanted: set[str] = set()
        for (ns, _), refs in self.refs.items():
            if ns == namespace:
                wanted |= refs
        self.wanted[namespace] = wanted
        held = self.configmaps.get(namespace) or {}
        for name in [n for n in held if n not in wanted]:
            del held[name]

    def _fetch(self, namespace: str, name: str) -> None:
        if self.fetch_configmap is None or (namespace, name) in self.missing:
            return
        try:
            found = self.fetch_configmap(namespace, name)
        except Exception as e:  # the watch will bring it when it changes; a decision says it is missing
            log.warning("ConfigMap %s/%s not read: %s", namespace, name, e)
            return
        if found is None:
            self.missing.add((namespace, name))
        else:
            self.configmaps.setdefault(namespace, {})[name] = configmap_entry(found, keep_data=True)

    def start_warmer(self) -> None:
        """From now on `warm` only marks a workload and one thread of its own warms it, from its latest state. The
        watch threads then only copy what they receive: a tenant rewriting a large referenced ConfigMap in a loop
        costs one digest per workload at a time, however many versions arrive, and no watch falls behind on the
        other namespaces' changes while it is being hashed."""
        if self._dirty_changed is not None:
            return
        self._dirty_changed = threading.Condition(threading.Lock())
        threading.Thread(target=self._warm_dirty, name="warm", daemon=True).start()

    def _warm_dirty(self) -> None:
        assert self._dirty_changed is not None
        while True:
            with self._dirty_changed:
                while not self._dirty:
                    self._dirty_changed.wait()
                key = next(iter(self._dirty))
                del self._dirty[key]
            self.warm_now(key)

    def warm(self, key: Key) -> None:
        """Have this workload's decision warmed: at once, or by the warmer thread once it runs."""
        if self._dirty_changed is None:
            self.warm_now(key)
            return
        with self._dirty_changed:
            self._dirty[key] = None
            self._dirty_changed.notify()

    def warm_now(self, key: Key) -> None:
        """Decide a rollout for this workload once, off the request path: its spec digest and its evidence's
        signature check are then remembered, and a review only looks them up."""
        workload = self.workloads.get(key)
        if workload is None:
            return
        uid = str((workload.get("metadata") or {}).get("uid") or "")
        try:
            rollout_decision(
                kind="Deployment",
                namespace=key[0],
                labels={WORKLOAD_LABEL: key[1]},
                workload=workload,
                evidence_cm=self.trusted_evidence(uid),
                configmaps=self.configmaps_of(key[0]),
                public_key=self.public_key,
                now=datetime.now(UTC),
                verify_cache=self.verify_cache,
            )
        except Exception:  # a decision in the request path will say what is wrong; never stop a watch for it
            log.exception("warming the decision for %s/%s failed", *key)


# ---- the watches ----------------------------------------------------------------------------------------------------


@dataclass
class Watch:
    """One list-then-watch loop over a collection, fed to `apply`; `listed` runs after each complete listing."""

    name: str
    path: str
    apply: Callable[[str, JSON], None]
    label_selector: str | None = None
    listed: Callable[[], None] | None = None
    optional: bool = False
    """a 404 (its CRD is not installed) counts as an empty, listed collection, retried later"""


class Watcher:
    """Runs `Watch`es in daemon threads over the API client's own connection pool; `ready` once every one has
    listed once."""

    def __init__(self, api: k8s.ApiClient, watches: Iterable[Watch]) -> None:
        self.api = api
        self.watches = list(watches)
        self.synced: set[str] = set()
        self._stop = threading.Event()
        self.threads: list[threading.Thread] = []

    @property
    def ready(self) -> bool:
        return len(self.synced) == len(self.watches)

    def start(self) -> None:
        for w in self.watches:
            t = threading.Thread(target=self._run, args=(w,), name=f"watch-{w.name}", daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self) -> None:
        self._stop.set()

    def _get(self, path: str, query: list[tuple[str, Any]], *, stream: bool) -> Any:
        return get(self.api, path, query, timeout=(10, WATCH_TIMEOUT_SECONDS + 30) if stream else 60)

    def _list(self, w: Watch) -> tuple[list[JSON], str]:
        query: list[tuple[str, Any]] = [("labelSelector", w.label_selector)] if w.label_selector else []
        doc = json.loads(self._get(w.path, query, stream=False).read())
        return list(doc.get("items") or []), str((doc.get("metadata") or {}).get("resourceVersion") or "")

    def _events(self, w: Watch, rv: str) -> Iterator[JSON]:
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("resourceVersion", rv),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", WATCH_TIMEOUT_SECONDS),
        ]
        if w.label_selector:
            query.append(("labelSelector", w.label_selector))
        resp = self._get(w.path, query, stream=True).response
        try:
            for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                if self._stop.is_set():
                    return
                yield json.loads(line)
        finally:
            resp.release_conn()

    def _run(self, w: Watch) -> None:
        known: dict[Key, JSON] = {}
        """what this watch last said exists, as much of each as a DELETED event needs: a relist (after the watch
        expired) deletes what it no longer finds"""
        while not self._stop.is_set():
            try:
                items, rv = self._list(w)
            except ApiException as e:
                if e.status in (403, 404) and w.optional:  # CRD not installed, or not readable: no policies
                    if w.name not in self.synced:
                        log.warning("%s not listed (HTTP %s): none applied", w.name, e.status)
                    self._mark(w)
                    self._stop.wait(30)
                    continue
                log.warning("listing %s failed (HTTP %s); retrying", w.name, e.status)
                self._stop.wait(RETRY_SECONDS)
                continue
            except Exception as e:
                log.warning("listing %s failed: %s; retrying", w.name, e)
                self._stop.wait(RETRY_SECONDS)
                continue
            listed = {_key(item): _identity(item) for item in items}
            for key in known.keys() - listed.keys():
                w.apply("DELETED", known[key])
            known = listed
            for item in items:
                w.apply("ADDED", item)
            self._mark(w)
            rv = self._follow(w, rv, known)

    def _mark(self, w: Watch) -> None:
        if w.name not in self.synced:
            self.synced.add(w.name)
            log.info("%s listed", w.name)
        if w.listed is not None:
            w.listed()

    def _follow(self, w: Watch, rv: str, known: dict[Key, JSON]) -> str:
        """Watch from `rv` until the API ends the stream with 410 Gone (then the caller lists again)."""
        while not self._stop.is_set():
            try:
                for event in self._events(w, rv):
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            return rv
                        log.warning("watch of %s: %s", w.name, obj.get("message"))
                        break
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        w.apply(str(kind), obj)
                        if kind == "DELETED":
                            known.pop(_key(obj), None)
                        else:
                            known[_key(obj)] = _identity(obj)
            except ApiException as e:
                if e.status == 410:
                    return rv
                log.warning("watch of %s failed (HTTP %s); resuming", w.name, e.status)
                self._stop.wait(RETRY_SECONDS)
            except Exception as e:
                log.warning("watch of %s broke: %s; resuming", w.name, e)
                self._stop.wait(RETRY_SECONDS)
        return rv


def watches(index: Index, watch_namespaces: Iterable[str]) -> list[Watch]:
    """What the index follows; with a namespace list, one AIWorkload and one ConfigMap watch per namespace."""
    group = f"/apis/{API_GROUP}/{API_VERSION}"
    out = [
        Watch("namespaces", "/api/v1/namespaces", index.apply_namespace),
        Watch("aigatepolicies", f"{group}/{POLICY_PLURAL}", index.apply_policy, optional=True),
        Watch(
            "evidence",
            f"/api/v1/namespaces/{index.operator_namespace}/configmaps",
            index.apply_evidence,
            label_selector=EVIDENCE_SELECTOR,
        ),
    ]
    spaces = sorted(set(watch_namespaces))
    if not spaces:
        out.append(Watch("aiworkloads", f"{group}/{PLURAL}", index.apply_workload))
        out.append(Watch("configmaps", "/api/v1/configmaps", index.apply_configmap, listed=index.configmaps_listed))
        return out
    listed: set[str] = set()

    def one_listed(ns: str) -> Callable[[], None]:
        def done() -> None:
            listed.add(ns)
            if listed >= set(spaces):
                index.configmaps_listed()

        return done

    for ns in spaces:
        out.append(Watch(f"aiworkloads/{ns}", f"{group}/namespaces/{ns}/{PLURAL}", index.apply_workload))
        out.append(
            Watch(
                f"configmaps/{ns}", f"/api/v1/namespaces/{ns}/configmaps", index.apply_configmap, listed=one_listed(ns)
            )
        )
    return out


def get(api: k8s.ApiClient, path: str, query: list[tuple[str, Any]], *, timeout: Any) -> Any:
    """A GET of `path` with the client's configuration and credentials, its body not read (a watch streams it);
    ApiException for an HTTP error, as the generated methods raise."""
    method, url, headers, _, _ = api.param_serialize(
        "GET", path, query_params=query, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
    )
    resp = api.rest_client.request(method, url, headers=headers, _request_timeout=timeout)  # type: ignore[no-untyped-call]
    if resp.status >= 300:
        body = resp.read()
        raise ApiException(status=resp.status, reason=resp.reason, body=body.decode(errors="replace") if body else None)
    return resp


CONFIGMAP_PATH = "/api/v1/namespaces/{namespace}/configmaps/{name}"
DEPLOYMENT_PATH = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def api_fetcher(
    api: k8s.ApiClient, path: str = CONFIGMAP_PATH, timeout: float = 10
) -> Callable[[str, str], JSON | None]:
    """An object read from the API as plain JSON (None when it does not exist), a ConfigMap unless `path` says
    otherwise; ApiException (or the client's own) for any other failure."""

    def fetch(namespace: str, name: str) -> JSON | None:
        try:
            resp = get(api, path.format(namespace=namespace, name=name), [], timeout=timeout)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return json.loads(resp.read())  # type: ignore[no-any-return]

    return fetch


def wait_ready(watcher: Watcher, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not watcher.ready and time.monotonic() < deadline:
        time.sleep(0.05)
    return watcher.ready
