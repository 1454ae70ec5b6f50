#!/usr/bin/env bash
# Published container ports vs. an iptables allowlist, proven with a REAL Docker engine.
#
# Everything happens inside network namespaces this script creates (llfw-lan, llfw-server,
# llfw-allowed, llfw-denied) and removes again on exit, failure included:
#
#   llfw-allowed 10.97.0.2 ─┐
#   llfw-denied  10.97.0.3 ─┼─ br0 (in llfw-lan) ── 10.97.0.1 llfw-server
#                            │                         private containerd + dockerd (iptables on)
#                            │                         container "llfw-web": busybox httpd :80,
#                            │                         published -p 8080:80 (docker0 10.97.1.1/24)
#
# The private dockerd runs in llfw-server only, so the chains it makes (DOCKER, DOCKER-USER,
# DOCKER-ISOLATION-STAGE-*, nat DOCKER ...) exist in that namespace only; the host's own
# firewall, its docker0 and any other dockerd/containerd are left alone. The script then probes
# 10.97.0.1:8080 from both clients with a Python socket.connect_ex (3 s):
#   baseline      no allowlist: both clients connect
#   experiments   one rule at a time on a pristine copy of Docker's rules: which match sees
#                 what after DNAT (--ctorigdstport 8080 vs 80, --dport 8080 vs 80, INPUT chain)
#   hook          ALLOWLIST_CMD (default: the LLMFLEET-DOCKER allowlist below), then probes
#
# Output lines meant for machines:
#   probe PHASE CLIENT PORT RC VERDICT    RC from connect_ex: 0 connected, 11/110 timed out
#                                         (dropped), 111 refused; VERDICT connected (and the
#                                         container's page was read) | timeout | refused | ...
#   check PASS|FAIL PHASE CLIENT PORT expect=X got=Y
#   counter PHASE CHAIN NUM pkts=N target=T   packets each rule of the chain under test matched
# Exit status: 0 when every expectation held, 1 when one did not, 2 on a setup error.
#
# Usage (root):  tests/integration/docker_netns.sh
# Environment:
#   ALLOWLIST_CMD      shell commands run as `ip netns exec llfw-server sh -ec "$ALLOWLIST_CMD"`
#                      after Docker is up with the published port; these variables are exported
#                      to it: LLFW_SERVER_IP LLFW_ALLOWED_IP LLFW_DENIED_IP LLFW_PUBLISHED_PORT
#                      LLFW_CONTAINER_PORT LLFW_CONTAINER_IP LLFW_DOCKER_SUBNET
#   EXPECT_ALLOWED     verdict expected from llfw-allowed after the hook (default connected)
#   EXPECT_DENIED      verdict expected from llfw-denied after the hook (default timeout)
#   EXPECT_SERVER      verdict expected from the server itself after the hook (default connected)
#                      any of: connected timeout refused any
#   LLFW_EXPERIMENTS   0 skips the rule experiments (default 1)
#   LLFW_STORAGE_DRIVER  dockerd storage driver (default vfs: works everywhere, the image is 2 MB)
#   LLFW_KEEP_LOGS     a directory: dockerd/containerd logs are copied there before cleanup
#   BUSYBOX            a statically linked busybox to use (default: /bin/busybox when static,
#                      else the busybox-static .deb, fetched with `apt-get download` and unpacked
#                      into the temporary directory; nothing is installed)
#   DOCKER_CLI         docker client (default /usr/bin/docker, the one from docker.io)
#   PYTHON             python3 for the probes (default python3)
#
# Prerequisites (Debian 12): docker.io (dockerd, containerd, runc, docker-proxy, ctr), iptables,
# iproute2 and util-linux (unshare, nsenter; both in every Debian), python3 (installed as
# python3-minimal when missing), busybox-static (downloaded, not installed; see BUSYBOX).
# Needs no systemd and no loadable modules (veth, bridge, conntrack, NAT and the xt
# conntrack/addrtype matches must be there, built in or loaded). Tested on cgroup v1 hybrid;
# nothing in it is specific to v1.
#
# How dockerd gets into llfw-server: not with `ip netns exec`, which detaches /sys and with it
# every cgroup mount (runc then cannot start a container), but with
# `unshare --mount --propagation slave nsenter --net=/run/netns/llfw-server`, and a script that
# mounts a sysfs of the server's namespace over /sys (what ip netns exec does) and puts the
# cgroup tree back. Its own containerd runs in the same namespaces, given to dockerd with
# --containerd (so a system containerd at /run/containerd/containerd.sock is never used), and
# --config-file, --data-root, --exec-root, --pidfile, -H, the trust key and --cgroup-parent all
# point at the temporary directory or at names of our own. securityfs is not remounted there,
# so Docker sees no AppArmor and runs the container unconfined (irrelevant to netfilter).
set -euo pipefail

