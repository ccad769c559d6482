"""Names and labels the operator, the gate Job and the webhooks agree on."""

from __future__ import annotations

import hashlib
import re

from aigate.api.models import API_GROUP, API_VERSION, PLURAL, WORKLOAD_LABEL

__all__ = ["API_GROUP", "API_VERSION", "PLURAL", "WORKLOAD_LABEL"]

GATE_FOR_LABEL = "aigate.dev/gate-for"
"""On the objects the operator makes for a workload (gate Job, its ServiceAccount/Role, result and evidence
ConfigMaps). Not `aigate.dev/workload`: that label is what the rollout webhook selects, and a gate Job must
never be held back by the gate it runs."""
ROLE_LABEL = "aigate.dev/role"
"""Which part of a gate run, or of the trusted evidence, an object is: one of the roles below."""
GATE_JOB_ROLE = "gate-job"
GATE_RESULT_ROLE = "gate-result"
GATE_INPUT_ROLE = "gate-input"
GATE_CREDENTIALS_ROLE = "gate-credentials"
EVIDENCE_ROLE = "evidence"
DIGEST_ANNOTATION = "aigate.dev/spec-digest"
RUN_ANNOTATION = "aigate.dev/run-id"
RUN_LABEL = "aigate.dev/run-id"
"""On every object of one gate run in the gate namespace: cleanup deletes by it."""
WORKLOAD_UID_LABEL = "aigate.dev/workload-uid"
"""On every object the operator keeps for a workload outside the workload's namespace (gate runs, the trusted
evidence): an owner reference cannot cross namespaces, so cleanup (the finalizer) selects by it. A uid, not a name:
a workload deleted and created again under the same name is another workload."""
FOR_NAMESPACE_ANNOTATION = "aigate.dev/for-namespace"
FOR_NAME_ANNOTATION = "aigate.dev/for-name"
"""Which AIWorkload a gate run or trusted evidence belongs to, for people and for routing a Job event."""
FINALIZER = "aigate.dev/gate-runs"

# The admission webhooks, by name; each is served at the path of its name (webhook/configurations.py registers
# them, the chart installs them, `aigate webhook` serves them, `kubectl aigate` checks them).
ROLLOUTS_WEBHOOK = "rollouts.aigate.dev"
"""Validating: Deployments and kin labelled aigate.dev/workload."""
WORKLOADREFS_WEBHOOK = "workloadrefs.aigate.dev"
"""Validating: unlabelled Argo Rollouts with spec.workloadRef, judged by the label of the Deployment they name."""
ACCEPTANCES_WEBHOOK = "acceptances.aigate.dev"
"""Mutating: records the authenticated user as acceptedBy of new or changed risk acceptances."""
AIWORKLOADS_WEBHOOK = "aiworkloads.aigate.dev"
"""Validating: AIWorkloads as they will be stored (acceptedBy as the mutation wrote it)."""
WEBHOOK_IDS: tuple[str, ...] = (ROLLOUTS_WEBHOOK, WORKLOADREFS_WEBHOOK, ACCEPTANCES_WEBHOOK, AIWORKLOADS_WEBHOOK)

INPUT_KEY = "input.json"
"""The key of the run's input ConfigMap that holds the resolved spec (`controller.jobs.run_input`)."""
RESULT_KEY = "result.json"
CANARY_KEY = "canary.json"
"""In a canary's input ConfigMap: the suite cases it sends each model path and what it may spend."""
CANARY_JOB_ROLE = "canary-job"
"""A canary's Job (its input, result and Secret carry the gate run roles): a Job of its own role, so that the
reconciler's gate run decisions never see a canary as a gate run."""
DRIFT_KEY = "drift.json"
"""In the trusted evidence ConfigMap (the operator's namespace), beside the envelope: the drift a canary found
against that envelope (`aigate.policy.canary.DriftRecord`), which the rollout webhook reads."""
EVIDENCE_KEY = "evidence.json"
JOB_NAME_ENV = "AIGATE_JOB_NAME"
"""Set from the pod's `job-name` label (the Job controller writes it), so the result names its Job."""
PUBLIC_KEY_CONFIGMAP = "aigate-public-key"
"""In the operator's namespace: the public key the operator signs evidence with, published for `kubectl aigate
evidence --verify` (`controller.signingkey`)."""


def _short(text: str, n: int) -> str:
    """Kubernetes names have length limits; keep them readable and unique with a hash tail."""
    if len(text) <= n:
        return text
    tail = hashlib.sha256(text.encode()).hexdigest()[:6]
    return text[: n - 7].rstrip("-.") + "-" + tail


def evidence_configmap(workload: str) -> str:
    return _short(f"{workload}-aigate-evidence", 253)


def result_configmap(workload: str) -> str:
    return _short(f"{workload}-aigate-result", 253)


def run_input(job: str) -> str:
    """The gate run's input: the resolved spec (referenced ConfigMaps inlined)."""
    return f"{job}-input"


def run_result(job: str) -> str:
    return f"{job}-result"


def run_credentials(job: str) -> str:
    """The per-run Secret: the credential keys the workload names, copied for the run's lifetime only."""
    return f"{job}-credentials"


def trusted_evidence(workload_uid: str) -> str:
    """The evidence admission trusts, in the operator's namespace, per workload uid."""
    return f"aigate-evidence-{workload_uid}"


def gate_service_account(workload: str) -> str:
    return _short(f"{workload}-aigate-gate", 253)


def gate_job(workload: str, spec_digest: str, attempt: str) -> str:
    """<= 63 characters: the Job controller copies the name into a label value."""
    digest = spec_digest.removeprefix("sha256:")[:8]
    return _short(f"aigate-{_short(workload, 40)}-{digest}-{attempt}", 63)


def secret_env_name(secret: str, key: str) -> str:
    """The env variable a Secret key reaches the gate Job as (secretKeyRef), named from the reference."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", f"{secret}_{key}").upper().strip("_")
    tail = hashlib.sha256(f"{secret}\0{key}".encode()).hexdigest()[:6].upper()
    return f"AIGATE_SECRET_{slug[:60]}_{tail}"
