"""`kubectl aigate`: answers "why was this refused?" from the cluster, as kubectl users expect to ask it.

    kubectl aigate why NAME                          decision, failed gates, what to change, policy, evidence expiry
    kubectl aigate why -f FILE                       the same for the AIWorkload a labelled object's label names
    kubectl aigate evidence NAME [--verify]          the signed evidence the status points to; verified offline
    kubectl aigate report NAME -o report.html        the HTML readiness report from the cluster's evidence
    kubectl aigate check-install [--wait 2m]         whether admission works end to end after an install

kubectl's conventions: -n/--namespace (else the context's namespace), --context, --kubeconfig (else $KUBECONFIG,
else ~/.kube/config). Exit 0 when the answer is good (PASS, evidence verified, report written), 1 when it is not
(FAIL, evidence refused), 2 for a usage error or when the cluster could not be asked. Never a traceback.

`evidence --verify` checks the signature with the public key the operator publishes in ConfigMap
`aigate-public-key` (key `aigate.pub`) of its namespace (--operator-namespace, default aigate-system), readable by
anyone authenticated; --key FILE or --key-secret NAMESPACE/NAME (a Secret holding `aigate.pub`) take it from
elsewhere instead. `report` verifies with --key or --key-secret when given.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

if TYPE_CHECKING:
    from aigate.policy.kinds import GatedKind

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2
PROG = "kubectl aigate"
OPERATOR_NAMESPACE = "aigate-system"
"""Where the chart installs the operator by default, and where its public key is then published."""


class PluginError(Exception):
    """One sentence for the user; exit 2."""


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- the cluster ----------------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    api: Any
    namespace: str

    def get_workload(self, name: str) -> dict[str, Any]:
        from kubernetes import client as k8s

        from aigate.api.models import API_GROUP, API_VERSION, PLURAL

        try:
            obj = k8s.CustomObjectsApi(self.api).get_namespaced_custom_object(
                API_GROUP, API_VERSION, self.namespace, PLURAL, name
            )
        except Exception as e:
            raise PluginError(_api_error(e, f'{PLURAL}.{API_GROUP} "{name}"', self.namespace)) from None
        return cast(dict[str, Any], obj)

    def get_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        from kubernetes import client as k8s
        from kubernetes.client.exceptions import ApiException

        try:
            cm = k8s.CoreV1Api(self.api).read_namespaced_config_map(name, namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise PluginError(_api_error(e, f'configmaps "{name}"', namespace)) from None
        except Exception as e:
            raise PluginError(_api_error(e, f'configmaps "{name}"', namespace)) from None
        return dict(cm.data or {})

    def get_secret_key(self, namespace: str, name: str, key: str) -> bytes:
        from kubernetes import client as k8s

        try:
            secret = k8s.CoreV1Api(self.api).read_namespaced_secret(name, namespace)
        except Exception as e:
            raise PluginError(_api_error(e, f'secrets "{name}"', namespace)) from None
        data = (secret.data or {}).get(key)
        if data is None:
            raise PluginError(f"Secret {namespace}/{name} has no key {key!r}")
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            raise PluginError(f"Secret {namespace}/{name} key {key!r} is not base64") from None


def _api_error(e: Exception, what: str, namespace: str) -> str:
    from kubernetes.client.exceptions import ApiException

    if isinstance(e, ApiException):
        if e.status == 404:
            return f"{what} not found in namespace {namespace}"
        if e.status == 403:
            return f"forbidden: cannot read {what} in namespace {namespace} (HTTP 403)"
        return f"the API server refused to read {what} in namespace {namespace}: HTTP {e.status} {e.reason}"
    return f"cannot reach the API server: {type(e).__name__}: {_first_line(str(e))}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    """kubectl's order: --kubeconfig, else $KUBECONFIG, else ~/.kube/config (else in-cluster); the namespace from
    -n, else the context's, else `default`."""
    from kubernetes import config as k8s_config

    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if kubeconfig and not Path(kubeconfig).is_file():
        raise PluginError(f"--kubeconfig {kubeconfig}: no such file")
    try:
        first = path.split(os.pathsep)[0]
        if not kubeconfig and not Path(first).is_file():
            raise FileNotFoundError(first)
        contexts, active = k8s_config.list_kube_config_contexts(config_file=first)  # type: ignore[no-untyped-call]
        chosen = next((c for c in contexts if c["name"] == context), None) if context else active
        if chosen is None:
            raise PluginError(f"--context {context}: no such context in {first}")
        api = k8s_config.new_client_from_config(config_file=first, context=chosen["name"])  # type: ignore[no-untyped-call]
        ns = namespace or chosen.get("context", {}).get("namespace") or "default"
        return Cluster(api=api, namespace=ns)
    except FileNotFoundError:
        return _in_cluster(namespace, path)
    except PluginError:
        raise
    except Exception as e:
        raise PluginError(f"cannot load kubeconfig {path}: {_first_line(str(e))}") from None


