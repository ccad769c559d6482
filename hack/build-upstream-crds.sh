#!/usr/bin/env bash
# Fetch (or reuse from the cache) the upstream CRDs of the custom kinds aigate gates (operator/aigate/policy/kinds.py),
# each at a pinned release: tests/test_upstream_crds.py checks the registry's paths against their schemas, and
# tests/cluster/test_chart_e2e.py installs them on the local cluster to judge an object of each kind.
#
# Each project's Go module carries its CRDs; the Go module proxy serves it by exact version (nothing is built):
#   go mod download -json MODULE@VERSION
# The CRD files are copied into a cache directory keyed by the pins, outside the repo:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/crds/upstream-<key>/
# and fetched only when missing. Idempotent; concurrent runs serialise on a lock file. Prints the directory on the
# last line (stdout). With --cached it fetches nothing: it prints the directory when it is complete, else exits 3
# (tests/upstreamcrds.py asks so, to skip or fail saying how to fetch them).
set -euo pipefail

KSERVE_VERSION="${KSERVE_VERSION:-v0.16.0}"
LWS_VERSION="${LWS_VERSION:-v0.7.0}"
KNATIVE_SERVING_VERSION="${KNATIVE_SERVING_VERSION:-v0.51.0}"
TOOLHIVE_VERSION="${TOOLHIVE_VERSION:-v0.66.0}"
# toolhive's go.mod names a newer Go than the local toolchain: go fetches that toolchain through the module proxy
TOOLHIVE_GOTOOLCHAIN="${TOOLHIVE_GOTOOLCHAIN:-go1.27.3}"
ARGO_ROLLOUTS_VERSION="${ARGO_ROLLOUTS_VERSION:-v1.8.3}"

PROG=build-upstream-crds
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_go
command -v flock >/dev/null 2>&1 || die "flock is not on PATH (package util-linux)"

# module@version, the toolchain to fetch it with, then its CRD files (path in the module -> name in the cache)
SOURCES=(
  "github.com/kserve/kserve@$KSERVE_VERSION local
     config/crd/full/serving.kserve.io_inferenceservices.yaml=inferenceservices.serving.kserve.io.yaml
     config/crd/full/llmisvc/serving.kserve.io_llminferenceservices.yaml=llminferenceservices.serving.kserve.io.yaml"
  "sigs.k8s.io/lws@$LWS_VERSION local
     config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml=leaderworkersets.leaderworkerset.x-k8s.io.yaml"
  "knative.dev/serving@$KNATIVE_SERVING_VERSION local
     config/core/300-resources/service.yaml=services.serving.knative.dev.yaml"
  "github.com/stacklok/toolhive@$TOOLHIVE_VERSION $TOOLHIVE_GOTOOLCHAIN
     deploy/charts/operator-crds/files/crds/toolhive.stacklok.dev_mcpservers.yaml=mcpservers.toolhive.stacklok.dev.yaml"
  "github.com/argoproj/argo-rollouts@$ARGO_ROLLOUTS_VERSION local
     manifests/crds/rollout-crd.yaml=rollouts.argoproj.io.yaml"
)

KEY="$(printf '%s\n' "${SOURCES[@]}" | sha256sum | cut -c1-12)"
OUT="$CACHE_DIR/crds/upstream-$KEY"
if [[ -f "$OUT/.complete" ]]; then
  [[ "${1:-}" == --cached ]] || log "cached: $(cat "$OUT/.complete")"
  echo "$OUT"
  exit 0
fi
[[ "${1:-}" == --cached ]] && exit 3
mkdir -p "$CACHE_DIR/crds"
exec 9>"$CACHE_DIR/.$PROG.lock"
if ! flock -n 9; then
  log "another run holds $CACHE_DIR/.$PROG.lock; waiting for it"
  flock 9
fi
if [[ -f "$OUT/.complete" ]]; then
  log "fetched meanwhile by another run: $OUT"
  echo "$OUT"
  exit 0
fi

start=$(date +%s)
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
modules=()
for source in "${SOURCES[@]}"; do
  read -r -a words <<<"$(echo "$source" | tr '\n' ' ')"
  module="${words[0]}" toolchain="${words[1]}"
  log "go mod download $module (GOTOOLCHAIN=$toolchain)"
  # outside any module (an empty directory), so that nothing of ours takes part
  dir="$(cd "$work" && GOTOOLCHAIN="$toolchain" GOFLAGS=-mod=mod go mod download -json "$module" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || die "go mod download $module failed (see go's error above)"
  [[ -d "$dir" ]] || die "go mod download $module gave no module directory"
  for file in "${words[@]:2}"; do
    from="${file%%=*}" to="${file#*=}"
    [[ -f "$dir/$from" ]] || die "$module has no $from"
    cp "$dir/$from" "$OUT.tmp/$to"
    chmod 0644 "$OUT.tmp/$to"
  done
  modules+=("$module")
done
echo "${modules[*]} fetched in $(elapsed "$start")" >"$OUT.tmp/.complete"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "CRDs of ${#modules[@]} modules in $(elapsed "$start"): $OUT"
echo "$OUT"
