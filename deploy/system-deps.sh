#!/usr/bin/env bash
# Checks the programs stream-detector needs outside Python and installs the missing ones with
# apt-get when that is possible (root, or passwordless sudo); otherwise says what to install.
#   java 17+  -> runs the local Kafka broker      (openjdk-17-jre-headless)
#   mvn       -> fetches the Kafka jars, once     (maven)
#   redis-server -> the local Redis               (redis-server)
#   chromium  -> the explorer's browser tests     (chromium)
#   promtool  -> checks deploy/prometheus rules   (prometheus)
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    SUDO="none"
  fi
  if [ "$SUDO" != "none" ]; then
    echo "installing system packages: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    exit 0
  fi
fi

echo "error: missing system packages: ${missing[*]}" >&2
echo "install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}) and run again" >&2
exit 1
