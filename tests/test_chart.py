"""The Helm chart (charts/aigate) as `helm` renders it: lint and render over every ci/*-values.yaml, stable output,
values refused outside the schema, generated parts current, and what each rendered object promises (secure pods,
webhooks that agree with the operator's own rendering, TLS three ways, RBAC that never grants status).
helm comes from hack/build-helm.sh (tests/helmchart.py)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from aigate import chartgen
from aigate.api.crd import render_crd, render_policy_crd
from aigate.kube import names
from aigate.kube.config import OperatorConfig, env_name
from aigate.kube.metrics import Metrics
from aigate.policy.governance import PlatformDefault
from aigate.policy.kinds import GATED_KINDS
from aigate.webhook.configurations import mutating_configuration, validating_configuration
from helmchart import CHART, CI_VALUES, NS, ROOT, Obj, find_helm, find_promtool, render, run_helm, template_text


@pytest.fixture(scope="session")
def helm() -> Path:
    return find_helm()


def one(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {[(o['kind'], o['metadata']['name']) for o in objs]}"
    return found[0]


def pod_specs(objs: list[Obj]) -> Iterator[tuple[str, Obj]]:
    for o in objs:
        where = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] == "Pod":
            yield where, o["spec"]
        elif o["kind"] in ("Deployment", "Job"):
            yield where, o["spec"]["template"]["spec"]


def env_of(deployment: Obj) -> dict[str, str]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def ci(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


# -- generated parts ------------------------------------------------------------------------------------------------


def test_crd_templates_are_current() -> None:
    on_disk = {p.name: p.read_text() for p in (CHART / "templates" / "crds").glob("*.yaml")}
    assert on_disk == chartgen.crd_templates(), "charts/aigate/templates/crds is out of date: run `make chart`"


def test_values_reference_is_current() -> None:
    page = ROOT / "docs" / "chart-values.md"
    expected = chartgen.values_reference(*chartgen.load_chart(CHART))
    assert page.read_text() == expected, "docs/chart-values.md is out of date: run `make chart` and commit it"


def test_values_reference_has_a_row_per_value() -> None:
    """Every leaf of values.yaml is documented (and so declared in the schema)."""
    _schema, values = chartgen.load_chart(CHART)
    page = (ROOT / "docs" / "chart-values.md").read_text()

    def leaves(v: Any, path: str) -> Iterator[str]:
        if isinstance(v, dict) and v and not path.endswith(("labels", "Labels", "requests", "limits", "spec")):
            for k, sub in v.items():
                yield from leaves(sub, f"{path}.{k}" if path else k)
        else:
            yield path

    missing = [p for p in leaves(values, "") if f"| `{p}` |" not in page]
    assert missing == []


def test_chartgen_escapes_template_delimiters_in_a_crd() -> None:
    """A description with braces (promptfoo's {{var}}) is printed by Helm, never run: the rendered CRD equals
    `aigate crd` (test_the_rendered_crd_is_aigate_crd renders the real one, which has such a description)."""
    crd = render_crd().replace("description: PASS when", "description: PASS {{ .Values }} when", 1)
    text = "".join(chartgen.crd_templates(crd).values())
    assert 'PASS {{ "{{" }} .Values {{ "}}" }} when' in text
    assert "{{var}}" in render_crd() and "{{var}}" not in "".join(chartgen.crd_templates().values())


def test_chartgen_names_an_undescribed_value() -> None:
    schema, values = chartgen.load_chart(CHART)
    del schema["properties"]["webhook"]["properties"]["port"]["description"]
    with pytest.raises(chartgen.ChartGenError, match=r"no description for webhook\.port"):
        chartgen.values_reference(schema, values)


def test_the_rendered_crd_is_aigate_crd(helm: Path) -> None:
    """Same spec as crds/ (what `aigate crd` prints), plus the chart's labels and, under crds.keep, the keep policy."""
    expected = {d["metadata"]["name"]: d for d in yaml.safe_load_all(render_crd()) if d}
    policy = yaml.safe_load(render_policy_crd())
    expected[policy["metadata"]["name"]] = policy
    kept = [o for o in render(helm) if o["kind"] == "CustomResourceDefinition"]
    assert {o["metadata"]["name"]: o["spec"] for o in kept} == {n: d["spec"] for n, d in expected.items()}
    assert all(o["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"} for o in kept)
    assert all(o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm" for o in kept)
    loose = [o for o in render(helm, sets=("crds.keep=false",)) if o["kind"] == "CustomResourceDefinition"]
    assert [o["metadata"].get("annotations") for o in loose] == [None] * len(expected)
    assert not [o for o in render(helm, sets=("crds.install=false",)) if o["kind"] == "CustomResourceDefinition"]


# -- lint, render, stability, schema ----------------------------------------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_lint_and_template_every_ci_values_file(helm: Path, values: Path) -> None:
    r = run_helm(helm, "lint", "--strict", str(CHART), "--namespace", NS, "--values", str(values))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 chart(s) failed" in r.stdout
    objs = render(helm, values)
    assert len(objs) >= 15
    for o in objs:
        assert o.get("apiVersion") and o.get("kind") and o["metadata"].get("name"), o
        assert o["metadata"]["labels"].get("app.kubernetes.io/instance") == "aigate" or o["kind"] == "Pod", o


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_template_twice_gives_the_same_output(helm: Path, values: Path) -> None:
    """Nothing random (no generated certificate or key): Argo CD and `helm diff` see no change between renders."""
    assert template_text(helm, values) == template_text(helm, values)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("nosuchkey=1",), "additional properties 'nosuchkey' not allowed"),
        (("webhook.failurePolicy=Maybe",), "failurePolicy"),
        (("webhook.timeoutSeconds=31",), "timeoutSeconds"),
        (("webhook.timeoutSeconds=0",), "timeoutSeconds"),
        (("webhook.tls.nosuch=1",), "additional properties 'nosuch' not allowed"),
        (("image.digest=latest",), "digest"),
        (("gates.namespace=Not_A_Name",), "namespace"),
        (("defaultPolicy.enforcement=off",), "enforcement"),
        (("defaultPolicy.maxValidFor=a month",), "maxValidFor"),
        # the AIGatePolicy the chart rendered before the platform default was a setting
        (("defaultPolicy.enabled=true",), "additional properties 'enabled' not allowed"),
    ],
)
def test_values_outside_the_schema_are_refused(helm: Path, sets: tuple[str, ...], message: str) -> None:
    r = run_helm(helm, "template", "aigate", str(CHART), *[a for s in sets for a in ("--set", s)])
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


