#!/usr/bin/env bash
# The edge's overhead, measured (docs/performance.md): starts the nginx_tls scenario's instance
# (molecule create/prepare/converge), re-converges it with the TEST DOUBLE on port 8100 as the
# only upstream and limits above the load, installs wrk there (Debian's, through the test bed's
# apt cache) and runs tests/perf/edge_perf.py on the instance's loopback. Leaves the instance up
# (`molecule destroy -s nginx_tls` removes it).
#   scripts/edge_perf.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg" NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0
eval "$(scripts/testbed.sh up)"
seconds=${1:-10}
key=perf-0123456789abcdef0123456789abcdef0123
molecule create -s nginx_tls >/dev/null
molecule prepare -s nginx_tls --force >/dev/null
inventory=$(find "$HOME/.ansible/tmp" -maxdepth 2 -path "*.nginx_tls/inventory" | head -1)
MOLECULE_EPHEMERAL_DIRECTORY=$(dirname "$inventory") ansible-playbook -i "$inventory" molecule/nginx_tls/converge.yml \
  -e "{\"nginx_tls_upstreams\": [{\"name\": \"perf\", \"port\": 8100, \"gpus\": [0]}],
       \"nginx_tls_api_keys\": {\"perf\": \"$key\"}, \"nginx_tls_rate_per_second\": 1000000,
       \"nginx_tls_burst\": 1000000, \"nginx_tls_max_streams_per_client\": 10000}" | tail -3
docker exec edge sh -c "command -v wrk >/dev/null || { http_proxy=$LLMFLEET_APT_PROXY apt-get -qq update \
  && http_proxy=$LLMFLEET_APT_PROXY DEBIAN_FRONTEND=noninteractive apt-get -qq install -y wrk >/dev/null; }"
docker cp tests/perf/edge_perf.py edge:/root/edge_perf.py
docker exec edge nproc
docker exec edge python3 /root/edge_perf.py --key "$key" --seconds "$seconds" --json /root/edge_perf.json
docker cp edge:/root/edge_perf.json "${LLMFLEET_PERF_OUT:-/tmp/edge_perf.json}"