SERVER_NS=llfw-server
LAN_NS=llfw-lan
ALLOWED_NS=llfw-allowed
DENIED_NS=llfw-denied
ALL_NS=("$ALLOWED_NS" "$DENIED_NS" "$SERVER_NS" "$LAN_NS")

SERVER_IP=10.97.0.1
ALLOWED_IP=10.97.0.2
DENIED_IP=10.97.0.3
DOCKER_BIP=10.97.1.1/24
DOCKER_SUBNET=10.97.1.0/24
PUBLISHED_PORT=8080
CONTAINER_PORT=80
PROBE_TIMEOUT=3
IMAGE=llfw/busybox-httpd:local
CONTAINER=llfw-web
CGROUP_PARENT=llfw-docker

STORAGE_DRIVER=${LLFW_STORAGE_DRIVER:-vfs}
EXPERIMENTS=${LLFW_EXPERIMENTS:-1}
EXPECT_ALLOWED=${EXPECT_ALLOWED:-connected}
EXPECT_DENIED=${EXPECT_DENIED:-timeout}
EXPECT_SERVER=${EXPECT_SERVER:-connected}
PYTHON=${PYTHON:-python3}
if [ -z "${DOCKER_CLI:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER_CLI=/usr/bin/docker; else DOCKER_CLI=docker; fi
fi

# The allowlist we intend to ship, applied by hand: a chain jumped to from DOCKER-USER at
# position 1. Replies of allowed connections carry the DNAT status too (and the container's
# address as source), so the RELATED,ESTABLISHED rule must come first.
# shellcheck disable=SC2016  # expanded by the sh that runs it, from the exported LLFW_* variables
DEFAULT_ALLOWLIST_CMD='iptables -N LLMFLEET-DOCKER
iptables -A LLMFLEET-DOCKER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
iptables -A LLMFLEET-DOCKER -s "$LLFW_ALLOWED_IP/32" -p tcp -m conntrack --ctstate DNAT --ctorigdstport "$LLFW_PUBLISHED_PORT" -j RETURN
iptables -A LLMFLEET-DOCKER -p tcp -m conntrack --ctstate DNAT --ctorigdstport "$LLFW_PUBLISHED_PORT" -j DROP
iptables -I DOCKER-USER 1 -j LLMFLEET-DOCKER'
ALLOWLIST_CMD=${ALLOWLIST_CMD:-$DEFAULT_ALLOWLIST_CMD}

START=$(date +%s)
T=""
INNER_PID=""
CONTAINER_PID=""
CREATED_RUN_CONTAINERD=0
RUN_NETNS_WAS_MOUNT=1
MADE_NS=()          # the namespaces this run created: the only ones cleanup touches
STARTED_DOCKER=0
PASSED=0
FAILED=0
FAILURES=()

log() { printf '[llfw] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
section() { printf '\n===== %s\n' "$*"; }
in_server() { ip netns exec "$SERVER_NS" "$@"; }
dk() { DOCKER_CONFIG="$T/cli" "$DOCKER_CLI" -H "unix://$T/docker.sock" "$@"; }
docker_up() { DOCKER_CONFIG="$T/cli" timeout 10 "$DOCKER_CLI" -H "unix://$T/docker.sock" version >/dev/null 2>&1; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------------------------- cleanup
stop_pid() { # pid name: TERM, wait up to 20 s, then KILL
  local pid=$1 name=$2 i
  alive "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 200); do alive "$pid" || return 0; sleep 0.1; done
  log "$name (pid $pid) ignored TERM for 20 s (last try $i): KILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.2
}

pidfile_pid() { if [ -n "$T" ] && [ -s "$1" ]; then cat "$1" 2>/dev/null || true; fi; }

cleanup() {
  local rc=$? ns pid d f
  trap - EXIT INT TERM
  set +e
  section "cleanup"
  if [ -n "$T" ] && [ $rc -ne 0 ]; then
    for f in dockerd.log containerd.log; do
      [ -s "$T/$f" ] && { log "last lines of $f:"; tail -n 25 "$T/$f" >&2; }
    done
  fi
  if [ -n "${LLFW_KEEP_LOGS:-}" ] && [ -n "$T" ]; then
    mkdir -p "$LLFW_KEEP_LOGS" && cp -f "$T"/*.log "$LLFW_KEEP_LOGS"/ 2>/dev/null
  fi
  if [ -n "$T" ] && docker_up; then
    timeout 30 "$DOCKER_CLI" -H "unix://$T/docker.sock" rm -f "$CONTAINER" >/dev/null 2>&1
  fi
  stop_pid "$(pidfile_pid "$T/dockerd.pid")" dockerd
  stop_pid "$(pidfile_pid "$T/containerd.pid")" containerd
  # Whatever is still in our namespaces (containerd-shim, docker-proxy, the start script) was
  # started by this script; so is the container's process, which lives in a netns of its own.
  for ns in "${MADE_NS[@]}"; do
    [ -e "/run/netns/$ns" ] || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do stop_pid "$pid" "leftover in $ns"; done
  done
  if alive "$CONTAINER_PID" && grep -q httpd "/proc/$CONTAINER_PID/cmdline" 2>/dev/null; then
    stop_pid "$CONTAINER_PID" "container process"
  fi
  if alive "$INNER_PID"; then stop_pid "$INNER_PID" "server start script"; fi
  [ -n "$INNER_PID" ] && wait "$INNER_PID" 2>/dev/null
  for ns in "${MADE_NS[@]}"; do
    [ -e "/run/netns/$ns" ] && { ip netns delete "$ns" || log "could not delete netns $ns"; }
  done
  # `ip netns add` bind-mounts /run/netns onto itself; undo that if it was us and it is empty.
  if [ ${#MADE_NS[@]} -gt 0 ] && [ "$RUN_NETNS_WAS_MOUNT" = 0 ] && mountpoint -q /run/netns 2>/dev/null \
    && [ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do umount /run/netns 2>/dev/null && break; sleep 0.2; done
    if mountpoint -q /run/netns; then log "could not unmount /run/netns"; else rmdir /run/netns; fi
  fi
  # runc leaves the parent cgroup (one per hierarchy) behind.
  if [ "$STARTED_DOCKER" = 1 ]; then
    for d in /sys/fs/cgroup/"$CGROUP_PARENT" /sys/fs/cgroup/*/"$CGROUP_PARENT"; do
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  fi
  if [ "$CREATED_RUN_CONTAINERD" = 1 ]; then rmdir /run/containerd 2>/dev/null; fi
  if [ -n "$T" ] && [ -d "$T" ]; then
    if grep -q " $T" /proc/self/mountinfo; then
      log "mounts left under $T (not removing it):"; grep " $T" /proc/self/mountinfo >&2
    else
      rm -rf "$T"
    fi
  fi
  log "elapsed $(($(date +%s) - START)) s, exit $rc"
  exit $rc
}

# ---------------------------------------------------------------------------------- checks
check() { # phase client port expect got
  local phase=$1 who=$2 port=$3 expect=$4 got=$5 verdict=PASS
  if [ "$expect" != any ] && [ "$expect" != "$got" ]; then verdict=FAIL; fi
  echo "check $verdict $phase $who $port expect=$expect got=$got"
  if [ $verdict = PASS ]; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1)); FAILURES+=("$phase $who $port expect=$expect got=$got")
  fi
}

# connect_ex, then (connected) read the container's page: prints "RC BODY".
# shellcheck disable=SC2016
PROBE_PY='
import socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(timeout)
rc = s.connect_ex((host, port))
body = "-"
if rc == 0:
    try:
        s.sendall(b"GET / HTTP/1.0\r\nHost: llfw\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        body = "page" if b"llfw-ok" in data else "nopage"
    except OSError:
        body = "ioerror"
s.close()
print(rc, body)
'

probe() { # phase client port expect
  local phase=$1 who=$2 port=$3 expect=$4 ns out rc body verdict
  case $who in
    allowed) ns=$ALLOWED_NS ;; denied) ns=$DENIED_NS ;; server) ns=$SERVER_NS ;;
    *) die "unknown client $who" ;;
  esac
  out=$(ip netns exec "$ns" "$PYTHON" -c "$PROBE_PY" "$SERVER_IP" "$port" "$PROBE_TIMEOUT" 2>&1) \
    || out="err err"
  read -r rc body <<<"$out"
  case $rc in
    0) if [ "$body" = page ]; then verdict=connected; else verdict=connected-$body; fi ;;
    11 | 110 | 115) verdict=timeout ;;
    111) verdict=refused ;;
    *) verdict=other-$rc ;;
  esac
  echo "probe $phase $who $port $rc $verdict"
  check "$phase" "$who" "$port" "$expect" "$verdict"
}

