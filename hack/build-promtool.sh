#!/usr/bin/env bash
# Build (or reuse from the cache) promtool, used by tests/test_chart.py to check the chart's PrometheusRule with
# `promtool check rules` and `promtool test rules`.
#
# Built from the official sources through the Go module proxy at a pinned release (PROMETHEUS_VERSION below, the Go
# module version of Prometheus: v0.X.Y is Prometheus 3.X.Y):
#   GOTOOLCHAIN=local CGO_ENABLED=0 go install github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}
# The binary lands in a version-keyed cache directory outside the repo, next to the control plane's binaries:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/promtool-<version>-<goos>-<goarch>/promtool
# and is built only when missing (hack/lib.sh, cached_go_install). Idempotent; concurrent runs serialise on a lock
# file. Prints the promtool binary's path on the last line (stdout).
set -euo pipefail

PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"

PROG=build-promtool
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_go
# promtool reports no release we stamp: that it runs is the check
cached_go_install promtool github.com/prometheus/prometheus/cmd/promtool PROMETHEUS_VERSION v0 ""
