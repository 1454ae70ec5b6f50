#!/usr/bin/env bash
# The test bed: a Docker engine, an apt cache and a Debian 12 systemd image, all started by us and
# stopped by pid file (this machine has no systemd). Used by `make lab` and `make molecule`.
#
#   scripts/testbed.sh deps   install the Debian packages the test bed needs (root, apt)
#   scripts/testbed.sh up     start dockerd + apt-cacher-ng, build the image if missing
#   scripts/testbed.sh env    print the exports that point tools at the test bed
#   scripts/testbed.sh status exit 0 when the test bed is up
#   scripts/testbed.sh down   stop what `up` started (containers of the lab are removed by lab.sh)
#   scripts/testbed.sh clean  down, then delete the state directory (image, cache, docker data)
set -euo pipefail

TB=${LLMFLEET_TESTBED:-/var/tmp/llmfleet-testbed}
SOCK="$TB/docker/docker.sock"
IMAGE=${LLMFLEET_IMAGE:-llmfleet/bookworm-systemd:5}
MIRROR=${LLMFLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ACNG_PORT=3142
# Packages baked into the instance image: systemd as PID 1, what Ansible needs on a target
# (python3, python3-apt for the apt module), sshd for the lab, and the tools tests look with.
INCLUDE=systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,iptables,procps,sudo,openssh-server,ca-certificates

export DOCKER_HOST="unix://$SOCK"

log() { printf '[testbed] %s\n' "$*" >&2; }

deps() {
  # dpkg-dev and gnupg build and sign the TEST FIXTURE apt repository (tests/fixtures).
  local want=(docker.io mmdebstrap apt-cacher-ng openssh-client make git shellcheck dpkg-dev gnupg) missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  # policy-rc.d keeps the packages' init scripts from starting daemons we start ourselves.
  local prc=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' >"$prc"; chmod 0755 "$prc"; created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created" = 1 ] && rm -f "$prc"
  return 0
}

docker_ok() { docker info >/dev/null 2>&1; }

start_dockerd() {
  docker_ok && return 0
  mkdir -p "$TB/docker"
  log "starting dockerd (data in $TB/docker)"
  # --iptables=false --ip-forward=false: dockerd leaves the host's firewall and forwarding alone,
  # and instances have no route out: every download goes through the apt cache (the proxy path
  # users configure with llmfleet_proxy_env), and no test traffic can leave this machine.
  setsid dockerd --data-root "$TB/docker/data" --exec-root "$TB/docker/exec" \
    --iptables=false --ip-forward=false \
    --pidfile "$TB/docker/dockerd.pid" -H "$DOCKER_HOST" \
    >"$TB/docker/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 150); do docker_ok && return 0; sleep 0.2; done
  log "dockerd did not start; see $TB/docker/dockerd.log"; tail -20 "$TB/docker/dockerd.log" >&2; return 1
}

bridge_ip() { ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1; }

acng_ok() { [ -s "$TB/acng/acng.pid" ] && kill -0 "$(cat "$TB/acng/acng.pid")" 2>/dev/null; }

start_acng() {
  acng_ok && return 0
  mkdir -p "$TB/acng/cache" "$TB/acng/log" "$TB/acng/conf"
  local bind; bind=$(bridge_ip)
  # Our own config: no Remap lines, so requests go to the host the client named (the packaged
  # config remaps Debian to backends that are not reachable from here).
  cat >"$TB/acng/conf/acng.conf" <<EOF
CacheDir: $TB/acng/cache
LogDir: $TB/acng/log
SupportDir: /usr/lib/apt-cacher-ng
Port: $ACNG_PORT
BindAddress: 127.0.0.1 $bind
SocketPath: $TB/acng/acng.sock
ExThreshold: 365
EOF
  log "starting apt-cacher-ng on 127.0.0.1 and $bind:$ACNG_PORT (cache in $TB/acng/cache)"
  setsid apt-cacher-ng -c "$TB/acng/conf" ForeGround=1 </dev/null >"$TB/acng/log/stdout.log" 2>&1 &
  echo $! >"$TB/acng/acng.pid"
  for _ in $(seq 1 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$ACNG_PORT") 2>/dev/null && return 0; sleep 0.1
  done
  log "apt-cacher-ng did not start; see $TB/acng/log"; return 1
}

build_image() {
  docker image inspect "$IMAGE" >/dev/null 2>&1 && return 0
  mkdir -p "$TB/tmp"
  log "building $IMAGE with mmdebstrap (Debian 12, systemd as PID 1)"
  # The proxy is used for the build only: the hook removes mmdebstrap's apt.conf before import.
  # ssh host keys are made per instance at first boot, never baked into the image. The package
  # index is kept (as on an installed server): without it, apt in --check mode, which may not
  # update the index, would know no package at all.
  # dpkg without an fsync per file (as Docker's own Debian images have it): test instances are
  # thrown away, and package installs are most of a scenario's time.
  # The hooks run inside mmdebstrap, where $1 is the new root: single quotes are meant.
  # shellcheck disable=SC2016
  TMPDIR="$TB/tmp" mmdebstrap --quiet --variant=minbase --include="$INCLUDE" --skip=cleanup/apt/lists \
    --aptopt="Acquire::http::Proxy \"http://127.0.0.1:$ACNG_PORT\"" \
    --customize-hook='rm -f "$1/etc/machine-id" "$1"/etc/ssh/ssh_host_* "$1/etc/apt/apt.conf.d/99mmdebstrap"; touch "$1/etc/machine-id"' \
    --customize-hook='echo force-unsafe-io >"$1/etc/dpkg/dpkg.cfg.d/llmfleet-testbed-unsafe-io"' \
    --customize-hook='mkdir -p "$1/etc/systemd/system/ssh.service.d"; printf "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n" >"$1/etc/systemd/system/ssh.service.d/10-keygen.conf"' \
    bookworm "$TB/tmp/rootfs.tar" "$MIRROR"
  # Imported only from a finished tarball, so a failed build never leaves an empty image behind.
  docker import --change 'CMD ["/sbin/init"]' "$TB/tmp/rootfs.tar" "$IMAGE" >/dev/null
  rm -f "$TB/tmp/rootfs.tar"
}

envs() {
  echo "export DOCKER_HOST=$DOCKER_HOST"
  echo "export LLMFLEET_APT_PROXY=http://$(bridge_ip):$ACNG_PORT"
  echo "export LLMFLEET_IMAGE=$IMAGE"
}

stop_pid() {
  local f=$1 name=$2
  [ -s "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

down() {
  stop_pid "$TB/acng/acng.pid" apt-cacher-ng
  if docker_ok; then
    local ids; mapfile -t ids < <(docker ps -aq --filter label=llmfleet.testbed=1 2>/dev/null || true)
    if [ ${#ids[@]} -gt 0 ]; then docker rm -f "${ids[@]}" >/dev/null; fi
  fi
  stop_pid "$TB/docker/dockerd.pid" dockerd
  # dockerd leaves its default bridge behind; the lab's and Molecule's networks are removed
  # with them.
  if ip link show docker0 >/dev/null 2>&1 && ! docker_ok; then ip link delete docker0 || true; fi
}

case "${1:-}" in
  deps) deps ;;
  up) deps; start_dockerd; start_acng; build_image; envs ;;
  env) envs ;;
  status) docker_ok && acng_ok ;;
  down) down ;;
  clean) down; log "removing $TB"; rm -rf "$TB" ;;
  *) echo "usage: $0 deps|up|env|status|down|clean" >&2; exit 2 ;;
esac
