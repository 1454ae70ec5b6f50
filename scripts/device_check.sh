#!/usr/bin/env bash
# Read-only checks on a real GPU host: the device machine of the test bed (Ubuntu 24.04, one H100,
# no systemd, no network). Never changes a GPU setting: the GPU guard (shared/testbed/gpu_guard,
# carried as .device/gpu_guard) refuses and logs every changing NVML or nvidia-smi call, and the
# run fails if anything was refused. Carry .whl (ansible-core and its wheels for Python 3.12) and
# .device; see docs/testing.md for the device call.
set -uo pipefail  # pipefail: a `cmd | tee` fails when cmd does
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-/tmp/device-out}
py=${DEVICE_PYTHON:-/opt/torch/.venv/bin/python3}
guard=$root/.device/gpu_guard
mkdir -p "$out"
"$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$root"/.whl/*.whl || exit 1
export PYTHONPATH=$guard:/tmp/site PATH=$guard:/tmp/site/bin:$PATH GPU_GUARD_LOG=$out/gpu_guard.log
: >"$GPU_GUARD_LOG"
# The collection itself, plus the collections it uses (carried in .device/collections, copied
# from the `ansible` package here: the device machine has ansible-core only).
mkdir -p /tmp/coll/ansible_collections/llmfleet
ln -sfn "$root" /tmp/coll/ansible_collections/llmfleet/deepseek
export ANSIBLE_COLLECTIONS_PATH=/tmp/coll:$root/.device/collections ANSIBLE_CONFIG=$root/ansible.cfg ANSIBLE_NOCOLOR=1 OUT=$out
cd "$root" || exit 1
rc=0
echo "== nvidia_gpu_info"
ansible-playbook -i localhost, -e "ansible_python_interpreter=$py" tests/device/gpu_info.yml 2>&1 | tee "$out/gpu_info.log" || rc=1
echo "== nvidia_gpu --check --diff (the settings the GPU has, and different ones)"
ansible-playbook -i localhost, -e "ansible_python_interpreter=$py" tests/device/gpu_settings_check.yml --check --diff 2>&1 \
  | tee "$out/gpu_settings_check.log" || rc=1
echo "== site.yml --check --diff --tags gpu_tuning:apply (the role's apply step; nvidia-ml-py from the torch venv)"
for profile in "max_performance" "power_capped -e gpu_tuning_power_cap_w=500"; do
  echo "-- profile $profile"
  # shellcheck disable=SC2086  # the profile string carries its own -e
  ansible-playbook -i tests/device/inventory.yml \
    -e "gpu_tuning_venv=${py%/bin/python3}" -e gpu_tuning_profile=$profile \
    site.yml --check --diff --tags gpu_tuning:apply 2>&1 | tee -a "$out/gpu_tuning_check.log" \
    | grep -E "^(---|\+\+\+|[-+] )|changed=|fatal|skipping: .*apply" || true
done
echo "== nvidia_driver_info: the coherence gate on the real driver"
ansible-playbook -i localhost, -e "ansible_python_interpreter=$py" tests/device/driver_gate.yml 2>&1 \
  | tee "$out/driver_gate.log" || rc=1
echo "== site.yml --check --diff --tags nvidia_driver:gate (the role's gate on the real driver)"
ansible-playbook -i tests/device/inventory.yml site.yml --check --diff --tags nvidia_driver:gate 2>&1 \
  | tee "$out/driver_role_gate.log" | grep -E "changed=|fatal|msg|coherence" || true
echo "== site.yml --check --diff --tags nvidia_driver (the whole driver role)"
ansible-playbook -i tests/device/inventory.yml site.yml --check --diff --tags nvidia_driver 2>&1 \
  | tee "$out/driver_role_check.log" | tail -40
echo "== trtllm_service: the fit and option checks against the real GPU"
ansible-playbook -i tests/device/inventory.yml tests/device/trtllm_fit.yml 2>&1 \
  | tee "$out/trtllm_fit.log" | grep -E "msg|fits|fit|ok=|fatal" || rc=1
grep -q "failed=0" "$out/trtllm_fit.log" || rc=1
echo "== site.yml --check --diff (production gate: llmfleet_require_gpu true)"
sitepy=/usr/bin/python3
"$sitepy" -c 'import apt_pkg' 2>/dev/null || echo "note: $sitepy has no python3-apt; apt tasks cannot run in --check here"
ansible-playbook -i tests/device/inventory.yml site.yml --check --diff 2>&1 \
  | tee "$out/site_check.log"
echo "site.yml --check exit: $?"
if [ -s "$GPU_GUARD_LOG" ]; then
  echo "GPU GUARD REFUSED CALLS (a read-only run tried to change the GPU):"; cat "$GPU_GUARD_LOG"; rc=1
else
  echo "gpu guard: no changing call was attempted"
fi
exit $rc
