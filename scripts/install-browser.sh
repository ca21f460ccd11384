#!/usr/bin/env bash
# Installs the headless browser the screenshot test drives: Debian's chromium and
# chromium-driver packages (the driver always matches the browser, and nothing is
# downloaded at test time). Idempotent: does nothing when both are already installed.
#
#   scripts/install-browser.sh        install if missing, print the versions
#
# Needs root (or sudo) for apt-get on a Debian or Ubuntu host.
set -euo pipefail

say() { printf '%s\n' "install-browser: $*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if installed chromium && installed chromium-driver; then
  say "already installed: $(chromium --version 2>/dev/null || echo chromium), $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2)"
  exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: install Chromium and its chromedriver with your package manager"
sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "run as root (or install sudo): apt-get needs it"
  sudo=(sudo)
fi

say "installing chromium and chromium-driver from Debian's archive"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
say "installed: $(chromium --version), $(chromedriver --version | cut -d' ' -f1-2)"
