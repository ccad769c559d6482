#!/usr/bin/env bash
# Build (or reuse from the cache) cosign, used by tests/test_cosign.py to prove that aigate's evidence envelopes
# verify with the Sigstore tooling a platform team already has, not only with `aigate verify`.
#
# Built from the official sources through the Go module proxy at a pinned release (COSIGN_VERSION below; cosign
# v3 needs Go >= 1.26):
#   GOTOOLCHAIN=local CGO_ENABLED=0 go install github.com/sigstore/cosign/v3/cmd/cosign@${COSIGN_VERSION}
# The binary lands in a version-keyed cache directory outside the repo, next to the control plane's binaries:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/cosign-<version>-<goos>-<goarch>/cosign
# and is built only when missing (hack/lib.sh, cached_go_install). Idempotent; concurrent runs serialise on a lock
# file. Prints the cosign binary's path on the last line (stdout).
set -euo pipefail

COSIGN_VERSION="${COSIGN_VERSION:-v3.1.3}"

PROG=build-cosign
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_go "install Go >= 1.26 (cosign ${COSIGN_VERSION} needs it)"
# the release `cosign version` names: GitVersion, stamped by the module proxy's tag
git_version() { "$1" version 2>&1 | sed -n 's/^GitVersion: *//p'; }
cached_go_install cosign github.com/sigstore/cosign/v3/cmd/cosign COSIGN_VERSION v3 git_version
