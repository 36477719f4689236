# Sourced by scripts/install-*: install Debian packages with apt-get, as root or through
# passwordless sudo, each step bounded in time. `apt_install NAME PACKAGE...` returns
# non-zero (having said why, on stderr) when it cannot.

UPDATE_TIMEOUT=${KENNEL_APT_UPDATE_TIMEOUT:-300}
INSTALL_TIMEOUT=${KENNEL_APT_INSTALL_TIMEOUT:-900}

apt_install() {
  local name=$1
  shift
  local as_root
  if [[ $EUID -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "$name: installing $* needs root or passwordless sudo:" \
      "run 'sudo apt-get install $*' yourself." >&2
    return 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: no apt-get to install $* with: install it yourself." >&2
    return 1
  fi
  echo "$name: installing $* with apt-get (up to $((UPDATE_TIMEOUT + INSTALL_TIMEOUT)) s)"
  local log
  log=$(mktemp)
  if ! timeout "$UPDATE_TIMEOUT" "${as_root[@]}" apt-get update -qq >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    echo "$name: apt-get update failed or took over ${UPDATE_TIMEOUT} s (output above)." >&2
    return 1
  fi
  if ! timeout "$INSTALL_TIMEOUT" "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    echo "$name: apt-get install $* failed or took over ${INSTALL_TIMEOUT} s (output above)." >&2
    return 1
  fi
  rm -f "$log"
}
