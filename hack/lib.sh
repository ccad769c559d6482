# Shared by hack/build-*.sh: logging, failing with one message, progress lines for long compiles, Debian packages.
# The sourcing script sets PROG (its name in messages).

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
