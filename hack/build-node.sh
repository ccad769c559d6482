#!/usr/bin/env bash
# Build (or reuse from the cache) the real node's components from the official sources, through the Go module proxy,
# at the versions pinned in hack/versions.env:
#   kubelet, kube-proxy, kube-scheduler   k8s.io/kubernetes (a wrapper module, as in build-control-plane.sh)
#   containerd, ctr, containerd-shim-runc-v2   github.com/containerd/containerd/v2
#   bridge, host-local, loopback          github.com/containernetworking/plugins
#   coredns                               github.com/coredns/coredns, and an image of it (FROM scratch)
#   the pause image                       k8s.io/kubernetes's build/pause/linux/pause.c, static, FROM scratch
# and installs from Debian what is missing: runc, buildah, nftables, iproute2, gcc/libc6-dev (for pause).
#
# Binaries land in ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/<component>-<version>-<goos>-<goarch>/, the two images as
# docker archives in .../images/ (imported into the node's containerd when a cluster starts). Each is rebuilt only
# when its .complete stamp is missing; concurrent runs wait on a lock file.
set -Eeuo pipefail
trap 'trap - ERR; echo "build-node: error: a command failed at line $LINENO (see above)" >&2' ERR
PROG=build-node
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"
# shellcheck source=lib.sh
source "$HACK_DIR/lib.sh"

