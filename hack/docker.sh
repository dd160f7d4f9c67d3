#!/usr/bin/env bash
# Ensures a container engine that can run privileged containers (kind nodes).
#
#   docker.sh    # idempotent; prints nothing but progress on stderr
#
# A Docker that already works (`docker info` and a privileged container) is
# left alone. Otherwise, on Debian as root: install docker.io from apt, start
# dockerd in the background (log: $DOCKERD_LOG), and, only when the host's
# capability bounding set lacks capabilities that --privileged asks for,
# register hack/airgap/runc-wrapper.sh as the default runtime.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/cnat-dockerd.log}
DOCKERD_PIDFILE=/run/cnat-dockerd.pid
RUNC_WRAPPER=/usr/local/libexec/cnat-runc
DAEMON_JSON=/etc/docker/daemon.json
ENGINE_PACKAGES=(docker.io)
TOOL_PACKAGES=(jq libcap2-bin) # jq edits OCI specs and daemon.json; capsh names capabilities

# can_install: says what is missing when this script cannot set Docker up.
can_install() {
  local why=()
  [ "$(id -u)" -eq 0 ] || why+=("not root")
  [ -f /etc/debian_version ] && command -v apt-get >/dev/null || why+=("not Debian (no apt-get)")
  [ ${#why[@]} -eq 0 ] && return 0
  die "Docker is not usable here and this script can only install it on Debian as root (${why[*]}).
  Provide a Docker engine yourself (docker info must work and privileged containers must run),
  or run this as root on Debian 12. Current error: $(docker info 2>&1 | tail -n 1)"
}

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

wait_for_dockerd() {
  for _ in $(seq 1 60); do
    docker_answers && return 0
    kill -0 "$(cat "$DOCKERD_PIDFILE" 2>/dev/null || echo 0)" 2>/dev/null || break
    sleep 1
  done
  tail -n 20 "$DOCKERD_LOG" >&2 || true
  die "dockerd did not answer (log: $DOCKERD_LOG)"
}

# start_dockerd: dockerd in the background, detached from this shell, so it
# outlives `make`. Its pid file marks it as ours (restart_dockerd needs that).
# The pid file is written here, from $!, not by dockerd: a pid file left by a
# dockerd that died with the machine would otherwise read as "dockerd exited"
# before the new one gets to overwrite it. ($! is dockerd itself: without job
# control a background job is not a group leader, so setsid does not fork,
# and the subshell execs it.) The subshell first closes every descriptor
# above 2: a daemon must not keep its caller's files open, such as the lock
# of a `flock ... make dev` (held then for as long as dockerd runs) or a pipe
# that a CI runner reads to its end.
start_dockerd() {
  log "starting dockerd (log: $DOCKERD_LOG)"
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null
  ) &
  echo $! >"$DOCKERD_PIDFILE"
  disown
  wait_for_dockerd
}

restart_dockerd() {
  local pid
  if pid=$(cat "$DOCKERD_PIDFILE" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
    start_dockerd
  elif systemctl is-active -q docker 2>/dev/null; then
    systemctl restart docker
    wait_for_dockerd
  else
    die "dockerd must be restarted to use $RUNC_WRAPPER, but it was not started by this script or systemd"
  fi
}

# missing_caps: the capabilities (capsh names, comma separated) that the kernel
# knows but the bounding set lacks; --privileged asks for all of them.
missing_caps() {
  local bnd last missing
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  last=$(cat /proc/sys/kernel/cap_last_cap)
  missing=$(( ((1 << (last + 1)) - 1) & ~0x$bnd ))
  [ "$missing" -ne 0 ] || return 0
  capsh --decode="$(printf '0x%x' "$missing")" | cut -d= -f2
}

# probe_privileged IMAGE: a privileged container from a locally built image.
probe_privileged() { timeout 60 docker run --rm --privileged "$1" true; }

install_runc_wrapper() {
  local caps=$1 json real tmp
  [ "$(id -u)" -eq 0 ] || die "privileged containers fail and fixing it (a runc wrapper) needs root"
  real=$(command -v runc) || die "runc not found"
  json=$(tr ',' '\n' <<<"$caps" | tr '[:lower:]' '[:upper:]' | jq -R . | jq -sc .)
  log "installing $RUNC_WRAPPER (removes $json from OCI specs) as Docker's default runtime"
  mkdir -p "$(dirname "$RUNC_WRAPPER")" /etc/docker
  sed -e "s|@REAL_RUNC@|$real|" -e "s|@MISSING_CAPS@|$json|" "$HACK_DIR/airgap/runc-wrapper.sh" >"$RUNC_WRAPPER.tmp"
  chmod 0755 "$RUNC_WRAPPER.tmp"
  mv "$RUNC_WRAPPER.tmp" "$RUNC_WRAPPER"
  tmp=$(mktemp)
  { [ -s "$DAEMON_JSON" ] && cat "$DAEMON_JSON" || echo '{}'; } |
    jq --arg p "$RUNC_WRAPPER" '.runtimes["cnat-runc"] = {path: $p} | .["default-runtime"] = "cnat-runc"' >"$tmp"
  if cmp -s "$tmp" "$DAEMON_JSON"; then
    rm -f "$tmp"
  else
    mv "$tmp" "$DAEMON_JSON"
    chmod 0644 "$DAEMON_JSON"
  fi
  restart_dockerd
}

ensure_engine() {
  if docker_answers; then
    log "docker answers: $(docker version -f 'server {{.Server.Version}}')"
    return 0
  fi
  can_install
  step "install ${ENGINE_PACKAGES[*]} ${TOOL_PACKAGES[*]}" need_tools "${ENGINE_PACKAGES[@]}" "${TOOL_PACKAGES[@]}"
  start_dockerd
}

ensure_privileged() {
  local caps image
  if ! command -v apt-get >/dev/null; then
    log "no apt-get to build a test image from: assuming this Docker runs privileged containers"
    return 0
  fi
  image=$("$HACK_DIR/airgap/images.sh" run-image) || die "could not build a local image to test with"
  if probe_privileged "$image" 2>/dev/null; then
    log "privileged containers work"
    return 0
  fi
  if ! command -v jq >/dev/null || ! command -v capsh >/dev/null; then
    can_install
    need_tools "${TOOL_PACKAGES[@]}"
  fi
  caps=$(missing_caps)
  [ -n "$caps" ] || { probe_privileged "$image" || true; die "privileged containers fail, and not for missing capabilities (see above)"; }
  log "privileged containers fail: the capability bounding set lacks ${caps}"
  install_runc_wrapper "$caps"
  probe_privileged "$image" || die "privileged containers still fail with $RUNC_WRAPPER"
}

step "container engine" ensure_engine
step "privileged containers" ensure_privileged
