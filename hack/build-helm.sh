#!/usr/bin/env bash
# Build (or reuse from the cache) helm, used to lint, render, install and test charts/aigate (tests/test_chart*.py,
# `make helm`, `make install`).
#
# Built from the official sources through the Go module proxy at a pinned release (HELM_VERSION below):
#   GOTOOLCHAIN=local CGO_ENABLED=0 go install helm.sh/helm/v4/cmd/helm@${HELM_VERSION}
# with helm's own version stamped in (its Makefile sets the same -X flags; `helm version` reads them).
# The binary lands in a version-keyed cache directory outside the repo, next to the control plane's binaries:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/helm-<version>-<goos>-<goarch>/helm
# and is built only when missing. Go's module and build caches stay at their defaults so they are reused.
# Idempotent; concurrent runs serialise on a lock file. Prints the helm binary's path on the last line (stdout).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}"

die() { echo "build-helm: error: $*" >&2; exit 1; }
log() { echo "build-helm: [$(date +%H:%M:%S)] $*" >&2; }

command -v go >/dev/null 2>&1 || die "go is not on PATH; install Go >= 1.25 (helm ${HELM_VERSION} needs it)"
command -v flock >/dev/null 2>&1 || die "flock is not on PATH (package util-linux)"
[[ "$HELM_VERSION" =~ ^v4\.[0-9]+\.[0-9]+$ ]] || die "HELM_VERSION '$HELM_VERSION' is not v4.MINOR.PATCH"

GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"
CACHE_DIR="${AIGATE_CACHE_DIR:-$HOME/.cache/aigate}"
OUT="$CACHE_DIR/bin/helm-${HELM_VERSION}-${GOOS}-${GOARCH}"

ok() { [[ -x "$OUT/helm" && -f "$OUT/.complete" ]]; }

if ok; then
  log "cached: helm ${HELM_VERSION} ($(cat "$OUT/.complete"))"
  echo "$OUT/helm"
  exit 0
fi

mkdir -p "$CACHE_DIR/bin"
exec 9>"$CACHE_DIR/.build-helm.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.build-helm.lock; waiting for it"
  flock 9
fi
if ok; then
  log "built meanwhile by another run: $OUT/helm"
  echo "$OUT/helm"
  exit 0
fi

start=$(date +%s)
log "building helm ${HELM_VERSION} with $(go env GOVERSION); a cold build takes a few minutes on 2 cores"
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}"
ldflags+=" -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
# Run outside any module so that `go install pkg@version` uses helm's own go.mod, nothing of ours.
(cd "$OUT.tmp" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOBIN="$OUT.tmp" \
  go install -ldflags="$ldflags" "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}") ||
  die "go install of helm ${HELM_VERSION} failed (see go's error above)"
[[ -x "$OUT.tmp/helm" ]] || die "go install succeeded but produced no $OUT.tmp/helm"
v="$("$OUT.tmp/helm" version --template '{{.Version}}' 2>&1)"
[[ "$v" == "$HELM_VERSION" ]] || die "built helm reports version '$v', expected '$HELM_VERSION'"
echo "helm $v built with $(go env GOVERSION) in $(($(date +%s) - start))s" >"$OUT.tmp/.complete"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "helm ${HELM_VERSION} built in $(($(date +%s) - start))s: $OUT/helm"
echo "$OUT/helm"
