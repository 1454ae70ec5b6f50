#!/usr/bin/env bash
# The lab: containers with systemd as PID 1 standing in for GPU servers, on their own network,
# reached over SSH with a generated key, then `ansible-playbook site.yml -i inventories/lab`.
#
#   scripts/lab.sh up     start (or re-use) the lab hosts and converge them
#   scripts/lab.sh down   remove the lab hosts, their network and keys; stop the test bed
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# scripts/bench_fleet.sh sources this file for its functions, with its own directory and network.
LAB=${LLMFLEET_LAB_DIR:-$root/.lab}
INVENTORY=${LLMFLEET_LAB_INVENTORY:-inventories/lab}
NETWORK=${LLMFLEET_LAB_NETWORK:-llmfleet-lab}
SUBNET=${LLMFLEET_LAB_SUBNET:-10.98.10.0/24}
LABEL=${LLMFLEET_LAB_LABEL:-llmfleet.lab}
ADMIN=llmfleet-admin
NVML_VERSION=$(sed -n 's/^gpu_tuning_nvml_version: "\(.*\)"$/\1/p' roles/gpu_tuning/defaults/main.yml)

log() { printf '[lab] %s\n' "$*" >&2; }

# name<TAB>address for every host of the lab inventory.
lab_hosts() {
  ansible-inventory -i "$INVENTORY" --list | python3 -c '
import json, sys
inv = json.load(sys.stdin)
for name, hv in sorted(inv["_meta"]["hostvars"].items()):
    print("%s\t%s" % (name, hv["ansible_host"]))'
}