def test_cert_manager_and_an_existing_secret_together_are_refused(helm: Path) -> None:
    r = run_helm(
        helm,
        "template",
        "aigate",
        str(CHART),
        "--set",
        "webhook.certManager.enabled=true",
        "--set",
        "webhook.tls.existingSecret=mine",
        "--set",
        "webhook.tls.caBundle=Zm9v",
    )
    assert r.returncode != 0
    assert "choose one" in r.stderr


def test_an_existing_tls_secret_needs_a_ca_bundle(helm: Path) -> None:
    r = run_helm(helm, "template", "aigate", str(CHART), "--set", "webhook.tls.existingSecret=mine")
    assert r.returncode != 0
    assert "webhook.tls.caBundle is required with webhook.tls.existingSecret" in r.stderr


# -- pods -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_pod_runs_restricted(helm: Path, values: Path) -> None:
    """uid 65532, read-only root with an emptyDir at /tmp, no privilege escalation, no capabilities, RuntimeDefault
    seccomp, resource requests: the restricted Pod Security Standard, for the operator, the hook and the test."""
    pods = list(pod_specs(render(helm, values)))
    assert {w.split("/")[0] for w, _ in pods} >= {"Deployment", "Job"}
    for where, spec in pods:
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp and "emptyDir" in tmp[0], where
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["runAsUser"] == 65532 and sc["runAsGroup"] == 65532 and sc["runAsNonRoot"] is True, where
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], where
            assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"], where


