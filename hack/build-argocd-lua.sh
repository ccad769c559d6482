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
# and is built only when missing (hack/lib.sh, cached_build). Idempotent; concurrent runs serialise on a lock file.
# Prints the binary's path on the last line (stdout).
set -euo pipefail

PROG=build-argocd-lua
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SRC="$(cd "$(dirname "$0")/argocd-lua" && pwd)"
need_go "install Go >= 1.23"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is not on PATH (package coreutils)"

LUA_VERSION="$(sed -n 's#^require github.com/yuin/gopher-lua \(v[0-9][0-9.]*\)$#\1#p' "$SRC/go.mod")"
[[ -n "$LUA_VERSION" ]] || die "no 'require github.com/yuin/gopher-lua vX.Y.Z' line in $SRC/go.mod"
# the digest tests/test_argocd.py computes too: sha256 of go.mod, go.sum and main.go, in that order
DIGEST="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-12)"

build() {
  go_build "$SRC" "$1/argocd-lua-health" -mod=readonly
  v="$("$1/argocd-lua-health" -version)"
  [[ "$v" == "gopher-lua $LUA_VERSION" ]] || die "built runner reports '$v', expected 'gopher-lua $LUA_VERSION'"
}

cached_build argocd-lua-health "$CACHE_DIR/bin/argocd-lua-${LUA_VERSION}-${DIGEST}-$(go_platform)" \
  "argocd-lua-health with gopher-lua ${LUA_VERSION}" build
