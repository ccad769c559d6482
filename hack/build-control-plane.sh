#!/usr/bin/env bash
# Build (or reuse from the cache) the local control plane's binaries from the official sources, through the Go
# module proxy:
#   kube-apiserver, kube-controller-manager  from k8s.io/kubernetes   (KUBERNETES_VERSION in hack/versions.env)
#   etcd                                     from go.etcd.io/etcd/server/v3 (ETCD_VERSION)
#
# `go install k8s.io/kubernetes/cmd/kube-apiserver@vX` is refused because k8s.io/kubernetes's go.mod replaces
# its staging modules (k8s.io/api v0.0.0 => ./staging/...). So each build runs in a throw-away wrapper module
# that requires k8s.io/kubernetes at the pinned version and maps every staging module k8s.io/<name> to its
# published tag v0.<minor>.<patch>. The list of staging modules is read from k8s.io/kubernetes's own go.mod.
#
# Binaries land in a version-keyed cache directory outside the repo:
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/kubernetes-<version>-<goos>-<goarch>/{kube-apiserver,kube-controller-manager}
#   ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/etcd-<version>-<goos>-<goarch>/etcd
# and are built only when missing. Go's module cache and build cache stay at their defaults so they are reused.
# Idempotent; concurrent runs serialise on a lock file. Prints the directory holding the binaries on the last line.
set -Eeuo pipefail
trap 'trap - ERR; echo "build-control-plane: error: a command failed at line $LINENO (see above)" >&2' ERR

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"

PROG=build-control-plane
# shellcheck source=lib.sh
source "$HACK_DIR/lib.sh"

command -v go >/dev/null 2>&1 || die "go is not on PATH; install Go >= 1.26 (k8s.io/kubernetes ${KUBERNETES_VERSION} needs it)"
command -v flock >/dev/null 2>&1 || die "flock is not on PATH (package util-linux)"

