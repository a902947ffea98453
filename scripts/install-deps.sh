#!/usr/bin/env bash
# Installs RainStorm's dependencies on Debian 12 when run as root with apt; otherwise prints
# exactly what to install. Without arguments: what building and `make demo` need. With --tests:
# also what only the tests need (network namespaces and nftables for the partition tests, the
# Prometheus text parser, and Chromium for the console's browser test). As root it also creates
# the system user `rainstorm`, which stream operators run as under a root raind
# (daemon/stream/README.md "Operator sandbox"). Idempotent and quiet when all is present.
set -euo pipefail
user=rainstorm
if [ "$(id -u)" -eq 0 ] && ! getent passwd "$user" >/dev/null; then
  echo "install-deps: creating the system user $user (operators run as it under a root raind)"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
fi
pkgs=(g++ make meson ninja-build pkg-config libzmq3-dev cppzmq-dev libmsgpack-cxx-dev
      liblmdb-dev libcli11-dev libspdlog-dev libfmt-dev catch2 python3 python3-msgpack procps
      libcpp-httplib-dev nlohmann-json3-dev libsodium-dev)
case "${1:-}" in
  "") ;;
  --tests) pkgs+=(iproute2 nftables python3-prometheus-client chromium) ;;
  *) echo "usage: install-deps.sh [--tests]" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "install-deps: installing ${missing[*]}"
  start=$(date +%s)
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: installed in $(( $(date +%s) - start )) s"
else
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
