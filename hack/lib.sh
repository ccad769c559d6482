# Shared by hack/build-*.sh: logging, failing with one message, progress lines for long compiles, Debian packages,
# buildah's storage, and Go tools built once into the cache. The sourcing script sets PROG (its name in messages).

# Where everything built lands, outside the repo.
CACHE_DIR="${AIGATE_CACHE_DIR:-$HOME/.cache/aigate}"

die() { echo "${PROG:-hack}: error: $*" >&2; exit 1; }
log() { echo "${PROG:-hack}: [$(date +%H:%M:%S)] $*" >&2; }
elapsed() { echo "$(($(date +%s) - $1))s"; }

# Run a command, logging a line every minute while it runs (a cold compile is silent for minutes).
with_progress() {
  local what="$1" start pid last=0 now
  shift
  start=$(date +%s)
  "$@" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    now=$(($(date +%s) - start))
    if ((now - last >= 60)); then
      log "$what: still running (${now}s)"
      last=$now
    fi
  done
  wait "$pid"
}

# Install the Debian packages among "$@" that are missing (apt-get update once, only when something is missing).
need_debs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get to install them"
  [[ $(id -u) == 0 ]] || die "missing Debian packages ${missing[*]}: run as root or apt-get install them"
  log "installing Debian packages: ${missing[*]}"
  # apt's own lock serialises concurrent installs; wait for it rather than fail
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
}

