# Shared by scripts/serve and scripts/test: a pinned toolchain and the locked dependencies.
# Needs only python3 (3.11+) on the machine; everything else is installed here.
set -euo pipefail

UV_VERSION="0.13.9"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python_ok() {
    python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

ensure_python_environment() {
    if ! python_ok; then
        echo "python3 3.11 or newer is required" >&2
        exit 1
    fi
    if [ ! -x .tools/bin/uv ] || [ "$(.tools/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
        python3 -m venv .tools
        .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
    fi
    # The lock file pins every package; --frozen refuses to run with a stale lock.
    UV_PROJECT_ENVIRONMENT=.venv .tools/bin/uv sync --frozen --quiet "$@"
}

apt_install() {
    # Installs Debian packages when missing; needs root (CI and the development machines are).
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing system packages ($*): install them with apt-get, as root" >&2
        return 1
    fi
    if [ -z "${_APT_UPDATED:-}" ]; then
        apt-get update -qq
        _APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
