#!/usr/bin/env bash
# Installs the Debian packages SkyVault needs, only those not yet installed.
# Runs `apt-get update` once, and only when something is missing.
set -euo pipefail
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages: ${missing[*]}; run 'make setup' as root or install them." >&2
    exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's packages start their default services; SkyVault runs its own PostgreSQL cluster
# and uses nginx only to check its site file, so both are stopped.
if command -v nginx >/dev/null; then nginx -s stop 2>/dev/null || true; fi
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q '^15 *main'; then
    pg_ctlcluster 15 main stop 2>/dev/null || true
fi