command -v go >/dev/null 2>&1 || die "go is not on PATH; install Go >= 1.26"
[[ "$KUBERNETES_VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "KUBERNETES_VERSION '$KUBERNETES_VERSION' is not vMAJOR.MINOR.PATCH"
K8S_MINOR="${BASH_REMATCH[1]}"
STAGING_VERSION="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
for v in CONTAINERD_VERSION CNI_PLUGINS_VERSION COREDNS_VERSION; do
  [[ "${!v}" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "$v '${!v}' in hack/versions.env is not vMAJOR.MINOR.PATCH"
done

need_debs runc buildah nftables iproute2 util-linux gcc libc6-dev

GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"
CACHE_DIR="${AIGATE_CACHE_DIR:-$HOME/.cache/aigate}"
KNODE_BIN="$CACHE_DIR/bin/kubernetes-node-${KUBERNETES_VERSION}-${GOOS}-${GOARCH}"
CONTAINERD_BIN="$CACHE_DIR/bin/containerd-${CONTAINERD_VERSION}-${GOOS}-${GOARCH}"
CNI_BIN="$CACHE_DIR/bin/cni-plugins-${CNI_PLUGINS_VERSION}-${GOOS}-${GOARCH}"
COREDNS_BIN="$CACHE_DIR/bin/coredns-${COREDNS_VERSION}-${GOOS}-${GOARCH}"
PAUSE_DIR="$CACHE_DIR/images/pause-${KUBERNETES_VERSION}-${GOOS}-${GOARCH}"
COREDNS_IMAGE_DIR="$CACHE_DIR/images/coredns-${COREDNS_VERSION}-${GOOS}-${GOARCH}"
buildah_cmd

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-trimpath -buildvcs=false"

done_in() { [[ -f "$1/.complete" ]]; }
all_done() {
  done_in "$KNODE_BIN" && done_in "$CONTAINERD_BIN" && done_in "$CNI_BIN" && done_in "$COREDNS_BIN" &&
    done_in "$PAUSE_DIR" && done_in "$COREDNS_IMAGE_DIR"
}
if all_done; then
  log "cached: $KNODE_BIN $CONTAINERD_BIN $CNI_BIN $COREDNS_BIN $PAUSE_DIR $COREDNS_IMAGE_DIR"
  exit 0
fi

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.build-node.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_DIR/.build-node.lock; waiting for it"
  flock 9
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/aigate-build-node.XXXXXX")"
BUILDAH_LOCKED=0
cleanup() {
  if ((BUILDAH_LOCKED)); then buildah_cleanup; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Move a finished build dir OUT into place as DEST with a .complete stamp saying WHAT.
install_dir() {
  local out="$1" dest="$2" what="$3"
  rm -rf "$dest.tmp" && mkdir -p "$(dirname "$dest")" && mv "$out" "$dest.tmp"
  echo "$what" >"$dest.tmp/.complete"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

# A wrapper module in DIR requiring MODULE@VERSION: `wrapper DIR MODULE VERSION [PACKAGE...]` (go get of the
# packages, not only the module, records every go.sum entry their build needs).
wrapper() {
  local dir="$1" module="$2" version="$3"
  shift 3
  mkdir -p "$dir/out"
  printf 'module aigate.local/build/%s\n\ngo 1.26\n\nrequire %s %s\n' "$(basename "$dir")" "$module" "$version" >"$dir/go.mod"
  (cd "$dir" && go get "${@/%/@$version}") || die "go get of $module@$version failed (module proxy refused?)"
}

build_kubernetes_node() {
  local start pkgs=(kubelet kube-proxy kube-scheduler) dir="$WORK/kubernetes-node" json mod staging date ldflags v
  start=$(date +%s)
  log "building ${pkgs[*]} ${KUBERNETES_VERSION} (reuses the control plane's Go build cache when warm)"
  mkdir -p "$dir/out"
  json="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}")" ||
    die "the module proxy refused k8s.io/kubernetes@${KUBERNETES_VERSION}"
  mod="$(sed -n 's/^\t"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
  staging="$(sed -n 's#^\t\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*#\1#p' "$mod")"
  [[ -n "$staging" ]] || die "found no staging replace lines in $mod"
  {
    printf 'module aigate.local/build/kubernetes\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' \
      "$(sed -n 's/^go \(.*\)$/\1/p' "$mod")" "$KUBERNETES_VERSION"
    while read -r m; do echo "	$m => $m ${STAGING_VERSION}"; done <<<"$staging"
    echo ")"
  } >"$dir/go.mod"
  (cd "$dir" && go get "${pkgs[@]/#/k8s.io/kubernetes/cmd/}@${KUBERNETES_VERSION}") ||
    die "go get of k8s.io/kubernetes ${KUBERNETES_VERSION} failed"
  date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(dirname "$mod")/${KUBERNETES_VERSION}.info")"
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=${KUBERNETES_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${K8S_MINOR}"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=${date:-1970-01-01T00:00:00Z}"
  done
  (cd "$dir" && with_progress "compiling ${pkgs[*]}" go build -ldflags="$ldflags" -o "$dir/out/" "${pkgs[@]/#/k8s.io/kubernetes/cmd/}") ||
    die "go build of ${pkgs[*]} ${KUBERNETES_VERSION} failed"
  v="$("$dir/out/kubelet" --version)" || die "the built kubelet does not run"
  [[ "$v" == "Kubernetes ${KUBERNETES_VERSION}" ]] || die "built kubelet reports '$v', expected 'Kubernetes ${KUBERNETES_VERSION}'"
  install_dir "$dir/out" "$KNODE_BIN" "$v built with $(go env GOVERSION) in $(elapsed "$start")"
  log "${pkgs[*]} built in $(elapsed "$start"): $KNODE_BIN"
}

build_containerd() {
  local start dir="$WORK/containerd" m=github.com/containerd/containerd/v2 v
  start=$(date +%s)
  log "building containerd ${CONTAINERD_VERSION}"
  wrapper "$dir" "$m" "$CONTAINERD_VERSION" "$m/cmd/containerd" "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2"
  (cd "$dir" && with_progress "compiling containerd" go build -tags "no_btrfs no_devmapper no_zfs no_aufs no_dynamic_plugins" \
    -ldflags="-s -w -X $m/version.Version=${CONTAINERD_VERSION} -X $m/version.Revision=module-proxy" \
    -o "$dir/out/" "$m/cmd/containerd" "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2") || die "go build of containerd failed"
  v="$("$dir/out/containerd" --version)" || die "the built containerd does not run"
  [[ "$v" == *" ${CONTAINERD_VERSION} "* ]] || die "built containerd reports '$v', expected ${CONTAINERD_VERSION}"
  install_dir "$dir/out" "$CONTAINERD_BIN" "$v built with $(go env GOVERSION) in $(elapsed "$start")"
  log "containerd built in $(elapsed "$start"): $CONTAINERD_BIN"
}

build_cni() {
  local start dir="$WORK/cni" m=github.com/containernetworking/plugins p
  start=$(date +%s)
  log "building CNI plugins ${CNI_PLUGINS_VERSION} (bridge, host-local, loopback)"
  wrapper "$dir" "$m" "$CNI_PLUGINS_VERSION" "$m/plugins/main/bridge" "$m/plugins/main/loopback" "$m/plugins/ipam/host-local"
  (cd "$dir" && go build -ldflags="-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=${CNI_PLUGINS_VERSION}" \
    -o "$dir/out/" "$m/plugins/main/bridge" "$m/plugins/main/loopback" "$m/plugins/ipam/host-local") || die "go build of the CNI plugins failed"
  for p in bridge loopback host-local; do [[ -x "$dir/out/$p" ]] || die "CNI plugin $p was not built"; done
  install_dir "$dir/out" "$CNI_BIN" "CNI plugins ${CNI_PLUGINS_VERSION} built in $(elapsed "$start")"
  log "CNI plugins built in $(elapsed "$start"): $CNI_BIN"
}

build_coredns() {
  local start dir="$WORK/coredns" m=github.com/coredns/coredns v
  start=$(date +%s)
  log "building CoreDNS ${COREDNS_VERSION} (about 2 minutes cold)"
  wrapper "$dir" "$m" "$COREDNS_VERSION" "$m"
  (cd "$dir" && with_progress "compiling coredns" go build -ldflags="-s -w" -o "$dir/out/coredns" "$m") || die "go build of CoreDNS failed"
  v="$("$dir/out/coredns" -version)" || die "the built coredns does not run"
  [[ "$v" == *"CoreDNS-${COREDNS_VERSION#v}"* ]] || die "built coredns reports '$v', expected CoreDNS-${COREDNS_VERSION#v}"
  install_dir "$dir/out" "$COREDNS_BIN" "${v%%$'\n'*} built with $(go env GOVERSION) in $(elapsed "$start")"
  log "CoreDNS built in $(elapsed "$start"): $COREDNS_BIN"
}

# An image FROM scratch holding one static binary: `scratch_image NAME REF BINARY ENTRYPOINT_JSON USER OUT_DIR`.
# Written as a docker archive (what `ctr images import` reads) with a .ref file naming it.
scratch_image() {
  local name="$1" ref="$2" bin="$3" entry="$4" user="$5" out="$6" ctr
  if ((!BUILDAH_LOCKED)); then buildah_lock; BUILDAH_LOCKED=1; fi
  mkdir -p "$WORK/$name.out"
  ctr="$("${BUILDAH[@]}" from --name "aigate-build-$name-$$" scratch)"
  "${BUILDAH[@]}" copy "$ctr" "$bin" "/$(basename "$bin")" >/dev/null
  "${BUILDAH[@]}" config --entrypoint "$entry" --user "$user" --os linux --arch "$GOARCH" "$ctr"
  "${BUILDAH[@]}" commit --quiet --rm "$ctr" "$ref" >/dev/null
  rm -f "$WORK/$name.out/image.tar"
  "${BUILDAH[@]}" push --quiet "$ref" "docker-archive:$WORK/$name.out/image.tar:$ref"
  echo "$ref" >"$WORK/$name.out/ref"
  install_dir "$WORK/$name.out" "$out" "$ref built $(date -u +%FT%TZ)"
}

build_pause() {
  local start src tag
  start=$(date +%s)
  src="$(go env GOMODCACHE)/k8s.io/kubernetes@${KUBERNETES_VERSION}/build/pause"
  if [[ ! -f "$src/linux/pause.c" ]]; then
    (cd "$WORK" && GOFLAGS=-mod=mod go mod download "k8s.io/kubernetes@${KUBERNETES_VERSION}") || die "cannot download k8s.io/kubernetes@${KUBERNETES_VERSION}"
  fi
  [[ -f "$src/linux/pause.c" ]] || die "no build/pause/linux/pause.c in k8s.io/kubernetes@${KUBERNETES_VERSION}"
  tag="$(sed -n 's/^TAG ?= *//p' "$src/Makefile")"
  [[ -n "$tag" ]] || die "no TAG in $src/Makefile"
  log "building the pause image ${tag} from k8s.io/kubernetes@${KUBERNETES_VERSION}'s build/pause/linux/pause.c"
  # the flags of build/pause/Makefile
  gcc -Os -Wall -Werror -static -DVERSION="v${tag}-0" -o "$WORK/pause" "$src/linux/pause.c" || die "gcc could not build pause.c"
  "$WORK/pause" -v | grep -q "v${tag}" || die "the built pause does not report v${tag}"
  scratch_image pause "aigate.local/pause:${tag}" "$WORK/pause" '["/pause"]' 65535:65535 "$PAUSE_DIR"
  log "pause image built in $(elapsed "$start"): $PAUSE_DIR"
}

build_coredns_image() {
  local start
  start=$(date +%s)
  scratch_image coredns "aigate.local/coredns:${COREDNS_VERSION}" "$COREDNS_BIN/coredns" '["/coredns"]' 65532:65532 "$COREDNS_IMAGE_DIR"
  log "CoreDNS image built in $(elapsed "$start"): $COREDNS_IMAGE_DIR"
}

total=$(date +%s)
if ! done_in "$CNI_BIN"; then build_cni; fi
if ! done_in "$CONTAINERD_BIN"; then build_containerd; fi
if ! done_in "$PAUSE_DIR"; then build_pause; fi
if ! done_in "$COREDNS_BIN"; then build_coredns; fi
if ! done_in "$COREDNS_IMAGE_DIR"; then build_coredns_image; fi
if ! done_in "$KNODE_BIN"; then build_kubernetes_node; fi
log "done in $(elapsed "$total"); $(du -shc "$KNODE_BIN" "$CONTAINERD_BIN" "$CNI_BIN" "$COREDNS_BIN" "$PAUSE_DIR" "$COREDNS_IMAGE_DIR" | tail -1 | cut -f1) in $CACHE_DIR"
