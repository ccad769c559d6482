#!/usr/bin/env bash
# Build (or reuse from the cache) floor-webhook, the allow-all admission webhook bench/admission_e2e.py measures
# aigate's webhook against (the floor of what any webhook adds; source in hack/floor-webhook/, standard library only).
#
#   GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath ./hack/floor-webhook
# The binary lands in a cache directory keyed by the source's digest and the Go version, next to the other tools:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/floor-webhook-<digest>-<goversion>-<goos>-<goarch>/floor-webhook
# and is built only when missing (a change to the source is a new key). No module is downloaded (go.mod has no
# requirements). Idempotent; concurrent runs serialise on a lock file. Prints the binary's path on the last line.
set -euo pipefail

PROG=build-floor-webhook
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"

SRC="$ROOT/hack/floor-webhook"
command -v go >/dev/null 2>&1 || die "go is not on PATH; install Go >= 1.25"
command -v flock >/dev/null 2>&1 || die "flock is not on PATH (package util-linux)"
[[ -f "$SRC/main.go" && -f "$SRC/go.mod" ]] || die "$SRC/main.go or go.mod is missing"

GOOS="$(GOTOOLCHAIN=local go env GOOS)"
GOARCH="$(GOTOOLCHAIN=local go env GOARCH)"
GOVERSION="$(GOTOOLCHAIN=local go env GOVERSION)"
DIGEST="$(cat "$SRC/go.mod" "$SRC/main.go" | sha256sum | cut -c1-12)"
CACHE_DIR="${AIGATE_CACHE_DIR:-$HOME/.cache/aigate}"
OUT="$CACHE_DIR/bin/floor-webhook-${DIGEST}-${GOVERSION}-${GOOS}-${GOARCH}"

ok() { [[ -x "$OUT/floor-webhook" && -f "$OUT/.complete" ]]; }

if ok; then
  log "cached: floor-webhook ${DIGEST} ($(cat "$OUT/.complete"))"
  echo "$OUT/floor-webhook"
  exit 0
fi

mkdir -p "$CACHE_DIR/bin"
exec 9>"$CACHE_DIR/.build-floor-webhook.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.build-floor-webhook.lock; waiting for it"
  flock 9
fi
if ok; then
  log "built meanwhile by another run: $OUT/floor-webhook"
  echo "$OUT/floor-webhook"
  exit 0
fi

start=$(date +%s)
log "building floor-webhook ${DIGEST} with ${GOVERSION}"
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
(cd "$SRC" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false -mod=mod" GOPROXY=off \
  go build -ldflags="-s -w" -o "$OUT.tmp/floor-webhook" .) ||
  die "go build of $SRC failed (see go's error above)"
[[ -x "$OUT.tmp/floor-webhook" ]] || die "go build succeeded but produced no $OUT.tmp/floor-webhook"
# it must refuse to start without its flags, with one line saying so
if "$OUT.tmp/floor-webhook" >/dev/null 2>&1; then die "the built floor-webhook started without -cert/-key/-port"; fi
echo "floor-webhook ${DIGEST} built with ${GOVERSION} in $(elapsed "$start")" >"$OUT.tmp/.complete"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "floor-webhook built in $(elapsed "$start"): $OUT/floor-webhook"
echo "$OUT/floor-webhook"
