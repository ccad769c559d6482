#!/usr/bin/env bash
# Build (or reuse from the cache) promtool, used by tests/test_chart.py to check the chart's PrometheusRule with
# `promtool check rules` and `promtool test rules`.
#
# Built from the official sources through the Go module proxy at a pinned release (PROMETHEUS_VERSION below, the Go
# module version of Prometheus: v0.X.Y is Prometheus 3.X.Y):
#   GOTOOLCHAIN=local CGO_ENABLED=0 go install github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}
# The binary lands in a version-keyed cache directory outside the repo, next to the control plane's binaries:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/promtool-<version>-<goos>-<goarch>/promtool
# and is built only when missing. Idempotent; concurrent runs serialise on a lock file. Prints the promtool binary's
# path on the last line (stdout).
set -euo pipefail

PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"

die() { echo "build-promtool: error: $*" >&2; exit 1; }
log() { echo "build-promtool: [$(date +%H:%M:%S)] $*" >&2; }

command -v go >/dev/null 2>&1 || die "go is not on PATH"
command -v flock >/dev/null 2>&1 || die "flock is not on PATH (package util-linux)"
[[ "$PROMETHEUS_VERSION" =~ ^v0\.[0-9]+\.[0-9]+$ ]] || die "PROMETHEUS_VERSION '$PROMETHEUS_VERSION' is not v0.MINOR.PATCH"

GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"
CACHE_DIR="${AIGATE_CACHE_DIR:-$HOME/.cache/aigate}"
OUT="$CACHE_DIR/bin/promtool-${PROMETHEUS_VERSION}-${GOOS}-${GOARCH}"

ok() { [[ -x "$OUT/promtool" && -f "$OUT/.complete" ]]; }

if ok; then
  log "cached: promtool ${PROMETHEUS_VERSION} ($(cat "$OUT/.complete"))"
  echo "$OUT/promtool"
  exit 0
fi

mkdir -p "$CACHE_DIR/bin"
exec 9>"$CACHE_DIR/.build-promtool.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.build-promtool.lock; waiting for it"
  flock 9
fi
if ok; then
  log "built meanwhile by another run: $OUT/promtool"
  echo "$OUT/promtool"
  exit 0
fi

start=$(date +%s)
log "building promtool ${PROMETHEUS_VERSION} with $(go env GOVERSION); a cold build takes a few minutes on 2 cores"
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
(cd "$OUT.tmp" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOBIN="$OUT.tmp" \
  go install -ldflags="-s -w" "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}") ||
  die "go install of promtool ${PROMETHEUS_VERSION} failed (see go's error above)"
[[ -x "$OUT.tmp/promtool" ]] || die "go install succeeded but produced no $OUT.tmp/promtool"
"$OUT.tmp/promtool" check rules --help >/dev/null 2>&1 || die "built promtool does not run"
echo "promtool ${PROMETHEUS_VERSION} built with $(go env GOVERSION) in $(($(date +%s) - start))s" >"$OUT.tmp/.complete"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "promtool ${PROMETHEUS_VERSION} built in $(($(date +%s) - start))s: $OUT/promtool"
echo "$OUT/promtool"
