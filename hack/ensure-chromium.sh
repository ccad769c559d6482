#!/usr/bin/env bash
# Debian's Chromium for the HTML report's browser test (tests/test_report_browser.py) and `make screenshots`:
# nothing when it is on PATH, else apt-get install (as root). No browser is downloaded from anywhere but apt.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "ensure-chromium: $(chromium --version 2>/dev/null | head -1)"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: error: chromium is not installed and this is not root on Debian; install it with your package manager (Debian: apt-get install chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)
if ! apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y --no-install-recommends chromium >/dev/null
fi
echo "ensure-chromium: installed $(chromium --version 2>/dev/null | head -1) in $(( $(date +%s) - start )) s"