def _in_cluster(namespace: str | None, tried: str) -> Cluster:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    try:
        cfg = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        raise PluginError(f"no kubeconfig ({tried} does not exist) and not in a cluster; pass --kubeconfig") from None
    sa_ns = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    ns = namespace or (sa_ns.read_text().strip() if sa_ns.is_file() else "default")
    return Cluster(api=k8s.ApiClient(cfg), namespace=ns)


# ---- what the status points to --------------------------------------------------------------------------------------


@dataclass
class StoredEvidence:
    raw: str
    where: str
    """namespace/configmap"""


def stored_evidence(cluster: Cluster, workload: dict[str, Any]) -> StoredEvidence:
    from aigate.kube.names import EVIDENCE_KEY

    name = workload["metadata"]["name"]
    ref = (workload.get("status") or {}).get("evidence") or {}
    cm_name = ref.get("configMap")
    if not cm_name:
        raise PluginError(f"AIWorkload {cluster.namespace}/{name} has no evidence yet (status.evidence is empty)")
    ns = ref.get("namespace") or cluster.namespace
    data = cluster.get_configmap(ns, cm_name)
    if data is None:
        raise PluginError(f"status.evidence names ConfigMap {ns}/{cm_name}, which does not exist")
    raw = data.get(EVIDENCE_KEY)
    if not raw:
        raise PluginError(f"ConfigMap {ns}/{cm_name} has no key {EVIDENCE_KEY!r}")
    return StoredEvidence(raw=raw, where=f"{ns}/{cm_name}")


def public_key(cluster: Cluster, key: str | None, key_secret: str | None) -> tuple[Any, str] | None:
    from aigate.evidence.errors import EvidenceInputError
    from aigate.evidence.keys import PUBLIC_KEY_FILE, load_public_key, public_key_from_pem

    try:
        if key:
            return load_public_key(key), Path(key).name
        if key_secret:
            ns, sep, name = key_secret.partition("/")
            if not sep or not ns or not name:
                raise PluginError(f"--key-secret {key_secret!r}: expected NAMESPACE/NAME")
            pem = cluster.get_secret_key(ns, name, PUBLIC_KEY_FILE)
            return public_key_from_pem(pem, f"Secret {key_secret} key {PUBLIC_KEY_FILE}"), f"Secret {key_secret}"
    except EvidenceInputError as e:
        raise PluginError(str(e)) from None
    return None