counter() { # phase chain: packets each rule of the chain matched
  in_server iptables -L "$2" -v -n -x --line-numbers 2>/dev/null \
    | awk -v phase="$1" -v chain="$2" 'NR>2 {print "counter", phase, chain, $1, "pkts=" $2, "target=" $4}'
}

# --------------------------------------------------------------------------------- setup
preflight() {
  [ "$(id -u)" = 0 ] || die "run as root"
  if ! mountpoint -q /run/netns 2>/dev/null; then RUN_NETNS_WAS_MOUNT=0; fi
  local b
  for b in ip iptables iptables-save iptables-restore dockerd containerd runc docker-proxy \
    unshare nsenter mountpoint tar; do
    command -v "$b" >/dev/null || die "$b not found (Debian packages docker.io iptables iproute2 util-linux)"
  done
  command -v "$DOCKER_CLI" >/dev/null || die "docker client $DOCKER_CLI not found"
  for ns in "${ALL_NS[@]}"; do
    [ -e "/run/netns/$ns" ] && die "netns $ns exists already (a previous run?); remove it first: ip netns delete $ns"
  done
  if ! command -v "$PYTHON" >/dev/null; then
    log "python3 missing: apt-get install python3-minimal"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-minimal >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-minimal >/dev/null; } \
      || die "could not install python3-minimal"
    PYTHON=python3
  fi
}

