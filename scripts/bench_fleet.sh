#!/usr/bin/env bash
# `make bench-fleet`: a no-op site.yml over N lab hosts (systemd containers reached over SSH, as
# `make lab` makes them) for N in LLMFLEET_BENCH_HOSTS (default "1 4 8 16"), each with Ansible's
# defaults, the tuned ansible.cfg of this repository, and the tuned config with Mitogen's strategy.
# Measured per run: wall time, controller CPU seconds (user + system of ansible-playbook and every
# process it waited for, ssh included; GNU time), and the tasks each host executed (ok in the recap;
# skipped tasks not counted); then the floor: 50 plain stat tasks and an empty play on one host per
# config (LLMFLEET_BENCH_FLOOR=0: not). Results: .bench/results.json ({runs, floor}) and tables on
# stdout (docs/performance.md).
#
# One host is converged once and committed as an image; the N hosts are copies of it, converged
# once more to their own names and addresses (a certificate, firewall sources), then measured.
# All hosts share this machine's CPUs with the controller: say so with the figures.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH=$root/.venv/bin:$PATH
BENCH=$root/.bench
export LLMFLEET_LAB_DIR=$BENCH/.lab LLMFLEET_LAB_NETWORK=llmfleet-bench LLMFLEET_LAB_SUBNET=10.98.30.0/24
export LLMFLEET_LAB_LABEL=llmfleet.bench
# shellcheck source=scripts/lab.sh
source scripts/lab.sh
INV=$BENCH/inventories/bench
COUNTS=${LLMFLEET_BENCH_HOSTS:-1 4 8 16}
CONFIGS=${LLMFLEET_BENCH_CONFIGS:-defaults tuned mitogen}
max=0; for n in $COUNTS; do [ "$n" -gt "$max" ] && max=$n; done
[ "$max" -le 200 ] || { echo "LLMFLEET_BENCH_HOSTS: at most 200 hosts (one /24)" >&2; exit 2; }

log() { printf '[bench] %s\n' "$*" >&2; }

name_of() { printf 'bench-%02d\n' "$1"; }
addr_of() { echo "10.98.30.$((10 + $1))"; }

# An inventory of hosts 1..$1 beside the lab's group_vars (inventory_dir/../.. is .bench).
write_inventory() {
  mkdir -p "$INV"
  ln -sfn "$root/inventories/lab/group_vars" "$INV/group_vars"
  { echo "llmfleet:"; echo "  children:"; echo "    gpu_nodes:"; echo "      hosts:"
    for i in $(seq 1 "$1"); do echo "        $(name_of "$i"): {ansible_host: $(addr_of "$i")}"; done
  } >"$INV/hosts.yml"
}

MITOGEN_STRATEGY=$(python -c 'import os, ansible_mitogen; print(os.path.dirname(ansible_mitogen.__file__) + "/plugins/strategy")')
# Ansible's defaults: only what finds this collection and its roles (forks 5, no pipelining, no fact
# cache, ssh's default ControlPersist=60s).
cat_defaults_cfg() {
  printf '[defaults]\nroles_path = %s/roles\ncollections_path = %s/.cache/collections\nretry_files_enabled = False\n' "$root" "$root"
}

# run_site CONFIG LIMIT LOG [PLAYBOOK]: one run (site.yml unless named); prints "wall user sys".
run_site() {
  local config=$1 limit=$2 out=$3 playbook=${4:-site.yml} cfg=$root/ansible.cfg
  local -a env=(env -u ANSIBLE_STRATEGY -u ANSIBLE_STRATEGY_PLUGINS)
  case $config in
    defaults) cfg=$BENCH/ansible-defaults.cfg ;;
    tuned) ;;
    mitogen) env+=(ANSIBLE_STRATEGY=mitogen_linear "ANSIBLE_STRATEGY_PLUGINS=$MITOGEN_STRATEGY") ;;
  esac
  "${env[@]}" ANSIBLE_CONFIG="$cfg" ANSIBLE_NOCOLOR=1 /usr/bin/time -f '%e %U %S' -o "$out.time" \
    ansible-playbook "$playbook" -i "$INV" --limit "$limit" >"$out" 2>&1 || { log "run failed: $out"; tail -30 "$out" >&2; return 1; }
  cat "$out.time"
}