[[ "$KUBERNETES_VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "KUBERNETES_VERSION '$KUBERNETES_VERSION' is not vMAJOR.MINOR.PATCH"
K8S_MINOR="${BASH_REMATCH[1]}"
STAGING_VERSION="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
[[ "$ETCD_VERSION" =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "ETCD_VERSION '$ETCD_VERSION' is not v3.MINOR.PATCH"

GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"
CACHE_DIR="${AIGATE_CACHE_DIR:-$HOME/.cache/aigate}"
K8S_BIN="$CACHE_DIR/bin/kubernetes-${KUBERNETES_VERSION}-${GOOS}-${GOARCH}"
ETCD_BIN="$CACHE_DIR/bin/etcd-${ETCD_VERSION}-${GOOS}-${GOARCH}"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-trimpath -buildvcs=false"

k8s_ok() { [[ -x "$K8S_BIN/kube-apiserver" && -x "$K8S_BIN/kube-controller-manager" && -f "$K8S_BIN/.complete" ]]; }
etcd_ok() { [[ -x "$ETCD_BIN/etcd" && -f "$ETCD_BIN/.complete" ]]; }

if k8s_ok && etcd_ok; then
  log "cached: kubernetes ${KUBERNETES_VERSION} in $K8S_BIN, etcd ${ETCD_VERSION} in $ETCD_BIN"
  exit 0
fi

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.build.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.build.lock; waiting for it"
  flock 9
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/aigate-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

build_kubernetes() {
  local start mod date ldflags pkgs=(kube-apiserver kube-controller-manager)
  start=$(date +%s)
  log "building kubernetes ${KUBERNETES_VERSION} (${pkgs[*]}) with $(go env GOVERSION); a cold build takes about 6-8 minutes on 2 cores"
  local dir="$WORK/kubernetes"
  mkdir -p "$dir"
  log "fetching k8s.io/kubernetes@${KUBERNETES_VERSION}'s go.mod from the module proxy"
  local json
  json="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}")" ||
    die "the module proxy refused k8s.io/kubernetes@${KUBERNETES_VERSION}: $(sed -n 's/^\t"Error": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
  mod="$(sed -n 's/^\t"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
  [[ -f "$mod" ]] || die "go mod download named no go.mod for k8s.io/kubernetes@${KUBERNETES_VERSION}"
  local staging
  staging="$(sed -n 's#^\t\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "$mod")"
  [[ -n "$staging" ]] || die "found no staging replace lines in $mod"
  {
    echo "module aigate.local/build/kubernetes"
    echo
    echo "go $(sed -n 's/^go \(.*\)$/\1/p' "$mod")"
    echo
    echo "require k8s.io/kubernetes ${KUBERNETES_VERSION}"
    echo
    echo "replace ("
    while read -r m; do echo "	$m => $m ${STAGING_VERSION}"; done <<<"$staging"
    echo ")"
  } >"$dir/go.mod"
  log "wrapper module maps $(wc -l <<<"$staging") staging modules to ${STAGING_VERSION}; resolving dependencies"
  (cd "$dir" && go get "${pkgs[@]/#/k8s.io/kubernetes/cmd/}@${KUBERNETES_VERSION}") ||
    die "go get of k8s.io/kubernetes ${KUBERNETES_VERSION} failed (module proxy refused or a staging tag ${STAGING_VERSION} is missing)"
  date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(dirname "$mod")/${KUBERNETES_VERSION}.info")"
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=${KUBERNETES_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${K8S_MINOR}"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=${date:-1970-01-01T00:00:00Z}"
  done
  log "compiling ${pkgs[*]}"
  mkdir -p "$dir/out"
  (cd "$dir" && with_progress "compiling ${pkgs[*]}" go build -ldflags="$ldflags" -o "$dir/out/" "${pkgs[@]/#/k8s.io/kubernetes/cmd/}") ||
    die "go build of kubernetes ${KUBERNETES_VERSION} failed"
  local v
  v="$("$dir/out/kube-apiserver" --version)" || die "the built kube-apiserver does not run"
  [[ "$v" == "Kubernetes ${KUBERNETES_VERSION}" ]] || die "built kube-apiserver reports '$v', expected 'Kubernetes ${KUBERNETES_VERSION}'"
  rm -rf "$K8S_BIN.tmp" && mkdir -p "$(dirname "$K8S_BIN")" && mv "$dir/out" "$K8S_BIN.tmp"
  echo "$v built with $(go env GOVERSION) in $(elapsed "$start")" >"$K8S_BIN.tmp/.complete"
  rm -rf "$K8S_BIN" && mv "$K8S_BIN.tmp" "$K8S_BIN"
  log "kubernetes ${KUBERNETES_VERSION} built in $(elapsed "$start"): $K8S_BIN"
}

build_etcd() {
  local start
  start=$(date +%s)
  log "building etcd ${ETCD_VERSION} from go.etcd.io/etcd/server/v3"
  local dir="$WORK/etcd"
  mkdir -p "$dir/out"
  printf 'module aigate.local/build/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$dir/go.mod"
  (cd "$dir" && go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}") || die "go get of go.etcd.io/etcd/server/v3@${ETCD_VERSION} failed"
  (cd "$dir" && with_progress "compiling etcd" go build -ldflags="-s -w" -o "$dir/out/etcd" go.etcd.io/etcd/server/v3) || die "go build of etcd ${ETCD_VERSION} failed"
  local v
  v="$("$dir/out/etcd" --version)" || die "the built etcd does not run"
  v="${v%%$'\n'*}" # its first line (not `| head -n1`: with pipefail, SIGPIPE could end the script silently)
  [[ "$v" == "etcd Version: ${ETCD_VERSION#v}" ]] || die "built etcd reports '$v', expected 'etcd Version: ${ETCD_VERSION#v}'"
  rm -rf "$ETCD_BIN.tmp" && mkdir -p "$(dirname "$ETCD_BIN")" && mv "$dir/out" "$ETCD_BIN.tmp"
  echo "$v built with $(go env GOVERSION) in $(elapsed "$start")" >"$ETCD_BIN.tmp/.complete"
  rm -rf "$ETCD_BIN" && mv "$ETCD_BIN.tmp" "$ETCD_BIN"
  log "etcd ${ETCD_VERSION} built in $(elapsed "$start"): $ETCD_BIN"
}

total=$(date +%s)
# (not `ok || build`: inside a || list, set -e would not stop a failing build step)
if ! etcd_ok; then build_etcd; fi
if ! k8s_ok; then build_kubernetes; fi
log "done in $(elapsed "$total"); binaries: $K8S_BIN $ETCD_BIN ($(du -sh "$CACHE_DIR/bin" | cut -f1) in $CACHE_DIR/bin)"