def test_operator_deployment(helm: Path) -> None:
    objs = render(helm)
    d = one(objs, "Deployment", "aigate")
    assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"] == {"type": "Recreate"}
    [c] = d["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "ghcr.io/aigate/aigate:0.1.0" and c["args"] == ["operator"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    env = env_of(d)
    assert env["AIGATE_GATE_IMAGE"] == c["image"], "gate Jobs run the operator's own image"
    assert env["AIGATE_OPERATOR_NAMESPACE"] == NS and env["AIGATE_GATE_NAMESPACE"] == "aigate-gates"
    assert env["AIGATE_WEBHOOK_HOST"] == f"aigate-webhook.{NS}.svc"
    assert (env["AIGATE_JOB_CPU_REQUEST"], env["AIGATE_JOB_MEMORY_REQUEST"], env["AIGATE_JOB_MEMORY_LIMIT"]) == (
        "500m",
        "256Mi",
        "1Gi",
    )
    # the webhook Service is the webhook pods', never the operator's; the operator has a metrics Service
    svc = one(objs, "Service", "aigate-operator")
    assert svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {"metrics": (8080, "metrics")}
    assert "webhook" not in {p["name"] for p in c["ports"]}
    gates = one(objs, "Namespace", "aigate-gates")
    assert gates["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_webhook_deployment(helm: Path) -> None:
    """`aigate webhook` in pods of its own: two, kept apart where possible, one always left by a PDB, ready on its
    caches, the Service the webhook configurations call selecting them, with RBAC that reads and never writes."""
    objs = render(helm)
    d = one(objs, "Deployment", "aigate-webhook")
    spec = d["spec"]
    assert spec["replicas"] == 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    [c] = pod["containers"]
    assert c["args"] == ["webhook"] and c["image"] == "ghcr.io/aigate/aigate:0.1.0"
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}, "answers while its endpoint is being removed"
    [term] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    pdb = one(objs, "PodDisruptionBudget", "aigate-webhook")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": spec["selector"]["matchLabels"]}}
    svc = one(objs, "Service", "aigate-webhook")
    assert svc["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}["webhook"] == (443, "webhook")
    env = env_of(d)
    assert "AIGATE_SIGNING_KEY" not in env and env["AIGATE_PUBLIC_KEY"] == "/var/run/aigate/public-key/aigate.pub"
    assert _volume(d, "public-key")["configMap"]["name"] == "aigate-public-key"
    assert _volume(d, "webhook-tls")["secret"]["secretName"] == "aigate-webhook-tls"
    assert pod["serviceAccountName"] == "aigate-webhook"
    binding = one(objs, "ClusterRoleBinding", "aigate-webhook")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "aigate-webhook", "namespace": NS}]
    role = one(objs, "ClusterRole", "aigate-webhook")
    verbs = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert verbs == {
        ("aigate.dev", "aiworkloads"): {"list", "watch"},
        ("aigate.dev", "aigatepolicies"): {"list", "watch"},
        ("", "namespaces"): {"list", "watch"},
        ("", "configmaps"): {"get", "list", "watch"},
        ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
        ("apps", "deployments"): {"get"},  # the one a Rollout's spec.workloadRef names
    }
    [deployments] = [rule for rule in role["rules"] if rule["resources"] == ["deployments"]]
    assert "resourceNames" not in deployments and deployments["apiGroups"] == ["apps"]


PENDING_SETTINGS: set[str] = set()
"""Set by the chart for the operator the trust work (gate Jobs in the gate namespace) brings; remove each from here
when kube/config.py declares it (the test below says when)."""


def test_every_setting_the_chart_sets_is_one_the_operator_declares(helm: Path) -> None:
    declared = {env_name(f) for f in OperatorConfig.model_fields}
    assert PENDING_SETTINGS.isdisjoint(declared), (
        f"now declared, drop from PENDING_SETTINGS: {PENDING_SETTINGS & declared}"
    )
    for values in CI_VALUES:
        for d in [o for o in render(helm, values) if o["kind"] == "Deployment"]:
            unknown = {k for k in env_of(d) if k.startswith("AIGATE_")} - declared - PENDING_SETTINGS
            assert unknown == set(), f"{values.name}: {d['metadata']['name']} does not read {sorted(unknown)}"


def test_image_by_digest_and_pull_secrets(helm: Path) -> None:
    objs = render(helm, ci("restricted"))
    digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    for where, spec in pod_specs(objs):
        assert [c["image"] for c in spec["containers"]] == [f"registry.example.internal/platform/aigate@{digest}"]
        assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}], where
    env = env_of(one(objs, "Deployment", "gatekeeping"))
    assert env["AIGATE_GATE_IMAGE"].endswith(f"@{digest}")
    webhook = env_of(one(objs, "Deployment", "gatekeeping-webhook"))
    assert (webhook["AIGATE_ACCEPTOR_GROUPS"], webhook["AIGATE_WATCH_NAMESPACES"]) == (
        "platform:risk-owners,security:approvers",
        "fraud,payments",
    )
    assert env["AIGATE_ACCEPTOR_GROUPS"] == "platform:risk-owners,security:approvers"
    assert env["AIGATE_WATCH_NAMESPACES"] == "fraud,payments"


# -- webhooks ---------------------------------------------------------------------------------------------------------


def _webhooks(objs: list[Obj]) -> dict[str, Obj]:
    out = {}
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for w in one(objs, kind)["webhooks"]:
            out[w["name"]] = w
    return out


def test_webhooks_agree_with_the_operators_own_rendering(helm: Path) -> None:
    """Names, paths, rules, objectSelector, reinvocation: what hack/ and the tests register (webhook/configurations.py)
    is what the chart installs; only clientConfig and the excluded namespaces differ."""
    client = {"service": {"name": "aigate-webhook", "namespace": NS, "port": 443}}
    ours = {
        w["name"]: w
        for c in (
            validating_configuration(client, operator_namespace=NS),
            mutating_configuration(client, operator_namespace=NS),
        )
        for w in c["webhooks"]
    }
    chart = _webhooks(render(helm))
    assert sorted(chart) == sorted(ours)
    for name, w in chart.items():
        expected = {k: v for k, v in ours[name].items() if k != "namespaceSelector"}
        got = {k: v for k, v in w.items() if k != "namespaceSelector"}
        assert got == expected, name


