# Shared by scripts/demo and scripts/test: install what is missing, then
# configure and build. Source it; do not run it.
set -euo pipefail

SHMBUS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHMBUS_PACKAGES=(g++ cmake make libmsgsl-dev libspdlog-dev doctest-dev)

shmbus_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs the Debian packages the build needs, or says exactly how.
shmbus_ensure_packages() {
  local missing=() p
  for p in "${SHMBUS_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    shmbus_log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "shmbus: missing packages: ${missing[*]}" >&2
    echo "run:    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
}

# shmbus_configure BUILD_DIR [cmake args...]
shmbus_configure() {
  local dir="$1"; shift
  shmbus_log "configuring $dir"
  cmake -S "$SHMBUS_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_WERROR=ON "$@" >/dev/null
}

# shmbus_build BUILD_DIR [cmake args...]: configure, then build everything.
shmbus_build() {
  local dir="$1"
  shmbus_configure "$@"
  shmbus_log "building $dir"
  cmake --build "$dir" -j "$(nproc)"
}

# The Windows cross build (mingw-w64, posix threads) and wine to run it.
SHMBUS_WINDOWS_PACKAGES=(g++-mingw-w64-x86-64-posix wine wine64 libfmt-dev)

# A wine prefix of our own, and a persistent wineserver: without it every
# test process pays ~3 s of wine start-up.
shmbus_wine_setup() {
  export WINEPREFIX="${WINEPREFIX:-$HOME/.wine-shmbus}" WINEDEBUG=-all
  unset DISPLAY
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    shmbus_log "creating wine prefix $WINEPREFIX"
    mkdir -p "$WINEPREFIX"
    wineboot -i >/dev/null 2>&1 || true
  fi
  wineserver -p >/dev/null 2>&1 &
  # An unhandled fault must end the process (as it does for a Windows
  # service), not start winedbg, which waits for ever without a display.
  wine reg add 'HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug' /v Debugger /t REG_SZ /d '' /f \
    >/dev/null 2>&1 || true
}

# shmbus_build_targets BUILD_DIR TARGET...: build only those (configured already).
shmbus_build_targets() {
  local dir="$1"; shift
  shmbus_log "building $* in $dir"
  cmake --build "$dir" -j "$(nproc)" --target "$@"
}