def published_key(cluster: Cluster, operator_namespace: str) -> tuple[Any, str]:
    """The public key the operator published in its namespace; PluginError says where it looked when it is not there."""
    from aigate.evidence.errors import EvidenceInputError
    from aigate.evidence.keys import PUBLIC_KEY_FILE, public_key_from_pem
    from aigate.kube.names import PUBLIC_KEY_CONFIGMAP

    where = f"ConfigMap {operator_namespace}/{PUBLIC_KEY_CONFIGMAP}"
    elsewhere = (
        "(--operator-namespace NAMESPACE if the operator runs elsewhere, or --key FILE or --key-secret NAMESPACE/NAME)"
    )
    data = cluster.get_configmap(operator_namespace, PUBLIC_KEY_CONFIGMAP)
    if data is None:
        raise PluginError(f"--verify needs the operator's public key: {where} not found {elsewhere}")
    pem = data.get(PUBLIC_KEY_FILE)
    if not pem:
        raise PluginError(f"--verify needs the operator's public key: {where} has no key {PUBLIC_KEY_FILE!r}")
    try:
        return public_key_from_pem(pem.encode(), f"{where} key {PUBLIC_KEY_FILE}"), where
    except EvidenceInputError as e:
        raise PluginError(str(e)) from None


def current_digest(cluster: Cluster, workload: dict[str, Any]) -> str:
    """The spec digest as admission computes it now: the spec and every ConfigMap it references."""
    from aigate.api.digest import spec_digest
    from aigate.api.errors import WorkloadError
    from aigate.api.load import configmap_lookup, resolve, workload_from_api

    parsed = workload_from_api(workload)
    ns = parsed.metadata.namespace
    try:
        return spec_digest(resolve(parsed, configmap_lookup(ns, lambda n: cluster.get_configmap(ns, n))))
    except WorkloadError as e:
        raise PluginError(f"cannot compute the workload's spec digest: {e}") from None


# ---- the commands ---------------------------------------------------------------------------------------------------


def cmd_why(args: argparse.Namespace, cluster: Cluster) -> int:
    from aigate.gates.result import GateResult
    from aigate.policy.conditions import GATE_CONDITIONS
    from aigate.report.remedies import remedies
    from aigate.report.text import GATE_TITLES
    from aigate.times import parse_rfc3339, utcnow

    name, mismatch = args.name, None
    if getattr(args, "filename", None):
        from aigate.policy.mcpservers import mcp_problem

        if name:
            raise PluginError("give the AIWorkload's NAME or -f FILE, not both")
        found = _labelled_object(args.filename, cluster)
        if found is None:
            return EXIT_OK
        name, obj, gated = found
        w = cluster.get_workload(name)
        mismatch = mcp_problem(gated, obj, cluster.namespace, w)
        if mismatch is not None:
            print(f"  refused: {mismatch}\n")
    elif not name:
        raise PluginError("give the AIWorkload's NAME, or -f FILE with the labelled object")
    else:
        w = cluster.get_workload(name)
    status = w.get("status") or {}
    meta = w["metadata"]
    decision = status.get("decision") or "none yet"
    phase = status.get("phase") or "Pending"
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    print(f"AIWorkload {meta['namespace']}/{meta['name']}: decision {decision} (phase {phase})")
    stale = status.get("observedGeneration") not in (None, meta.get("generation"))
    if stale:
        print(f"  status is for generation {status.get('observedGeneration')}; the spec is at {meta.get('generation')}")
    gates: dict[str, GateResult] = {}
    note = ""
    try:
        gates = {g.gate: g for g in _evidence_gates(cluster, w)}
    except PluginError as e:
        note = str(e)
    failed = []
    for gate, ctype in GATE_CONDITIONS.items():
        cond = conditions.get(ctype) or {}
        if cond.get("status") == "False":
            failed.append((gate, cond))
    if failed:
        print("\nFailed gates:")
        for gate, cond in failed:
            print(f"  {GATE_TITLES[gate]}: {cond.get('message') or cond.get('reason', '')}")
            g = gates.get(gate)
            if g is not None:
                for f in g.findings:
                    if f.severity == "fail" and f.message != g.reason:
                        print(f"    - {f.message}")
                for r in remedies(g):
                    print(f"    change: {r}")
            elif note:
                print(f"    (findings unavailable: {note})")
    elif decision == "PASS":
        print("\nEvery gate passes.")
    else:
        ready = conditions.get("Ready") or {}
        print(f"\nNo gate has failed; Ready: {ready.get('reason', 'unknown')}: {ready.get('message', '')}".rstrip(": "))
    accepted = [(gate, conditions.get(t) or {}) for gate, t in GATE_CONDITIONS.items()]
    for gate, cond in accepted:
        if cond.get("reason") == "RiskAccepted":
            print(f"  {GATE_TITLES[gate]}: risk accepted: {cond.get('message', '')}")
    drifting = _drift(conditions.get("Drift"), status)
    print(f"\nPolicy: {_policy(status.get('policy'))}")
    ev = status.get("evidence") or {}
    expires = parse_rfc3339(ev.get("expiresAt"))
    if expires is None:
        print("\nEvidence: none")
    else:
        left = expires - utcnow()
        when = f"in {_span(left.total_seconds())}" if left.total_seconds() > 0 else "EXPIRED"
        where = f"{ev.get('namespace') or meta['namespace']}/{ev.get('configMap')}"
        print(f"\nEvidence: {where}, expires {ev['expiresAt']} ({when}), key {str(ev.get('keyId', ''))[:16]}")
    cleared = decision == "PASS" and not failed and not stale and mismatch is None and not drifting
    return EXIT_OK if cleared else EXIT_REFUSED