def test_the_rollout_webhook_sees_every_kind_that_makes_pods(helm: Path) -> None:
    """ReplicaSets and ReplicationControllers too: writing what a Deployment would have written is judged."""
    rules = _webhooks(render(helm))["rollouts.aigate.dev"]["rules"]
    seen = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert {("apps", "replicasets"), ("", "replicationcontrollers")} <= seen
    assert seen == {(k.group, k.resource) for k in GATED_KINDS}


def test_each_custom_gated_kind_can_be_turned_off_and_none_is_read(helm: Path) -> None:
    """webhook.gatedKinds.<value> drops that kind's rule and nothing else; the webhook reads nothing of these kinds
    from the API (the object comes in the review), so no Role or ClusterRole of the chart names their groups."""
    custom = [k for k in GATED_KINDS if k.value is not None]
    assert len(custom) == 6
    all_of_them = {(k.group, k.resource) for k in GATED_KINDS}
    for kind in custom:
        rules = _webhooks(render(helm, sets=(f"webhook.gatedKinds.{kind.value}=false",)))["rollouts.aigate.dev"][
            "rules"
        ]
        seen = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
        assert seen == all_of_them - {(kind.group, kind.resource)}, kind.kind
    off = tuple(f"webhook.gatedKinds.{k.value}=false" for k in custom)
    rules = _webhooks(render(helm, sets=off))["rollouts.aigate.dev"]["rules"]
    assert {g for rule in rules for g in rule["apiGroups"]} == {"", "apps", "batch"}
    groups = {k.group for k in custom}
    for o in render(helm):
        if o["kind"] in ("ClusterRole", "Role"):
            named = {g for rule in o.get("rules") or [] for g in rule.get("apiGroups") or []}
            assert not named & groups, f"{o['kind']} {o['metadata']['name']} reads {sorted(named & groups)}"


def test_a_gated_kind_value_that_is_not_a_boolean_is_refused_naming_it(helm: Path) -> None:
    done = run_helm(helm, "template", "aigate", str(CHART), "--set-string", "webhook.gatedKinds.mcpServers=no")
    assert done.returncode != 0
    assert "gatedKinds" in done.stderr and "mcpServers" in done.stderr, done.stderr


def test_namespace_selector_excludes_system_release_gate_and_ignored_namespaces(helm: Path) -> None:
    """The release namespace is left out for labelled rollouts only: the AIWorkload webhooks judge it, where the
    install check sends its dry-run AIWorkload."""
    objs = render(helm, ci("restricted"), namespace="platform-aigate")
    common = ["ai-gates", "kube-node-lease", "kube-public", "kube-system", "sandbox"]
    expected = {
        "rollouts.aigate.dev": sorted([*common, "platform-aigate"]),
        "workloadrefs.aigate.dev": sorted([*common, "platform-aigate"]),
        "acceptances.aigate.dev": common,
        "aiworkloads.aigate.dev": common,
    }
    hooks = _webhooks(objs)
    assert sorted(hooks) == sorted(expected)
    for name, w in hooks.items():
        exprs = w["namespaceSelector"]["matchExpressions"]
        assert {"key": "aigate.dev/ignore", "operator": "DoesNotExist"} in exprs, name
        [names] = [e for e in exprs if e["key"] == "kubernetes.io/metadata.name"]
        assert names["operator"] == "NotIn"
        assert names["values"] == expected[name], name


