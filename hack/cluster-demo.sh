#!/usr/bin/env bash
# `make cluster-demo`: aigate on a local control plane, from CRD to a denied and an admitted rollout.
# See hack/localcluster/demo.py (options: --time-scale 0.1, --keep, --state-dir DIR).
set -euo pipefail
HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${AIGATE_PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x "$HACK/../.venv/bin/python" ]]; then PY="$HACK/../.venv/bin/python"; else PY=python3; fi
fi
export PYTHONPATH="$HACK${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m localcluster.demo "$@"
