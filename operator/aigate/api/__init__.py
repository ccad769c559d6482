"""The AIWorkload resource: models, loading, references, digest, CRD."""

from aigate.api.errors import WorkloadError
from aigate.api.load import ResolvedTool, ResolvedWorkload, load_and_resolve, load_workload_file, resolve
from aigate.api.models import GATE_NAMES, AIWorkload, AIWorkloadSpec, GateName, ModelRef

__all__ = [
    "GATE_NAMES",
    "AIWorkload",
    "AIWorkloadSpec",
    "GateName",
    "ModelRef",
    "ResolvedTool",
    "ResolvedWorkload",
    "WorkloadError",
    "load_and_resolve",
    "load_workload_file",
    "resolve",
]
