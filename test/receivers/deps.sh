#!/usr/bin/env bash
# Install what the test receivers need (Debian packages only), if missing:
#   curl, openssl, python3-aiosmtpd (for /usr/bin/python3), prometheus-alertmanager.
# Idempotent; runs apt-get update only when an install fails without it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

need=()
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "deps.sh: missing ${need[*]} and not root" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${need[@]}" >&2; }
fi
"$here/alertmanager.sh" install
