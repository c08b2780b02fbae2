#!/usr/bin/env bash
# Installs the Debian packages a Parsec node and its tests need, only those that are missing:
# PostgreSQL (15 or later), Redis, Chromium (for the browser tests), Node.js and npm, and a C
# compiler with OpenSSL's headers (for settlement/protocol/_rfc9162_native.c).
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -f /usr/include/openssl/evp.h ] || missing+=(libssl-dev)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "[parsec] installing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "[parsec] missing packages (${missing[*]}) and no sudo: install them as root with apt-get" >&2
    exit 1
  fi
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The distribution's own PostgreSQL and Redis services are not ours: Parsec starts its own
# clusters under var/ on other ports, and the system ones would only hold ports and memory.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now postgresql redis-server >/dev/null 2>&1 || true
fi