main() {
  prepare
  cat_defaults_cfg >"$BENCH/ansible-defaults.cfg"
  # The converged image, keyed by what a converge depends on.
  local key; key=$(git ls-files -s roles playbooks plugins inventories/lab scripts/lab.sh tests/fixtures | sha1sum | cut -c1-12)
  local image=llmfleet/bench-converged:$key
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    log "converging one host for $image"
    write_inventory 1
    start_host "$(name_of 1)" "$(addr_of 1)"
    provision_host "$(name_of 1)"
    ANSIBLE_CONFIG=$root/ansible.cfg ansible-playbook site.yml -i "$INV" >"$BENCH/golden.log" 2>&1 \
      || { tail -40 "$BENCH/golden.log" >&2; exit 1; }
    docker commit "$(name_of 1)" "$image" >/dev/null
    docker rm -f "$(name_of 1)" >/dev/null
  fi
  log "starting $max hosts from $image"
  write_inventory "$max"
  local i
  for i in $(seq 1 "$max"); do LLMFLEET_IMAGE=$image start_host "$(name_of "$i")" "$(addr_of "$i")"; done
  for i in $(seq 1 "$max"); do
    docker exec "$(name_of "$i")" systemctl is-system-running --wait >/dev/null 2>&1 || true
  done
  log "converging the copies to their own names (tuned config)"
  ANSIBLE_CONFIG=$root/ansible.cfg ansible-playbook site.yml -i "$INV" >"$BENCH/warmup.log" 2>&1 \
    || { tail -40 "$BENCH/warmup.log" >&2; exit 1; }

  local results=$BENCH/results.jsonl; : >"$results"
  local n config limit t
  for n in $COUNTS; do
    limit=$(for i in $(seq 1 "$n"); do name_of "$i"; done | paste -sd, -)
    for config in $CONFIGS; do
      log "no-op site.yml: $n host(s), $config"
      t=$(run_site "$config" "$limit" "$BENCH/run-$n-$config.log")
      python3 - "$n" "$config" "$t" "$BENCH/run-$n-$config.log" >>"$results" <<'PY'
import json, re, sys
n, config, t, log = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(), sys.argv[4]
recap = {h: dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", f))
         for h, f in re.findall(r"^(bench-\d+)\s+:\s+(ok=.*)$", open(log).read(), re.M)}
tasks = sorted(r["ok"] for r in recap.values())
print(json.dumps({"hosts": n, "config": config, "wall_s": float(t[0]), "cpu_s": round(float(t[1]) + float(t[2]), 2),
                  "tasks_per_host": tasks[len(tasks) // 2] if tasks else None,
                  "changed": sum(r["changed"] for r in recap.values()), "hosts_in_recap": len(recap)}))
PY
    done
  done
  # The floor: what one plain module task costs the controller under each config (50 `stat` tasks
  # on one host, minus an empty play). No playbook of module tasks can do better than this ratio.
  local floor=$BENCH/floor.jsonl; : >"$floor"
  if [ "${LLMFLEET_BENCH_FLOOR:-1}" = 1 ]; then
    { printf -- '- name: Fifty plain module tasks\n  hosts: all\n  gather_facts: false\n  tasks:\n'
      for i in $(seq 1 50); do printf '    - name: stat %d\n      ansible.builtin.stat: {path: /etc/hostname}\n' "$i"; done
    } >"$BENCH/floor-50.yml"
    printf -- '- name: Nothing\n  hosts: all\n  gather_facts: false\n  tasks: []\n' >"$BENCH/floor-0.yml"
    local e s
    for config in $CONFIGS; do
      log "floor: 50 stat tasks on one host, $config"
      e=$(run_site "$config" "$(name_of 1)" "$BENCH/floor-0-$config.log" "$BENCH/floor-0.yml")
      s=$(run_site "$config" "$(name_of 1)" "$BENCH/floor-50-$config.log" "$BENCH/floor-50.yml")
      python3 -c 'import json, sys; c, e, s = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
cpu = lambda t: float(t[1]) + float(t[2])
print(json.dumps({"config": c, "cpu_ms_per_task": round((cpu(s) - cpu(e)) * 1000 / 50, 1),
                  "wall_ms_per_task": round((float(s[0]) - float(e[0])) * 1000 / 50, 1)}))' "$config" "$e" "$s" >>"$floor"
    done
  fi
  python3 - "$results" "$BENCH/results.json" "$floor" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
floor = [json.loads(line) for line in open(sys.argv[3])]
json.dump({"runs": rows, "floor": floor}, open(sys.argv[2], "w"), indent=2)
by = {(r["hosts"], r["config"]): r for r in rows}
print("| hosts | config | wall s | controller CPU s | CPU s per host | tasks per host | changed |")
print("|---:|---|---:|---:|---:|---:|---:|")
for r in rows:
    print("| %d | %s | %.1f | %.1f | %.2f | %s | %d |" % (r["hosts"], r["config"], r["wall_s"], r["cpu_s"],
          r["cpu_s"] / r["hosts"], r["tasks_per_host"], r["changed"]))
print()
for n in sorted({r["hosts"] for r in rows}):
    d = by.get((n, "defaults"))
    if not d:
        continue
    parts = []
    for c in ("tuned", "mitogen"):
        if (n, c) in by:
            r = by[(n, c)]
            parts.append("%s CPU/host %.2fx, wall %.2fx faster" % (c, r["cpu_s"] / d["cpu_s"], d["wall_s"] / r["wall_s"]))
    print("%d host(s) vs defaults: %s" % (n, "; ".join(parts)))
if floor:
    base = {f["config"]: f for f in floor}.get("defaults")
    print()
    print("| floor: one plain module task (stat), one host | controller CPU ms | wall ms | CPU vs defaults |")
    print("|---|---:|---:|---:|")
    for f in floor:
        print("| %s | %.1f | %.1f | %s |" % (f["config"], f["cpu_ms_per_task"], f["wall_ms_per_task"],
              "%.2fx" % (f["cpu_ms_per_task"] / base["cpu_ms_per_task"]) if base else ""))
PY
}

down() {
  local ids; mapfile -t ids < <(docker ps -aq --filter "label=$LABEL=1")
  [ ${#ids[@]} -eq 0 ] || docker rm -f "${ids[@]}" >/dev/null
  docker network rm "$NETWORK" >/dev/null 2>&1 || true
}

case "${1:-run}" in
  run) trap down EXIT; main ;;
  keep) main ;;
  down) eval "$(scripts/testbed.sh env)"; down ;;
  *) echo "usage: $0 [run|keep|down]" >&2; exit 2 ;;
esac
