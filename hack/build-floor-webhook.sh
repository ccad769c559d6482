#!/usr/bin/env bash
# Build (or reuse from the cache) floor-webhook, the allow-all admission webhook bench/admission_e2e.py measures
# aigate's webhook against (the floor of what any webhook adds; source in hack/floor-webhook/, standard library only).
#
#   GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath ./hack/floor-webhook
# The binary lands in a cache directory keyed by the source's digest and the Go version, next to the other tools:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/floor-webhook-<digest>-<goversion>-<goos>-<goarch>/floor-webhook
# and is built only when missing (a change to the source is a new key; hack/lib.sh, cached_build). No module is
# downloaded (go.mod has no requirements). Idempotent; concurrent runs serialise on a lock file. Prints the binary's
# path on the last line.
set -euo pipefail

PROG=build-floor-webhook
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"

SRC="$ROOT/hack/floor-webhook"
need_go "install Go >= 1.25"
[[ -f "$SRC/main.go" && -f "$SRC/go.mod" ]] || die "$SRC/main.go or go.mod is missing"

GOVERSION="$(GOTOOLCHAIN=local go env GOVERSION)"
DIGEST="$(cat "$SRC/go.mod" "$SRC/main.go" | sha256sum | cut -c1-12)"

build() {
  go_build "$SRC" "$1/floor-webhook" -mod=mod GOPROXY=off
  # it must refuse to start without its flags, with one line saying so
  if "$1/floor-webhook" >/dev/null 2>&1; then die "the built floor-webhook started without -cert/-key/-port"; fi
}

cached_build floor-webhook "$CACHE_DIR/bin/floor-webhook-${DIGEST}-${GOVERSION}-$(go_platform)" \
  "floor-webhook ${DIGEST}" build