def test_install_check_hook_waits_for_admission_with_least_rights(helm: Path) -> None:
    """A post-install/post-upgrade Job runs `kubectl aigate check-install` from the release's image; its
    ServiceAccount may list the webhook configurations, get the release namespace and create AIWorkloads there (the
    dry-run), nothing else, and lives as long as the hook."""
    objs = [o for o in render(helm, namespace="platform-aigate") if "install-check" in o["metadata"]["name"]]
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == sorted(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Job"])
    for o in objs:
        annotations = o["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        weight = int(annotations["helm.sh/hook-weight"])
        assert weight == (0 if o["kind"] == "Job" else -10), "RBAC exists before the Job starts"
    by_kind = {o["kind"]: o for o in objs}
    assert by_kind["ClusterRole"]["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
            "verbs": ["list"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["platform-aigate"], "verbs": ["get"]},
    ]
    assert by_kind["Role"]["metadata"]["namespace"] == "platform-aigate"
    assert by_kind["Role"]["rules"] == [
        {"apiGroups": ["aigate.dev"], "resources": ["aiworkloads"], "verbs": ["create"]}
    ]
    job = by_kind["Job"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 240
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["kubectl-aigate"]
    assert container["args"] == ["check-install", "--operator-namespace=platform-aigate", "--wait=180s"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    off = render(helm, namespace="platform-aigate", sets=("installCheck.enabled=false",))
    assert not [o for o in off if "install-check" in o["metadata"]["name"]]


def test_the_hooks_share_one_rbac_template(helm: Path) -> None:
    """pre-delete, post-delete and install-check: each a ServiceAccount with bindings to its own roles only."""
    objs = render(helm)
    for hook in ("aigate-uninstall", "aigate-release-finalizers", "aigate-install-check"):
        mine = [o for o in objs if o["metadata"]["name"] == hook]
        bindings = [o for o in mine if o["kind"].endswith("RoleBinding")]
        assert bindings, hook
        for b in bindings:
            assert b["roleRef"]["name"] == hook and b["roleRef"]["kind"] == b["kind"].removesuffix("Binding")
            assert b["subjects"] == [{"kind": "ServiceAccount", "name": hook, "namespace": "aigate-system"}]


def test_failure_policy_timeout_and_match_conditions_apply_to_rollouts_only(helm: Path) -> None:
    hooks = _webhooks(render(helm, ci("restricted")))
    rollouts = hooks.pop("rollouts.aigate.dev")
    assert rollouts["failurePolicy"] == "Ignore" and rollouts["timeoutSeconds"] == 10
    assert [c["name"] for c in rollouts["matchConditions"]] == ["not-the-release-bot"]
    assert rollouts["objectSelector"] == {"matchExpressions": [{"key": "aigate.dev/workload", "operator": "Exists"}]}
    # the unlabelled Rollouts with a workloadRef: the same failure policy, the same conditions and its own
    refs = hooks.pop("workloadrefs.aigate.dev")
    assert refs["failurePolicy"] == "Ignore" and refs["timeoutSeconds"] == 10
    assert refs["matchConditions"] == [
        *rollouts["matchConditions"],
        {"name": "has-workload-ref", "expression": "has(object.spec) && has(object.spec.workloadRef)"},
    ]
    for name, w in hooks.items():
        assert w["failurePolicy"] == "Fail", f"{name} records and checks who accepted a risk: it never fails open"
        assert "matchConditions" not in w and w["timeoutSeconds"] == 10 and w["sideEffects"] == "None"
    default = _webhooks(render(helm))["rollouts.aigate.dev"]
    assert default["failurePolicy"] == "Fail" and default["timeoutSeconds"] == 5 and "matchConditions" not in default
    refs = _webhooks(render(helm))["workloadrefs.aigate.dev"]
    assert refs["failurePolicy"] == "Fail" and [c["name"] for c in refs["matchConditions"]] == ["has-workload-ref"]


def test_the_workload_ref_webhook_sees_unlabelled_rollouts_and_goes_with_the_argo_rollouts_toggle(helm: Path) -> None:
    """An unlabelled Rollout naming a labelled Deployment in spec.workloadRef reaches the webhook (its own entry:
    no label to select on); webhook.gatedKinds.argoRollouts=false drops both Rollout entries and the Deployment read."""
    objs = render(helm)
    refs = _webhooks(objs)["workloadrefs.aigate.dev"]
    assert refs["clientConfig"]["service"]["path"] == "/workloadrefs.aigate.dev"
    assert refs["rules"] == [
        {
            "apiGroups": ["argoproj.io"],
            "apiVersions": ["v1alpha1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["rollouts"],
            "scope": "Namespaced",
        }
    ]
    # a labelled Rollout goes to the rollout webhook (which reads the Deployment too), never to both
    assert refs["objectSelector"] == {"matchExpressions": [{"key": "aigate.dev/workload", "operator": "DoesNotExist"}]}
    assert refs["namespaceSelector"] == _webhooks(objs)["rollouts.aigate.dev"]["namespaceSelector"]
    off = render(helm, sets=("webhook.gatedKinds.argoRollouts=false",))
    assert "workloadrefs.aigate.dev" not in _webhooks(off)
    role = one(off, "ClusterRole", "aigate-webhook")
    assert not [rule for rule in role["rules"] if "deployments" in rule["resources"]]


# -- TLS three ways ---------------------------------------------------------------------------------------------------


def _volume(d: Obj, name: str) -> Obj:
    [v] = [v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == name]
    return v


def test_tls_by_the_operators_rotator(helm: Path) -> None:
    objs = render(helm)
    assert all("caBundle" not in w["clientConfig"] for w in _webhooks(objs).values())
    d = one(objs, "Deployment", "aigate")
    env = env_of(d)
    assert env["AIGATE_WEBHOOK_TLS_SECRET"] == "aigate-webhook-tls"
    assert env["AIGATE_WEBHOOK_CONFIGURATION"] == "aigate"
    assert env["AIGATE_WEBHOOK_CERT_VALIDITY_SECONDS"] == str(365 * 24 * 3600)
    assert env["AIGATE_WEBHOOK_CERT"] == "/var/run/aigate/webhook-tls/tls.crt"
    assert _volume(d, "webhook-tls") == {"name": "webhook-tls", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    injector = one(objs, "ClusterRole", "aigate-webhook-ca-injector")
    assert injector["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
            "resourceNames": ["aigate"],
            "verbs": ["get", "update", "patch"],
        }
    ]
    assert not [o for o in objs if o["apiVersion"].startswith("cert-manager.io/")]


def test_tls_by_cert_manager(helm: Path) -> None:
    objs = render(helm, ci("cert-manager"))
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        conf = one(objs, kind)
        assert conf["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": f"{NS}/aigate-webhook"}
        assert all("caBundle" not in w["clientConfig"] for w in conf["webhooks"])
    cert = one(objs, "Certificate", "aigate-webhook")
    assert cert["spec"]["dnsNames"][0] == f"aigate-webhook.{NS}.svc"
    assert cert["spec"]["issuerRef"]["name"] == one(objs, "Issuer", "aigate-ca")["metadata"]["name"]
    assert one(objs, "Certificate", "aigate-webhook-ca")["spec"]["isCA"] is True
    d = one(objs, "Deployment", "aigate")
    assert _volume(d, "webhook-tls")["secret"]["secretName"] == cert["spec"]["secretName"]
    assert "AIGATE_WEBHOOK_TLS_SECRET" not in env_of(d)
    assert not [o for o in objs if o["metadata"]["name"] == "aigate-webhook-ca-injector"]


def test_tls_and_signing_key_from_existing_secrets(helm: Path) -> None:
    objs = render(helm, ci("existing-secrets"))
    bundles = {w["clientConfig"]["caBundle"] for w in _webhooks(objs).values()}
    assert len(bundles) == 1
    ca = x509.load_pem_x509_certificate(base64.b64decode(bundles.pop()))
    assert ca.subject.rfc4514_string() == "CN=aigate-webhook-ca"
    d = one(objs, "Deployment", "aigate")
    assert _volume(d, "webhook-tls")["secret"]["secretName"] == "aigate-webhook-tls-external"
    assert _volume(d, "signing-key")["secret"]["secretName"] == "aigate-signing-key-external"
    env = env_of(d)
    assert "AIGATE_WEBHOOK_TLS_SECRET" not in env and "AIGATE_SIGNING_KEY_SECRET" not in env
    assert env["AIGATE_SIGNING_KEY"] == "/var/run/aigate/signing/aigate.key"


def test_signing_key_generated_by_the_operator_by_default(helm: Path) -> None:
    objs = render(helm)
    d = one(objs, "Deployment", "aigate")
    assert env_of(d)["AIGATE_SIGNING_KEY_SECRET"] == "aigate-signing-key"
    assert _volume(d, "signing-key") == {"name": "signing-key", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    assert not [o for o in objs if o["kind"] == "Secret"], "the chart renders no key material"
    role = one(objs, "Role", "aigate-operator") if False else None
    del role
    ns_role = one([o for o in objs if o["metadata"].get("namespace") == NS], "Role", "aigate-operator")
    named = [r for r in ns_role["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["aigate-webhook-tls", "aigate-signing-key"],
            "verbs": ["get", "update"],
        }
    ]


# -- RBAC -------------------------------------------------------------------------------------------------------------


def test_every_rbac_rule_says_why() -> None:
    lines = (CHART / "templates" / "rbac.yaml").read_text().splitlines()
    bare = [i + 1 for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]
    bare = [n for n in bare if not lines[n - 2].strip().startswith("#")]
    assert bare == [], f"rules without a comment saying why, at templates/rbac.yaml lines {bare}"


def test_aggregated_roles_never_grant_status_or_more_than_aiworkloads(helm: Path) -> None:
    objs = render(helm)
    aggregated = [
        o
        for o in objs
        if o["kind"] == "ClusterRole"
        and any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in o["metadata"]["labels"])
    ]
    assert {o["metadata"]["name"] for o in aggregated} == {"aigate-aiworkloads-edit", "aigate-aiworkloads-view"}
    for o in aggregated:
        for rule in o["rules"]:
            assert rule["apiGroups"] == ["aigate.dev"] and rule["resources"] == ["aiworkloads"], o["metadata"]["name"]
    view = one(objs, "ClusterRole", "aigate-aiworkloads-view")
    assert view["rules"][0]["verbs"] == ["get", "list", "watch"]
    assert not [
        o for o in render(helm, ci("restricted")) if "aggregate-to-edit" in str(o["metadata"].get("labels", {}))
    ]


def test_anyone_authenticated_may_read_the_published_public_key_and_nothing_else(helm: Path) -> None:
    """The Role and RoleBinding the harness applies (signingkey.public_key_reader_rbac) are the chart's."""
    from aigate.controller.signingkey import public_key_reader_rbac

    objs = render(helm)
    expected = {o["kind"]: o for o in public_key_reader_rbac(NS, "aigate-public-key-reader")}
    role = one(objs, "Role", "aigate-public-key-reader")
    binding = one(objs, "RoleBinding", "aigate-public-key-reader")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NS
    assert role["rules"] == expected["Role"]["rules"]
    assert (binding["roleRef"], binding["subjects"]) == (
        expected["RoleBinding"]["roleRef"],
        expected["RoleBinding"]["subjects"],
    )


def test_operator_cluster_role_holds_no_wildcard_and_no_secret_listing(helm: Path) -> None:
    for values in CI_VALUES:
        for o in render(helm, values):
            if o["kind"] not in ("ClusterRole", "Role"):
                continue
            for rule in o["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[field], (values.name, o["metadata"]["name"], rule)
                if o["kind"] == "ClusterRole" and "secrets" in rule["resources"]:
                    assert rule["verbs"] == ["get"], (values.name, o["metadata"]["name"], rule)


def test_gate_jobs_in_workload_namespaces_only_while_asked(helm: Path) -> None:
    """Gate Jobs run in the gate namespace only: the rights to make them beside workloads are off by default."""
    name = "aigate-gate-jobs-in-workload-namespaces"
    assert not [o for o in render(helm) if o["metadata"]["name"].endswith(name[7:])]
    assert one(render(helm, sets=("rbac.gateJobsInWorkloadNamespaces=true",)), "ClusterRole", name)
    assert not [o for o in render(helm, ci("restricted")) if o["metadata"]["name"].endswith(name[7:])]


# -- hooks ------------------------------------------------------------------------------------------------------------


def test_pre_delete_hook_removes_exactly_the_webhook_configurations(helm: Path) -> None:
    objs = render(helm)
    job = one(objs, "Job", "aigate-uninstall")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    compile(script, "pre-delete hook", "exec")
    assert 'delete("aigate")' in script
    role = one(objs, "ClusterRole", "aigate-uninstall")
    assert role["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
            "resourceNames": ["aigate"],
            "verbs": ["delete"],
        }
    ]
    for o in objs:
        if o["metadata"]["name"] == "aigate-uninstall":
            assert o["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete", o["kind"]


def test_helm_test_pod_posts_a_review_to_the_webhook_service(helm: Path) -> None:
    objs = render(helm)
    pod = one(objs, "Pod", "aigate-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    compile(script, "helm test", "exec")
    assert f"https://aigate-webhook.{NS}.svc/rollouts.aigate.dev" in script
    assert not [o for o in render(helm, ci("restricted")) if o["kind"] == "Pod"]


# -- off by default, and when on --------------------------------------------------------------------------------------

OPTIONAL = {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "AIGatePolicy"}


def test_monitoring_and_network_policy_are_off_by_default(helm: Path) -> None:
    objs = render(helm)
    assert not [o for o in objs if o["kind"] in OPTIONAL]
    assert not [o for o in objs if o["kind"] == "ConfigMap"]


def _metric_names() -> set[str]:
    """Every series name the operator's registry can export (a labelled family has no samples until first used)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {f.name + sfx for f in Metrics().registry.collect() for sfx in suffixes.get(f.type, ("",))}


def test_prometheus_rules_use_metrics_the_operator_exports(helm: Path) -> None:
    objs = render(helm, ci("monitoring"))
    rule = one(objs, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "AIGateGateFailing",
        "AIGateEvidenceExpiringSoon",
        "AIGateEvidenceExpired",
        "AIGateWebhookErrors",
        "AIGateWebhookSlow",
        "AIGateReconcileErrors",
    } <= set(alerts)
    known = _metric_names()
    for name, r in alerts.items():
        used = set(re.findall(r"\baigate_[a-z_]+\b", r["expr"]))
        assert used or "apiserver_admission_webhook_rejection_count" in r["expr"], name
        assert used <= known, (name, used - known)
    assert alerts["AIGateWebhookSlow"]["expr"].endswith("> 0.5")
    assert rule["metadata"]["labels"]["release"] == "prometheus"


@pytest.fixture(scope="session")
def promtool() -> Path:
    return find_promtool()


def test_prometheus_rules_pass_promtool_check_and_unit_tests(helm: Path, promtool: Path, tmp_path: Path) -> None:
    """`promtool check rules` on the rendered groups, then `promtool test rules` (tests/prometheus/): each alert fires
    on the series that should raise it, with its labels and words, and stays silent when all is well."""
    rule = one(render(helm, ci("monitoring")), "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    tests = ROOT / "tests" / "prometheus" / "aigate-rules.test.yaml"
    (tmp_path / tests.name).write_text(tests.read_text())
    check = subprocess.run(
        [str(promtool), "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 8 rules found" in check.stdout + check.stderr
    run = subprocess.run([str(promtool), "test", "rules", tests.name], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout + run.stderr
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    tested = set(re.findall(r"alertname: (\w+)", tests.read_text()))
    assert alerts == tested, f"alerts without a promtool test: {sorted(alerts - tested)}"


def test_dashboard_and_service_monitor_when_on(helm: Path) -> None:
    objs = render(helm, ci("monitoring"))
    monitor = one(objs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    # both Services: the operator's gate metrics and the webhook's admission metrics
    [components] = [e["values"] for e in monitor["spec"]["selector"]["matchExpressions"]]
    for svc in [o for o in objs if o["kind"] == "Service"]:
        assert all(svc["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
        assert svc["metadata"]["labels"]["app.kubernetes.io/component"] in components
    dash = one(objs, "ConfigMap", "aigate-dashboard")
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dash["data"]["aigate.json"])
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    used = set(re.findall(r"\baigate_[a-z_]+\b", exprs))
    assert used and used <= _metric_names()


def test_network_policies_when_on(helm: Path) -> None:
    objs = render(helm, ci("monitoring"))
    gates = one(objs, "NetworkPolicy", "aigate-gates")
    assert gates["metadata"]["namespace"] == "aigate-gates"
    assert gates["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in gates["spec"]
    # a canary's pods are gate pods like any run's (their Jobs' role differs: the reconciler tells them apart)
    roles = [names.GATE_JOB_ROLE, names.CANARY_JOB_ROLE]
    assert gates["spec"]["podSelector"] == {
        "matchExpressions": [{"key": names.ROLE_LABEL, "operator": "In", "values": roles}]
    }
    ports = [p for rule in gates["spec"]["egress"] for p in rule["ports"]]
    assert {(p["port"], p["protocol"]) for p in ports} == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (8443, "TCP")}
    op = one(objs, "NetworkPolicy", "aigate-operator")
    assert {p["port"] for p in op["spec"]["ingress"][0]["ports"]} == {"metrics"}
    webhook = one(objs, "NetworkPolicy", "aigate-webhook")
    assert {p["port"] for p in webhook["spec"]["ingress"][0]["ports"]} == {"webhook", "metrics"}


def test_the_platform_default_is_the_operators_and_the_webhooks_setting(helm: Path) -> None:
    """Out of the box, where no AIGatePolicy sets them: enforce, 720h, the same as `aigate check` uses; both
    processes that judge get the same values, and none of it is an object a tenant could be outside of."""
    objs = render(helm)
    assert not [o for o in objs if o["kind"] == "AIGatePolicy"]
    built_in = PlatformDefault()
    assert (built_in.enforcement, built_in.max_valid_for) == ("enforce", "720h")
    for name in ("aigate", "aigate-webhook"):
        env = env_of(one(objs, "Deployment", name))
        assert (env["AIGATE_DEFAULT_ENFORCEMENT"], env["AIGATE_DEFAULT_MAX_VALID_FOR"]) == ("enforce", "720h"), name
    softer = render(helm, sets=("defaultPolicy.enforcement=warn", "defaultPolicy.maxValidFor=168h"))
    for name in ("aigate", "aigate-webhook"):
        env = env_of(one(softer, "Deployment", name))
        assert (env["AIGATE_DEFAULT_ENFORCEMENT"], env["AIGATE_DEFAULT_MAX_VALID_FOR"]) == ("warn", "168h"), name


@pytest.mark.parametrize(
    ("enforcement", "warning"),
    [
        ("warn", "a failing workload's rollouts are admitted with a warning."),
        ("audit", "a failing workload's rollouts are admitted whenever the workload asks for audit."),
    ],
)
def test_notes_warn_when_the_platform_default_is_softened(helm: Path, enforcement: str, warning: str) -> None:
    sets = ("--set", f"defaultPolicy.enforcement={enforcement}")
    r = run_helm(helm, "install", "aigate", str(CHART), "-n", NS, "--dry-run=client", *sets)
    assert r.returncode == 0, r.stderr
    notes = r.stdout.split("NOTES:", 1)[1]
    assert f"WARNING: defaultPolicy.enforcement is {enforcement}: where no AIGatePolicy sets a floor" in notes
    assert warning in notes, notes
    default = run_helm(helm, "install", "aigate", str(CHART), "-n", NS, "--dry-run=client")
    assert "WARNING: defaultPolicy" not in default.stdout


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (
            ci("default"),
            [
                "helm test aigate -n aigate-system",
                "generated once into Secret aigate-system/aigate-signing-key",
                "the platform default applies: enforcement enforce, evidence valid at most\n720h",
            ],
        ),
        (ci("existing-secrets"), ["signed with the key in Secret aigate-system/aigate-signing-key-external"]),
        (ci("restricted"), ["WARNING: webhook.failurePolicy is Ignore", "ai-gates, sandbox, and any labelled"]),
    ],
    ids=["default", "existing-secrets", "restricted"],
)
def test_notes_tell_a_person_what_to_do_next(helm: Path, values: Path, says: list[str]) -> None:
    r = run_helm(helm, "install", "aigate", str(CHART), "-n", NS, "--dry-run=client", "--values", str(values))
    assert r.returncode == 0, r.stderr
    notes = r.stdout.split("NOTES:", 1)[1]
    for text in says:
        assert text in notes, notes
