#!/usr/bin/env bash
# Make sure the binaries the test suite starts are installed: PostgreSQL, Redis and
# Chromium. The tests run against real services (see DESIGN.md, "Testing"), started as
# throwaway processes by tests/harness.py, so only the packages are needed, not running
# system services. Quiet and fast when everything is already there.
set -euo pipefail

missing=()

# Debian's postgresql packages put the server outside PATH, one directory per version.
if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    missing+=(postgresql)
fi
if ! command -v redis-server >/dev/null 2>&1; then
    missing+=(redis-server)
fi
# The browser tests launch exactly this path (Playwright's own browser downloads are not used).
if [ ! -x /usr/bin/chromium ]; then
    missing+=(chromium)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "make test needs PostgreSQL, Redis and Chromium; install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "installing test dependencies: ${missing[*]}" >&2
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
