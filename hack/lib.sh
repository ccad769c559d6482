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
