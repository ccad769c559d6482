#!/usr/bin/env bash
# Build (or reuse from the cache) helm, used to lint, render, install and test charts/aigate (tests/test_chart*.py,
# `make helm`, `make install`).
#
# Built from the official sources through the Go module proxy at a pinned release (HELM_VERSION below):
#   GOTOOLCHAIN=local CGO_ENABLED=0 go install helm.sh/helm/v4/cmd/helm@${HELM_VERSION}
# with helm's own version stamped in (its Makefile sets the same -X flags; `helm version` reads them).
# The binary lands in a version-keyed cache directory outside the repo, next to the control plane's binaries:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/helm-<version>-<goos>-<goarch>/helm
# and is built only when missing (hack/lib.sh, cached_go_install). Idempotent; concurrent runs serialise on a lock
# file. Prints the helm binary's path on the last line (stdout).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.2}"
STAMP="-X helm.sh/helm/v4/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

PROG=build-helm
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_go "install Go >= 1.25 (helm ${HELM_VERSION} needs it)"
# `helm version` reads what STAMP set
stamped() { "$1" version --template '{{.Version}}' 2>&1; }
cached_go_install helm helm.sh/helm/v4/cmd/helm HELM_VERSION v4 stamped "$STAMP"
