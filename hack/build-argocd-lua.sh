#!/usr/bin/env bash
# Build (or reuse from the cache) argocd-lua-health, the runner of Argo CD's Lua VM that tests/test_argocd.py uses
# to run every case of deploy/argocd's health_test.yaml against its health.lua, as Argo CD would.
#
# Built from hack/argocd-lua (a few lines of Go) and gopher-lua at the version Argo CD pins (hack/argocd-lua/go.mod),
# fetched through the Go module proxy and checked against go.sum:
#   GOTOOLCHAIN=local CGO_ENABLED=0 go build -o argocd-lua-health .
# The binary lands in a cache directory outside the repo, keyed by the gopher-lua version and a digest of the
# runner's sources (so an edited runner is rebuilt), next to the control plane's binaries:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/argocd-lua-<gopher-lua version>-<source digest>-<goos>-<goarch>/argocd-lua-health
# and is built only when missing. Go's module and build caches stay at their defaults so they are reused.
# Idempotent; concurrent runs serialise on a lock file. Prints the binary's path on the last line (stdout).
set -euo pipefail

die() { echo "build-argocd-lua: error: $*" >&2; exit 1; }
log() { echo "build-argocd-lua: [$(date +%H:%M:%S)] $*" >&2; }

SRC="$(cd "$(dirname "$0")/argocd-lua" && pwd)"
command -v go >/dev/null 2>&1 || die "go is not on PATH; install Go >= 1.23"
command -v flock >/dev/null 2>&1 || die "flock is not on PATH (package util-linux)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is not on PATH (package coreutils)"

LUA_VERSION="$(sed -n 's#^require github.com/yuin/gopher-lua \(v[0-9][0-9.]*\)$#\1#p' "$SRC/go.mod")"
[[ -n "$LUA_VERSION" ]] || die "no 'require github.com/yuin/gopher-lua vX.Y.Z' line in $SRC/go.mod"
# the digest tests/test_argocd.py computes too: sha256 of go.mod, go.sum and main.go, in that order
DIGEST="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-12)"
GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"
CACHE_DIR="${AIGATE_CACHE_DIR:-$HOME/.cache/aigate}"
OUT="$CACHE_DIR/bin/argocd-lua-${LUA_VERSION}-${DIGEST}-${GOOS}-${GOARCH}"

ok() { [[ -x "$OUT/argocd-lua-health" && -f "$OUT/.complete" ]]; }

if ok; then
  log "cached: argocd-lua-health with gopher-lua ${LUA_VERSION} ($(cat "$OUT/.complete"))"
  echo "$OUT/argocd-lua-health"
  exit 0
fi

mkdir -p "$CACHE_DIR/bin"
exec 9>"$CACHE_DIR/.build-argocd-lua.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.build-argocd-lua.lock; waiting for it"
  flock 9
fi
if ok; then
  log "built meanwhile by another run: $OUT/argocd-lua-health"
  echo "$OUT/argocd-lua-health"
  exit 0
fi

start=$(date +%s)
log "building argocd-lua-health with gopher-lua ${LUA_VERSION} and $(go env GOVERSION)"
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
(cd "$SRC" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false -mod=readonly" \
  go build -ldflags="-s -w" -o "$OUT.tmp/argocd-lua-health" .) ||
  die "go build of $SRC failed (see go's error above)"
v="$("$OUT.tmp/argocd-lua-health" -version)"
[[ "$v" == "gopher-lua $LUA_VERSION" ]] || die "built runner reports '$v', expected 'gopher-lua $LUA_VERSION'"
echo "gopher-lua $LUA_VERSION built with $(go env GOVERSION) in $(($(date +%s) - start))s" >"$OUT.tmp/.complete"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "argocd-lua-health built in $(($(date +%s) - start))s: $OUT/argocd-lua-health"
echo "$OUT/argocd-lua-health"