# buildah's storage lives in the cache (shared by build-node.sh and build-image.sh, which take turns on a lock):
# after a build nothing of it stays mounted, and the blob-info cache buildah keeps in /var/lib/containers goes
# and the CNI config dir buildah makes go unless they were there before.
buildah_cmd() {
  # its run-time state (locks, mount counts) belongs to one storage root: one runroot per cache dir
  BUILDAH_RUNROOT="/run/aigate-buildah/$(echo "$CACHE_DIR" | md5sum | cut -c1-12)"
  BUILDAH=(buildah --root "$CACHE_DIR/buildah/storage" --runroot "$BUILDAH_RUNROOT" --storage-driver overlay)
}
buildah_lock() {
  exec 8>"$CACHE_DIR/.buildah.lock"
  if ! flock -n 8; then
    log "another build uses buildah's storage ($CACHE_DIR/.buildah.lock); waiting for it"
    flock 8
  fi
  [[ -e /var/lib/containers ]] && BUILDAH_HAD_VAR_LIB=1 || BUILDAH_HAD_VAR_LIB=0
  [[ -e /etc/cni ]] && BUILDAH_HAD_ETC_CNI=1 || BUILDAH_HAD_ETC_CNI=0
}
buildah_cleanup() {
  local m
  "${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true
  "${BUILDAH[@]}" umount --all >/dev/null 2>&1 || true
  # the overlay driver's own mounts (merged layers, and its private bind of the overlay dir), deepest first
  for m in $(awk -v p="$CACHE_DIR/buildah/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount --lazy "$m" 2>/dev/null || true
  done
  rm -rf "$BUILDAH_RUNROOT"
  rmdir /run/aigate-buildah 2>/dev/null || true
  if [[ "${BUILDAH_HAD_VAR_LIB:-1}" == 0 ]]; then rm -rf /var/lib/containers; fi
  # buildah makes an empty CNI config dir for networks it never sets up here (RUN steps use the host network)
  if [[ "${BUILDAH_HAD_ETC_CNI:-1}" == 0 ]]; then
    rm -f /etc/cni/net.d/cni.lock && rmdir /etc/cni/net.d /etc/cni 2>/dev/null || true
  fi
}

# Go tools built once into a cache directory keyed by what they are built from (build-cosign.sh, build-helm.sh,
# build-promtool.sh: `go install` of a pinned release; build-argocd-lua.sh, build-floor-webhook.sh: `go build` of a
# source tree in hack/). Static and reproducible (CGO off, -trimpath, no VCS stamp, stripped), with the local Go
# toolchain only. Go's module and build caches stay at their defaults so they are reused.

need_go() { command -v go >/dev/null 2>&1 || die "go is not on PATH${1:+; $1}"; }

# The platform part of a tool's cache key: GOOS-GOARCH.
go_platform() { echo "$(GOTOOLCHAIN=local go env GOOS)-$(GOTOOLCHAIN=local go env GOARCH)"; }

# go_install DIR PACKAGE@VERSION [LDFLAGS]: the tool into DIR, run outside any module so that `go install` uses the
# tool's own go.mod, nothing of ours.
go_install() {
  (cd "$1" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOBIN="$1" \
    go install -ldflags="-s -w${3:+ $3}" "$2") || die "go install of $2 failed (see go's error above)"
}

# go_build SRC OUT GOFLAGS [VAR=VALUE...]: the main package in SRC (a directory of hack/) as the binary OUT.
go_build() {
  (cd "$1" && env GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false $3" "${@:4}" \
    go build -ldflags="-s -w" -o "$2" .) || die "go build of $1 failed (see go's error above)"
}

# cached_build NAME OUT ABOUT BUILD: the binary OUT/NAME, built by the function BUILD into the directory it is given
# (a fresh OUT.tmp; BUILD also checks what it built) unless OUT/.complete says it is there. ABOUT says what is built
# from what ("cosign v3.1.3"), for the log and .complete. Concurrent runs serialise on $CACHE_DIR/.$PROG.lock.
# Prints OUT/NAME on the last line of stdout.
cached_build() {
  local name="$1" out="$2" about="$3" build="$4" start
  command -v flock >/dev/null 2>&1 || die "flock is not on PATH (package util-linux)"
  if [[ -x "$out/$name" && -f "$out/.complete" ]]; then
    log "cached: $about ($(cat "$out/.complete"))"
    echo "$out/$name"
    return 0
  fi
  mkdir -p "$CACHE_DIR/bin"
  exec 9>"$CACHE_DIR/.$PROG.lock"
  if ! flock -n 9; then
    log "another build holds $CACHE_DIR/.$PROG.lock; waiting for it"
    flock 9
  fi
  if [[ -x "$out/$name" && -f "$out/.complete" ]]; then
    log "built meanwhile by another run: $out/$name"
    echo "$out/$name"
    return 0
  fi
  start=$(date +%s)
  log "building $about with $(GOTOOLCHAIN=local go env GOVERSION)"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  "$build" "$out.tmp"
  [[ -x "$out.tmp/$name" ]] || die "the build succeeded but produced no $out.tmp/$name"
  echo "$about built with $(GOTOOLCHAIN=local go env GOVERSION) in $(elapsed "$start")" >"$out.tmp/.complete"
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "$about built in $(elapsed "$start"): $out/$name"
  echo "$out/$name"
}

# cached_go_install NAME PACKAGE PIN MAJOR REPORTED [LDFLAGS]: NAME `go install`ed from PACKAGE at the release in the
# variable PIN (which must be MAJOR.MINOR.PATCH) into $CACHE_DIR/bin/NAME-<release>-GOOS-GOARCH. REPORTED, a function
# given the built binary's path, prints the release it reports, which must be the pin; with REPORTED empty the binary
# must merely run.
cached_go_install() {
  local release="${!3}"
  [[ "$release" =~ ^$4\.[0-9]+\.[0-9]+$ ]] || die "$3 '$release' is not $4.MINOR.PATCH"
  GO_TOOL=("$1" "$2@$release" "$release" "$5" "${6:-}")
  cached_build "$1" "$CACHE_DIR/bin/$1-$release-$(go_platform)" "$1 $release" _go_install_checked
}
_go_install_checked() {
  local name="${GO_TOOL[0]}" package="${GO_TOOL[1]}" release="${GO_TOOL[2]}" reported="${GO_TOOL[3]}" v
  log "a cold build takes a few minutes on 2 cores"
  go_install "$1" "$package" "${GO_TOOL[4]}"
  if [[ -z "$reported" ]]; then
    "$1/$name" --help >/dev/null 2>&1 || die "built $name does not run"
    return 0
  fi
  v="$("$reported" "$1/$name")"
  [[ "$v" == "$release" ]] || die "built $name reports version '$v', expected '$release'"
}