is_static() { # ldd exits 1 on a static executable
  local out
  [ -x "$1" ] || return 1
  out=$(LC_ALL=C ldd "$1" 2>&1) || true
  grep -qE 'not a dynamic executable|statically linked' <<<"$out"
}

find_busybox() {
  local c deb debs
  if [ -n "${BUSYBOX:-}" ]; then is_static "$BUSYBOX" || die "BUSYBOX=$BUSYBOX is not a static executable"; return 0; fi
  for c in /bin/busybox /usr/bin/busybox; do
    if is_static "$c"; then BUSYBOX=$c; return 0; fi
  done
  log "no static busybox here: fetching the Debian package busybox-static (apt-get download, not installed)"
  mkdir -p "$T/deb"
  cp /var/cache/apt/archives/busybox-static_*.deb "$T/deb/" 2>/dev/null \
    || (cd "$T/deb" && apt-get download -qq -o APT::Sandbox::User=root busybox-static) 2>/dev/null \
    || { apt-get update -qq && (cd "$T/deb" && apt-get download -qq -o APT::Sandbox::User=root busybox-static); } \
    || die "could not download busybox-static"
  debs=("$T"/deb/busybox-static_*.deb)
  deb=${debs[${#debs[@]} - 1]}
  dpkg-deb -x "$deb" "$T/deb/root"
  BUSYBOX=$T/deb/root/bin/busybox
  is_static "$BUSYBOX" || die "$BUSYBOX is not static"
}

make_netns() {
  section "network namespaces"
  local ns
  for ns in "${ALL_NS[@]}"; do
    ip netns add "$ns"
    MADE_NS+=("$ns")
    ip -n "$ns" link set lo up
  done
  ip -n "$LAN_NS" link add br0 type bridge
  ip -n "$LAN_NS" link set br0 up
  # Each veth is created with its ends already in the two namespaces: nothing in the host's.
  local pair
  for pair in "$SERVER_NS:$SERVER_IP:p-server" "$ALLOWED_NS:$ALLOWED_IP:p-allowed" "$DENIED_NS:$DENIED_IP:p-denied"; do
    IFS=: read -r ns ip port <<<"$pair"
    ip -n "$LAN_NS" link add "$port" type veth peer name eth0 netns "$ns"
    ip -n "$LAN_NS" link set "$port" master br0 up
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
  for ns in "${ALL_NS[@]}"; do
    printf '%-13s netns inode %s  %s\n' "$ns" "$(stat -L -c %i "/run/netns/$ns")" \
      "$(ip -n "$ns" -4 -o addr show scope global | awk '{print $2, $4}' | tr '\n' ' ')"
  done
  printf '%-13s netns inode %s\n' "(host)" "$(stat -L -c %i /proc/self/ns/net)"
}

start_docker() {
  section "private containerd + dockerd in $SERVER_NS"
  mkdir -p "$T/containerd" "$T/data" "$T/exec" "$T/cli"
  # The trust key would otherwise go to /etc/docker/key.json (no command line flag in 20.10).
  printf '{"deprecated-key-path": "%s"}\n' "$T/key.json" >"$T/daemon.json"
  cat >"$T/containerd.toml" <<EOF
version = 2
root = "$T/containerd/root"
state = "$T/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$T/containerd/containerd.sock"

[ttrpc]
  address = "$T/containerd/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$T/containerd/opt"
EOF
  # Shims put their sockets in /run/containerd/s whatever containerd's state dir is: in the
  # server's mount namespace a tmpfs covers /run/containerd (which also hides a system
  # containerd's socket there). The mount point is created only if the host has none.
  STARTED_DOCKER=1
  if [ ! -e /run/containerd ]; then mkdir -m 0711 /run/containerd; CREATED_RUN_CONTAINERD=1; fi

  # Run inside the server netns, in a mount namespace of its own (slave: nothing propagates back).
  # Like `ip netns exec`, it mounts a sysfs that shows the server's interfaces; unlike it, it keeps
  # the cgroup mounts (ip netns exec detaches the old /sys and with it /sys/fs/cgroup, which
  # runc needs).
  cat >"$T/server.sh" <<'EOF'
set -eu
T=$1; shift
mkdir -p "$T/cgroup-keep"
mount --rbind /sys/fs/cgroup "$T/cgroup-keep"
mount -t sysfs llfw-sysfs /sys
mount --rbind "$T/cgroup-keep" /sys/fs/cgroup
umount -R "$T/cgroup-keep" 2>/dev/null || umount -l "$T/cgroup-keep"
mount -t tmpfs -o mode=0711,size=16m llfw-run-containerd /run/containerd
containerd --config "$T/containerd.toml" --log-level warn >"$T/containerd.log" 2>&1 &
echo $! >"$T/containerd.pid"
i=0
while [ ! -S "$T/containerd/containerd.sock" ]; do
  i=$((i + 1)); [ $i -le 300 ] || { echo "containerd did not start" >&2; exit 1; }; sleep 0.1
done
exec dockerd "$@" >"$T/dockerd.log" 2>&1
EOF
  local dockerd_args=(
    --config-file "$T/daemon.json"
    --data-root "$T/data" --exec-root "$T/exec" --pidfile "$T/dockerd.pid"
    -H "unix://$T/docker.sock"
    --containerd "$T/containerd/containerd.sock"
    --storage-driver "$STORAGE_DRIVER"
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$CGROUP_PARENT"
    --bip "$DOCKER_BIP"
    --iptables=true --log-level warn
  )
  log "dockerd ${dockerd_args[*]}"
  unshare --mount --propagation slave -- nsenter --net="/run/netns/$SERVER_NS" -- \
    sh "$T/server.sh" "$T" "${dockerd_args[@]}" </dev/null &
  INNER_PID=$!
  local i
  for i in $(seq 1 600); do
    docker_up && break
    alive "$INNER_PID" || die "dockerd exited during start"
    [ "$i" -lt 600 ] || die "dockerd did not answer within 60 s"
    sleep 0.1
  done
  log "dockerd answers after $((i / 10)).$((i % 10)) s"

  local dpid cpid sns
  dpid=$(cat "$T/dockerd.pid"); cpid=$(cat "$T/containerd.pid")
  sns=$(stat -L -c %i "/run/netns/$SERVER_NS")
  echo "docker.io package:  $(dpkg-query -W -f '${Version}' docker.io 2>/dev/null || echo '?')"
  echo "dockerd:            $(dockerd --version)"
  echo "containerd:         $(containerd --version)"
  echo "runc:               $(runc --version | head -1)"
  echo "iptables:           $(iptables --version)"
  echo "docker client:      $DOCKER_CLI $(dk version -f '{{.Client.Version}} (API {{.Client.APIVersion}}), server {{.Server.Version}} (API {{.Server.APIVersion}})')"
  echo "dockerd pid $dpid netns inode $(stat -L -c %i "/proc/$dpid/ns/net"), containerd pid $cpid netns inode $(stat -L -c %i "/proc/$cpid/ns/net"), $SERVER_NS inode $sns"
  [ "$(stat -L -c %i "/proc/$dpid/ns/net")" = "$sns" ] || die "dockerd is not in $SERVER_NS"
  [ "$(stat -L -c %i "/proc/$cpid/ns/net")" = "$sns" ] || die "containerd is not in $SERVER_NS"
  grep -qz -- "^$T/containerd/containerd.sock$" "/proc/$dpid/cmdline" || die "dockerd was not given our containerd"
  echo "dockerd --containerd $T/containerd/containerd.sock (its own containerd, pid $cpid)"
  dk info -f 'storage driver {{.Driver}}, cgroup driver {{.CgroupDriver}} v{{.CgroupVersion}}, docker root {{.DockerRootDir}}, iptables {{.BridgeNfIptables}}'
}

run_container() {
  section "image (docker import of a static busybox) and container"
  find_busybox
  mkdir -p "$T/rootfs/bin" "$T/rootfs/www"
  cp "$BUSYBOX" "$T/rootfs/bin/busybox"
  ln -s busybox "$T/rootfs/bin/sh"
  echo llfw-ok >"$T/rootfs/www/index.html"
  tar -C "$T/rootfs" -cf "$T/rootfs.tar" .
  dk import --change "CMD [\"/bin/busybox\",\"httpd\",\"-f\",\"-p\",\"$CONTAINER_PORT\",\"-h\",\"/www\"]" \
    "$T/rootfs.tar" "$IMAGE" >/dev/null
  echo "busybox: $BUSYBOX ($("$BUSYBOX" 2>&1 | head -1))"
  dk run -d --name "$CONTAINER" -p "$PUBLISHED_PORT:$CONTAINER_PORT" "$IMAGE" >/dev/null
  CONTAINER_PID=$(dk inspect -f '{{.State.Pid}}' "$CONTAINER")
  CONTAINER_IP=$(dk inspect -f '{{.NetworkSettings.IPAddress}}' "$CONTAINER")
  dk ps --format 'container {{.Names}} {{.Image}} {{.Ports}} {{.Status}}'
  echo "container ip $CONTAINER_IP, pid $CONTAINER_PID"
  if command -v ctr >/dev/null; then
    local id; id=$(dk inspect -f '{{.Id}}' "$CONTAINER")
    ctr --address "$T/containerd/containerd.sock" -n moby containers ls -q | grep -qx "$id" \
      || die "container $id is not in our containerd"
    echo "our containerd (ctr -n moby containers ls) holds the container $id"
  fi
  # The shim's socket is in the tmpfs on /run/containerd of the server's mount namespace.
  echo "shim sockets in the server's /run/containerd/s: $(find "/proc/$(cat "$T/dockerd.pid")/root/run/containerd/s" -mindepth 1 -maxdepth 1 | wc -l)"
  local i
  for i in $(seq 1 50); do
    in_server "$PYTHON" -c "$PROBE_PY" "$CONTAINER_IP" "$CONTAINER_PORT" 1 2>/dev/null | grep -q '^0 page' && return 0
    sleep 0.2
  done
  die "the container does not serve on $CONTAINER_IP:$CONTAINER_PORT (attempt $i)"
}

# -------------------------------------------------------------------------------- phases
experiment() { # name chain expect_allowed expect_denied description; rule(s) on stdin
  local name=$1 chain=$2 ea=$3 ed=$4 what=$5 rules
  rules=$(cat)
  section "experiment $name: $what"
  in_server iptables-restore <"$T/docker-rules.v4"
  printf '%s\n' "$rules" | sed 's/^/  # /'
  in_server sh -ec "$rules"
  probe "$name" allowed "$PUBLISHED_PORT" "$ea"
  probe "$name" denied "$PUBLISHED_PORT" "$ed"
  counter "$name" "$chain"
}

experiments() {
  local d=$DENIED_IP p=$PUBLISHED_PORT c=$CONTAINER_PORT a=$ALLOWED_IP
  experiment ctorigdstport-published DOCKER-USER connected timeout \
    "DOCKER-USER DROP --ctorigdstport $p (published port) for the denied client: matches" <<EOF
iptables -I DOCKER-USER 1 -s $d/32 -p tcp -m conntrack --ctstate DNAT --ctorigdstport $p -j DROP
EOF
  experiment ctorigdstport-container DOCKER-USER connected connected \
    "DOCKER-USER DROP --ctorigdstport $c (container port): never matches" <<EOF
iptables -I DOCKER-USER 1 -s $d/32 -p tcp -m conntrack --ctstate DNAT --ctorigdstport $c -j DROP
EOF
  experiment dport-published DOCKER-USER connected connected \
    "DOCKER-USER DROP --dport $p: FORWARD sees the packet after DNAT, never matches" <<EOF
iptables -I DOCKER-USER 1 -s $d/32 -p tcp --dport $p -j DROP
EOF
  experiment dport-container DOCKER-USER connected timeout \
    "DOCKER-USER DROP --dport $c (the port after DNAT): matches" <<EOF
iptables -I DOCKER-USER 1 -s $d/32 -p tcp --dport $c -j DROP
EOF
  experiment input-published INPUT connected connected \
    "INPUT DROP --dport $p for everyone: published ports do not go through INPUT" <<EOF
iptables -I INPUT 1 -p tcp --dport $p -j DROP
EOF
  experiment input-container INPUT connected connected \
    "INPUT DROP --dport $c for everyone: no effect either" <<EOF
iptables -I INPUT 1 -p tcp --dport $c -j DROP
EOF
  experiment allowlist-without-established LLMFLEET-DOCKER timeout timeout \
    "the allowlist without its RELATED,ESTABLISHED rule: the container's replies are dropped too" <<EOF
iptables -N LLMFLEET-DOCKER
iptables -A LLMFLEET-DOCKER -s $a/32 -p tcp -m conntrack --ctstate DNAT --ctorigdstport $p -j RETURN
iptables -A LLMFLEET-DOCKER -p tcp -m conntrack --ctstate DNAT --ctorigdstport $p -j DROP
iptables -I DOCKER-USER 1 -j LLMFLEET-DOCKER
EOF
  section "experiments done: Docker's own rules restored"
  in_server iptables-restore <"$T/docker-rules.v4"
}

main() {
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  preflight
  T=$(mktemp -d /var/tmp/llfw.XXXXXX)
  chmod 0711 "$T"
  log "temporary directory $T"
  # Commands we run must not follow a DOCKER_HOST etc. from the caller's environment.
  unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH

  make_netns
  start_docker
  run_container

  section "iptables-save in $SERVER_NS (Docker's chains, before any allowlist)"
  in_server iptables-save | tee "$T/docker-rules.v4"
  grep -q '^:DOCKER-USER' "$T/docker-rules.v4" || die "no DOCKER-USER chain in $SERVER_NS"
  section "iptables-save in $ALLOWED_NS (for comparison: no Docker chains outside the server)"
  ip netns exec "$ALLOWED_NS" iptables-save | grep -c DOCKER | sed 's/^/DOCKER lines: /' || true

  section "baseline: no allowlist"
  probe baseline allowed "$PUBLISHED_PORT" connected
  probe baseline denied "$PUBLISHED_PORT" connected
  probe baseline server "$PUBLISHED_PORT" connected
  probe baseline allowed "$CONTAINER_PORT" refused

  if [ "$EXPERIMENTS" = 1 ]; then experiments; fi

  section "hook: ip netns exec $SERVER_NS sh -ec \"\$ALLOWLIST_CMD\""
  printf '%s\n' "$ALLOWLIST_CMD" | sed 's/^/  # /'
  export LLFW_SERVER_IP=$SERVER_IP LLFW_ALLOWED_IP=$ALLOWED_IP LLFW_DENIED_IP=$DENIED_IP \
    LLFW_PUBLISHED_PORT=$PUBLISHED_PORT LLFW_CONTAINER_PORT=$CONTAINER_PORT \
    LLFW_CONTAINER_IP=$CONTAINER_IP LLFW_DOCKER_SUBNET=$DOCKER_SUBNET
  in_server sh -ec "$ALLOWLIST_CMD" || die "ALLOWLIST_CMD failed"
  probe hook allowed "$PUBLISHED_PORT" "$EXPECT_ALLOWED"
  probe hook denied "$PUBLISHED_PORT" "$EXPECT_DENIED"
  probe hook server "$PUBLISHED_PORT" "$EXPECT_SERVER"
  section "filter table in $SERVER_NS after the hook and its probes (with counters)"
  in_server iptables-save -c -t filter

  section "summary"
  echo "dockerd $(dockerd --version | sed 's/^Docker version //'), storage $STORAGE_DRIVER, $SERVER_NS at $SERVER_IP, published $PUBLISHED_PORT -> $CONTAINER_IP:$CONTAINER_PORT"
  echo "checks passed: $PASSED, failed: $FAILED, elapsed: $(($(date +%s) - START)) s"
  local f
  for f in "${FAILURES[@]}"; do echo "FAILED: $f"; done
  if [ "$FAILED" -eq 0 ]; then
    echo "RESULT: PASS"
  else
    echo "RESULT: FAIL"
    exit 1
  fi
}

main "$@"