def _labelled_object(path: str, cluster: Cluster) -> tuple[str, dict[str, Any], GatedKind] | None:
    """The AIWorkload a manifest's object names (the first object of a gated kind in it, a labelled one first), with
    the object and its registry entry; None, said, when it carries no label. Moves `cluster` to its namespace."""
    import yaml

    from aigate.api.models import WORKLOAD_LABEL
    from aigate.policy.kinds import GATED_KINDS, at, gated_kind_of, images

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except OSError as e:
        raise PluginError(f"-f {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise PluginError(f"-f {path}: not YAML: {_first_line(str(e))}") from None
    gated = [(d, k) for d in docs if (k := gated_kind_of(d)) is not None]
    if not gated:
        kinds = ", ".join(sorted({k.kind for k in GATED_KINDS}))
        raise PluginError(f"-f {path}: no object of a kind aigate gates ({kinds})")
    labelled = [(d, k) for d, k in gated if isinstance(at(d, "metadata.labels"), dict)]
    obj, kind = next(((d, k) for d, k in labelled if WORKLOAD_LABEL in at(d, "metadata.labels")), gated[0])
    namespace = str(at(obj, "metadata.namespace") or cluster.namespace)
    cluster.namespace = namespace
    what = f"{kind.kind} {namespace}/{at(obj, 'metadata.name') or '(no name)'}"
    labels = at(obj, "metadata.labels")
    name = labels.get(WORKLOAD_LABEL) if isinstance(labels, dict) else None
    if not name:
        print(f"{what} has no {WORKLOAD_LABEL} label: aigate does not gate it")
        return None
    runs = ", ".join(images(kind, obj))
    print(f"{what}{f' (runs {runs})' if runs else ''} is labelled for AIWorkload {namespace}/{name}")
    return str(name), obj, kind


def _drift(cond: Any, status: dict[str, Any]) -> bool:
    """What the canaries after launch found, and what a drift does to rollouts; True while a drift stands."""
    if not isinstance(cond, dict):
        return False
    reason, message = cond.get("reason", ""), cond.get("message", "")
    if cond.get("status") != "True":
        print(f"\nCanary: {reason}: {message}".rstrip(": "))
        return False
    print(f"\nDrift: {reason} since {cond.get('lastTransitionTime', '?')}: {message}")
    print(
        "  the evidence no longer describes what answers: new rollouts are refused until a re-gate passes "
        "(admitted with a warning where an AIGatePolicy says onDrift: warn); running pods are not touched"
    )
    last = status.get("lastRun") or {}
    if last.get("job") and not last.get("finishedAt"):
        print(f"  re-gate running: Job {last.get('namespace', '')}/{last['job']}".replace(" /", " "))
    elif status.get("decision") == "FAIL":
        print("  the re-gate failed: rollouts stay refused until the workload passes again")
    return True


def _policy(recorded: Any) -> str:
    """The policy the last judgement was under, as status records it: who set it, and what it sets."""
    from aigate.policy.governance import governed_by

    names = recorded.get("names") if isinstance(recorded, dict) else None
    if not names:
        return "none recorded yet (status records it when the gates are judged)"
    sets = [f"enforcement floor {recorded['enforcement']}"] if recorded.get("enforcement") else []
    if recorded.get("maxValidFor"):
        sets.append(f"evidence valid at most {recorded['maxValidFor']}")
    return governed_by(names) + (f": {', '.join(sets)}" if sets else "")


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{max(seconds, 0) / 60:.0f} minutes"


def _evidence_gates(cluster: Cluster, w: dict[str, Any]) -> list[Any]:
    """The gates as the stored evidence records them (findings included); unverified: for explaining only."""
    from aigate.evidence.errors import EvidenceError
    from aigate.report.evidencefile import read_evidence

    stored = stored_evidence(cluster, w)
    try:
        return list(read_evidence(stored.raw, None).predicate.gates)
    except EvidenceError as e:
        raise PluginError(f"evidence in {stored.where} unreadable: {e}") from None


def cmd_evidence(args: argparse.Namespace, cluster: Cluster) -> int:
    from aigate.evidence.errors import EvidenceError
    from aigate.evidence.verify import verify_evidence
    from aigate.times import utcnow

    w = cluster.get_workload(args.name)
    stored = stored_evidence(cluster, w)
    if args.output:
        _write(args.output, stored.raw if stored.raw.endswith("\n") else stored.raw + "\n")
    if not args.verify:
        if not args.output:
            sys.stdout.write(stored.raw if stored.raw.endswith("\n") else stored.raw + "\n")
        return EXIT_OK
    key = public_key(cluster, args.key, args.key_secret)
    public, key_name = key if key is not None else published_key(cluster, args.operator_namespace)
    digest = current_digest(cluster, w)
    try:
        v = verify_evidence(stored.raw, public, now=utcnow(), expected_digest=digest, key_name=key_name)
    except EvidenceError as e:  # unreadable evidence too: what the status points to does not hold
        _err(f"evidence in {stored.where} rejected: {e}")
        return EXIT_REFUSED
    print(f"evidence in {stored.where} verified: {v.summary()}; for the current spec")
    return EXIT_OK


def cmd_report(args: argparse.Namespace, cluster: Cluster) -> int:
    from aigate.evidence.errors import EvidenceError
    from aigate.report.evidencefile import read_evidence
    from aigate.report.html import render_html_from_evidence

    w = cluster.get_workload(args.name)
    stored = stored_evidence(cluster, w)
    key = public_key(cluster, args.key, args.key_secret)
    try:
        ev = read_evidence(stored.raw, key[0] if key else None, key_name=key[1] if key else None)
    except EvidenceError as e:
        print(f"evidence in {stored.where} rejected: {e}", file=sys.stderr)
        return EXIT_REFUSED
    page = render_html_from_evidence(
        ev,
        source=f"ConfigMap {stored.where}",
        evidence_name="evidence.json",
        canary=(w.get("status") or {}).get("canary"),
    )
    _write(args.output, page)
    said = "verified" if ev.verified else "NOT verified (pass --key or --key-secret)"
    _err(f"report of {ev.subject} written to {args.output}: evidence {said}")
    return EXIT_OK


def cmd_check_install(args: argparse.Namespace, cluster: Cluster) -> int:
    """Exit 0 once a dry-run AIWorkload is judged by aigate's webhooks through their Service; 1 when it is not by
    the deadline (the last reason on stderr), as `cmctl check api --wait` does for cert-manager."""
    from aigate.api.models import parse_duration
    from aigate.installcheck import probe_once, wait

    try:
        timeout = parse_duration(args.wait).total_seconds() if args.wait != "0" else 0.0
    except ValueError:
        raise PluginError(f"--wait {args.wait}: not a duration (e.g. 90s, 2m)") from None
    namespace = getattr(args, "namespace", None) or args.operator_namespace
    outcome, elapsed = wait(
        lambda: probe_once(cluster.api, args.operator_namespace, namespace), timeout, interval=1.0, said=_err
    )
    if outcome.state == "works":
        print(f"admission works ({elapsed:.1f} s): {outcome.message}")
        return EXIT_OK
    when = f"after {elapsed:.0f} s" if timeout else "(no --wait)"
    _err(f"admission does not work {when}: {outcome.message}")
    return EXIT_REFUSED


def _write(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise PluginError(f"-o {path}: cannot write: {e.strerror or e}") from None


# ---- the command line -----------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        _err(f"error: {message}")
        raise SystemExit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="the AIWorkload's namespace")
    common.add_argument("--context", default=argparse.SUPPRESS, help="the kubeconfig context to use")
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="path to the kubeconfig file")
    keys = _Parser(add_help=False)
    keys.add_argument("--key", help="the operator's public key (PEM file)")
    keys.add_argument(
        "--key-secret", metavar="NAMESPACE/NAME", help="read the public key from this Secret's key aigate.pub"
    )
    p = _Parser(
        prog=PROG, parents=[common], description="Ask aigate, from the cluster, why a workload may not roll out."
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    w = sub.add_parser("why", parents=[common], help="decision, failed gates, what to change, evidence expiry")
    w.add_argument("name", nargs="?", help="the AIWorkload")
    w.add_argument(
        "-f",
        "--filename",
        metavar="FILE",
        help="a manifest (- for stdin) of a labelled object of a gated kind: why the AIWorkload its label names "
        "refuses it",
    )
    w.set_defaults(func=cmd_why)
    e = sub.add_parser("evidence", parents=[common, keys], help="the signed evidence; --verify checks it offline")
    e.add_argument("name")
    e.add_argument("--verify", action="store_true", help="verify signature, current spec, expiry and decision")
    e.add_argument("-o", "--output", help="also write the evidence (DSSE envelope) to this file")
    e.add_argument(
        "--operator-namespace",
        default=OPERATOR_NAMESPACE,
        metavar="NAMESPACE",
        help=f"where the operator publishes its public key for --verify (default {OPERATOR_NAMESPACE})",
    )
    e.set_defaults(func=cmd_evidence)
    r = sub.add_parser("report", parents=[common, keys], help="the HTML readiness report from the cluster's evidence")
    r.add_argument("name")
    r.add_argument("-o", "--output", required=True, help="where to write the HTML (- for stdout)")
    r.set_defaults(func=cmd_report)
    c = sub.add_parser(
        "check-install",
        parents=[common],
        help="whether the API server reaches aigate's webhooks and they answer (a dry-run AIWorkload)",
    )
    c.add_argument(
        "--operator-namespace",
        default=OPERATOR_NAMESPACE,
        metavar="NAMESPACE",
        help=f"where aigate is installed (default {OPERATOR_NAMESPACE}); also where the dry-run goes unless -n",
    )
    c.add_argument("--wait", default="0", metavar="DURATION", help="keep trying this long (e.g. 2m); default: once")
    c.set_defaults(func=cmd_check_install)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        cluster = connect(
            getattr(args, "kubeconfig", None), getattr(args, "context", None), getattr(args, "namespace", None)
        )
        code: int = args.func(args, cluster)
        return code
    except PluginError as e:
        _err(f"error: {e}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug of ours, or the API server went away mid-answer: one line, no traceback
        if os.environ.get("AIGATE_DEBUG"):
            raise
        from aigate.redact import redact

        _err(f"error: {type(e).__name__}: {redact(_first_line(str(e)))} (set AIGATE_DEBUG=1 for the traceback)")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