start_host() {
  local name=$1 addr=$2
  if [ "$(docker inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; then
    log "$name ($addr) is running"
    return 0
  fi
  docker rm -f "$name" >/dev/null 2>&1 || true
  # A new host has new ssh host keys: forget the old ones.
  if [ -f "$LAB/ssh/known_hosts" ]; then
    ssh-keygen -q -f "$LAB/ssh/known_hosts" -R "$addr" >/dev/null 2>&1 || true
  fi
  log "starting $name ($addr)"
  # systemd as PID 1 on this kind of machine: the settings of docs/testing.md.
  docker run -d --name "$name" --hostname "$name" \
    --label llmfleet.testbed=1 --label "$LABEL=1" \
    --network "$NETWORK" --ip "$addr" \
    --cgroupns host -v /sys/fs/cgroup/systemd:/sys/fs/cgroup/systemd:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    --cap-add NET_ADMIN --stop-signal SIGRTMIN+3 \
    "$LLMFLEET_IMAGE" /sbin/init >/dev/null
}

# What cloud-init or a kickstart does on a real server: an admin user with our key and sudo.
# Plus the wheelhouse an offline bundle would bring: lab hosts have no route to PyPI.
provision_host() {
  local name=$1
  docker exec "$name" mkdir -p /srv/wheelhouse /usr/local/lib/llmfleet-test
  docker cp "$LAB/wheelhouse/." "$name:/srv/wheelhouse/"
  # The model service's STAND-IN: the trtllm-serve TEST DOUBLE and a revision that is no model.
  local file
  for file in tests/fixtures/trtllm_serve_double/trtllm_serve.py tests/fixtures/trtllm_serve_double/llmapi_launch.py \
      tests/fixtures/inference_double/server.py \
      plugins/module_utils/trtllm_options.py; do
    docker cp "$file" "$name:/usr/local/lib/llmfleet-test/"
  done
  docker exec -i "$name" sh -eu < tests/fixtures/trtllm_serve_double/install-stand-in.sh
  docker exec "$name" systemctl is-system-running --wait >/dev/null 2>&1 || true
  docker exec -i "$name" sh -eu -c "
    id $ADMIN >/dev/null 2>&1 || useradd -m -s /bin/bash $ADMIN
    install -d -m 0700 -o $ADMIN -g $ADMIN /home/$ADMIN/.ssh
    cat > /home/$ADMIN/.ssh/authorized_keys
    chown $ADMIN: /home/$ADMIN/.ssh/authorized_keys; chmod 0600 /home/$ADMIN/.ssh/authorized_keys
    echo '$ADMIN ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/$ADMIN; chmod 0440 /etc/sudoers.d/$ADMIN
    systemctl is-active --quiet ssh || systemctl start ssh" <"$LAB/ssh/id_ed25519.pub"
}

# The test bed, the lab's key, network and wheelhouse.
prepare() {
  eval "$(scripts/testbed.sh up)"
  export DOCKER_HOST LLMFLEET_APT_PROXY LLMFLEET_IMAGE
  mkdir -p "$LAB/ssh"
  [ -f "$LAB/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C llmfleet-lab -f "$LAB/ssh/id_ed25519"
  docker network inspect "$NETWORK" >/dev/null 2>&1 \
    || docker network create --subnet "$SUBNET" --label llmfleet.testbed=1 --label "$LABEL=1" "$NETWORK" >/dev/null
  mkdir -p "$LAB/wheelhouse"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$LAB/wheelhouse" "nvidia-ml-py==$NVML_VERSION"
}

up() {
  prepare
  local hosts; hosts=$(lab_hosts)
  while IFS=$'\t' read -r name addr; do start_host "$name" "$addr"; done <<<"$hosts"
  while IFS=$'\t' read -r name addr; do provision_host "$name"; done <<<"$hosts"

  log "running: ansible-playbook site.yml -i $INVENTORY"
  local t0=$SECONDS
  ansible-playbook site.yml -i "$INVENTORY" | tee "$LAB/last-run.log"
  local took=$((SECONDS - t0))

  echo
  echo "== llmfleet lab: deployed (site.yml took ${took} s)"
  printf '%-12s %-14s %s\n' HOST ADDRESS "SSH"
  while IFS=$'\t' read -r name addr; do
    printf '%-12s %-14s ssh -i .lab/ssh/id_ed25519 -o UserKnownHostsFile=.lab/ssh/known_hosts %s@%s\n' \
      "$name" "$addr" "$ADMIN" "$addr"
  done <<<"$hosts"
  local first; first=$(head -1 <<<"$hosts" | cut -f2)
  echo "The TLS edge (CA: .lab/edge-ca/ca.crt; the lab key is in $INVENTORY/group_vars/all/edge.yml):"
  local key; key=$(sed -n 's/^ *lab: *//p' "$INVENTORY/group_vars/all/edge.yml" | head -1)
  echo "  curl --cacert .lab/edge-ca/ca.crt https://$first/healthz"
  echo "  curl --cacert .lab/edge-ca/ca.crt -H 'Authorization: Bearer $key' https://$first/v1/chat/completions \\"
  echo "       -H 'Content-Type: application/json' -d '{\"model\": \"/srv/llmfleet/models/lab-stand-in/current\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}'"
  echo "!! The model service behind the edge is a STAND-IN with NO MODEL: the trtllm-serve TEST DOUBLE"
  echo "!! (tests/fixtures/trtllm_serve_double) answers with canned text. Real serving needs a GPU host."
  echo "Roles, GPU findings and skipped steps per host: the 'Print what was deployed where' task above."
  echo "These hosts have no GPU (llmfleet_require_gpu: false in $INVENTORY): GPU-only steps are skipped."
  echo "Remove everything with: make lab-down"
}

down() {
  if [ -S "${LLMFLEET_TESTBED:-/var/tmp/llmfleet-testbed}/docker/docker.sock" ]; then
    eval "$(scripts/testbed.sh env)"
    if docker info >/dev/null 2>&1; then
      local ids; mapfile -t ids < <(docker ps -aq --filter label=llmfleet.lab=1)
      if [ ${#ids[@]} -gt 0 ]; then log "removing lab hosts"; docker rm -f "${ids[@]}" >/dev/null; fi
      docker network rm "$NETWORK" >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$LAB"
  scripts/testbed.sh down
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
