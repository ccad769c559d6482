#!/usr/bin/env bash
# Build (or reuse from the cache) cosign, used by tests/test_cosign.py to prove that aigate's evidence envelopes
# verify with the Sigstore tooling a platform team already has, not only with `aigate verify`.
#
# Built from the official sources through the Go module proxy at a pinned release (COSIGN_VERSION below; cosign
# v3 needs Go >= 1.26):
#   GOTOOLCHAIN=local CGO_ENABLED=0 go install github.com/sigstore/cosign/v3/cmd/cosign@${COSIGN_VERSION}
# The binary lands in a version-keyed cache directory outside the repo, next to the control plane's binaries:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/cosign-<version>-<goos>-<goarch>/cosign
# and is built only when missing. Go's module and build caches stay at their defaults so they are reused.
# Idempotent; concurrent runs serialise on a lock file. Prints the cosign binary's path on the last line (stdout).
set -euo pipefail

COSIGN_VERSION="${COSIGN_VERSION:-v3.1.3}"

die() { echo "build-cosign: error: $*" >&2; exit 1; }
log() { echo "build-cosign: [$(date +%H:%M:%S)] $*" >&2; }

command -v go >/dev/null 2>&1 || die "go is not on PATH; install Go >= 1.26 (cosign ${COSIGN_VERSION} needs it)"
command -v flock >/dev/null 2>&1 || die "flock is not on PATH (package util-linux)"
[[ "$COSIGN_VERSION" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "COSIGN_VERSION '$COSIGN_VERSION' is not v3.MINOR.PATCH"

GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"
CACHE_DIR="${AIGATE_CACHE_DIR:-$HOME/.cache/aigate}"
OUT="$CACHE_DIR/bin/cosign-${COSIGN_VERSION}-${GOOS}-${GOARCH}"

ok() { [[ -x "$OUT/cosign" && -f "$OUT/.complete" ]]; }

if ok; then
  log "cached: cosign ${COSIGN_VERSION} ($(cat "$OUT/.complete"))"
  echo "$OUT/cosign"
  exit 0
fi

mkdir -p "$CACHE_DIR/bin"
exec 9>"$CACHE_DIR/.build-cosign.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.build-cosign.lock; waiting for it"
  flock 9
fi
if ok; then
  log "built meanwhile by another run: $OUT/cosign"
  echo "$OUT/cosign"
  exit 0
fi

start=$(date +%s)
log "building cosign ${COSIGN_VERSION} with $(go env GOVERSION); a cold build takes several minutes on 2 cores"
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
# Run outside any module so that `go install pkg@version` uses cosign's own go.mod, nothing of ours.
(cd "$OUT.tmp" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOBIN="$OUT.tmp" \
  go install -ldflags="-s -w" "github.com/sigstore/cosign/v3/cmd/cosign@${COSIGN_VERSION}") ||
  die "go install of cosign ${COSIGN_VERSION} failed (see go's error above)"
[[ -x "$OUT.tmp/cosign" ]] || die "go install succeeded but produced no $OUT.tmp/cosign"
v="$("$OUT.tmp/cosign" version 2>&1 | sed -n 's/^GitVersion: *//p')"
[[ "$v" == "$COSIGN_VERSION" ]] || die "built cosign reports GitVersion '$v', expected '$COSIGN_VERSION'"
echo "cosign $v built with $(go env GOVERSION) in $(($(date +%s) - start))s" >"$OUT.tmp/.complete"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "cosign ${COSIGN_VERSION} built in $(($(date +%s) - start))s: $OUT/cosign"
echo "$OUT/cosign"
