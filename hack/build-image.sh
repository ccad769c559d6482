#!/usr/bin/env bash
# `make image`: build aigate's image from the repository's Dockerfile with buildah (no Docker engine, no registry)
# and, when a cluster with a real node runs, import it into the node's containerd.
#
#   1. the base: a Debian bookworm root made by mmdebstrap (minbase + python3, python3-venv, ca-certificates),
#      committed as localhost/aigate-base:bookworm-<ISO week> (rebuilt once a week, about 20 s)
#   2. `buildah bud --layers --isolation chroot --build-arg PYTHON_BASE=<that base>`: the dependency layer is reused
#      while requirements.lock and the base are unchanged; the package layer is rebuilt from the working tree
#   3. the image as a docker archive in ${AIGATE_CACHE_DIR:-~/.cache/aigate}/images/aigate-dev-<checkout>/ (a
#      cluster started from this checkout imports it on start), then into the running node's containerd (k8s.io
#      namespace) if that cluster was started from this checkout
#
# Builds reach PyPI through this machine's TLS-intercepting proxy: the system CA bundle and pip's system config are
# mounted read-only into the build's RUN steps (--volume), never copied into an image.
set -Eeuo pipefail
trap 'trap - ERR; echo "build-image: error: a command failed at line $LINENO (see above)" >&2' ERR
PROG=build-image
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HACK_DIR/.." && pwd -P)"
# shellcheck source=lib.sh
source "$HACK_DIR/lib.sh"

IMAGE="${AIGATE_IMAGE:-aigate:dev}"
CACHE_DIR="${AIGATE_CACHE_DIR:-$HOME/.cache/aigate}"
# one archive per checkout: its working tree's code (localcluster.versions.aigate_image_archive says the same)
OUT="$CACHE_DIR/images/aigate-dev-$(echo "$ROOT" | md5sum | cut -c1-12)"
SUITE=bookworm
WEEK="$(date -u +%G-w%V)"
BASE="localhost/aigate-base:${SUITE}-${WEEK}"
buildah_cmd

need_debs buildah mmdebstrap
mkdir -p "$CACHE_DIR/images"
exec 9>"$CACHE_DIR/.build-image.lock"
if ! flock -n 9; then
  log "another image build holds $CACHE_DIR/.build-image.lock; waiting for it"
  flock 9
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/aigate-build-image.XXXXXX")"
buildah_lock
cleanup() {
  buildah_cleanup
  rm -rf "$WORK"
}
trap cleanup EXIT
export TMPDIR="$WORK" # buildah's big temporary files (not /var/tmp)
total=$(date +%s)

if ! "${BUILDAH[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  start=$(date +%s)
  log "making the Debian ${SUITE} base with mmdebstrap (python3, python3-venv, ca-certificates)"
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "$SUITE" "$WORK/base.tar" >&2 || die "mmdebstrap could not make the ${SUITE} base"
  ctr="$("${BUILDAH[@]}" from --name "aigate-base-$$" scratch)"
  "${BUILDAH[@]}" add "$ctr" "$WORK/base.tar" / >/dev/null
  "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd /bin/sh --os linux --arch "$(go env GOARCH 2>/dev/null || echo amd64)" "$ctr"
  "${BUILDAH[@]}" commit --quiet --rm "$ctr" "$BASE" >/dev/null
  # older weeks' bases go
  for old in $("${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}}' | grep '^localhost/aigate-base:' | grep -vx "$BASE" || true); do
    "${BUILDAH[@]}" rmi "$old" >/dev/null 2>&1 || true
  done
  # and the layer cache of builds on them (untagged images; pruned only here: they are what makes a rebuild fast)
  "${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true
  log "base $BASE made in $(elapsed "$start")"
else
  log "base $BASE cached"
fi

start=$(date +%s)
volumes=()
for f in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf; do
  [[ -f "$f" ]] && volumes+=(--volume "$f:$f:ro")
done
log "building $IMAGE from $ROOT/Dockerfile"
"${BUILDAH[@]}" bud --quiet --layers --isolation chroot --build-arg "PYTHON_BASE=$BASE" "${volumes[@]}" \
  --tag "$IMAGE" --file "$ROOT/Dockerfile" "$ROOT" >&2 || die "buildah bud failed"
smoke="$("${BUILDAH[@]}" from --pull-never "$IMAGE")"
"${BUILDAH[@]}" run --isolation chroot --user 65532:65532 "$smoke" -- aigate --version >&2 ||
  die "the built image does not run aigate --version"
# the operator's kopf names itself with getpass.getuser(): uid 65532 needs a passwd entry
"${BUILDAH[@]}" run --isolation chroot --user 65532:65532 "$smoke" -- python3 -c 'import os, pwd; pwd.getpwuid(os.getuid())' ||
  die "uid 65532 has no passwd entry in the built image"
"${BUILDAH[@]}" rm "$smoke" >/dev/null
log "built $IMAGE in $(elapsed "$start")"
mkdir -p "$WORK/out"
"${BUILDAH[@]}" push --quiet "$IMAGE" "docker-archive:$WORK/out/image.tar:$IMAGE"
echo "$IMAGE" >"$WORK/out/ref"
"${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$IMAGE" >"$WORK/out/id"
date -u +%FT%TZ >"$WORK/out/.complete"
rm -rf "$OUT.tmp" && mv "$WORK/out" "$OUT.tmp" && rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "image archive $OUT/image.tar ($(du -h "$OUT/image.tar" | cut -f1)); total $(elapsed "$total")"
"$HACK_DIR/control-plane" import-image
