#!/usr/bin/env bash
# iptables_allowlist in front of a real Docker engine's published port: docker_netns.sh starts a
# private dockerd in a network namespace with a container published as 8080:80, and this runs
# the module there (tests/integration/docker_allowlist.yml) as the hook; the allowed client must
# connect, the denied one must be dropped. Root only; run by `make integration`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export ANSIBLE_CONFIG="$root/ansible.cfg" LLFW_EXPERIMENTS="${LLFW_EXPERIMENTS:-0}"
# The system Python runs the module (the host's, as on a managed server).
ALLOWLIST_CMD="$root/.venv/bin/ansible-playbook -i localhost, -c local"
ALLOWLIST_CMD+=" -e ansible_python_interpreter=/usr/bin/python3 $root/tests/integration/docker_allowlist.yml"
export ALLOWLIST_CMD
exec "$root/tests/integration/docker_netns.sh"
