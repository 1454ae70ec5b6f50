"""gpu_tuning on a GPU-less instance, seen from outside: nvidia-ml-py in its virtualenv, the boot
unit written, enabled and quietly skipped by systemd without a driver, the GPU step skipped with
its message, and bad input refused before any change."""
import os
import subprocess

import pytest
import yaml

SCENARIO = os.environ["LLMFLEET_SCENARIO_DIR"]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
UNIT = "/etc/systemd/system/llmfleet-gpu-settings.service"
DEFAULTS = os.path.join(SCENARIO, "..", "..", "roles", "gpu_tuning", "defaults", "main.yml")


def _role(*extra_vars):
    cmd = ["ansible-playbook", "-i", INVENTORY, os.path.join(SCENARIO, "converge.yml")]
    for ev in extra_vars:
        cmd += ["-e", ev]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def test_nvml_binding_installed_from_the_wheelhouse(host):
    out = host.check_output("/opt/llmfleet/nvml/bin/python -c 'import pynvml, importlib.metadata as m;"
                            " print(m.version(\"nvidia-ml-py\"))'")
    with open(DEFAULTS) as handle:
        assert out == yaml.safe_load(handle)["gpu_tuning_nvml_version"]


def test_boot_unit_applies_each_setting_to_the_selected_gpu(host):
    unit = host.file(UNIT)
    assert unit.mode == 0o644 and unit.user == "root"
    execs = [l.split("=", 1)[1] for l in unit.content_string.splitlines() if l.startswith("ExecStart=")]
    # No nvidia-persistenced on this host yet, so the unit sets persistence itself.
    assert execs == ["/usr/bin/nvidia-smi -i 0 -pm 1", "/usr/bin/nvidia-smi -i 0 -c DEFAULT",
                     "/usr/bin/nvidia-smi -i 0 -pl 500", "/usr/bin/nvidia-smi -i 0 -ac 2619,1980"]
    assert "ConditionPathExists=/dev/nvidiactl" in unit.content_string


def test_boot_unit_enabled_and_skipped_without_a_driver(host):
    assert host.service("llmfleet-gpu-settings").is_enabled
    host.run_expect([0], "systemctl start llmfleet-gpu-settings.service")
    show = host.check_output("systemctl show -p ConditionResult -p ActiveState -p Result llmfleet-gpu-settings.service")
    assert "ConditionResult=no" in show and "Result=success" in show
    assert "failed" not in host.check_output("systemctl is-failed llmfleet-gpu-settings.service || true")


def test_gpu_step_skipped_with_its_message():
    run = _role()
    assert run.returncode == 0, run.stdout + run.stderr
    out = " ".join(run.stdout.split())
    assert "gpu_tuning: GPU settings skipped on gpu_tuning: no NVIDIA GPU on this host." in out
    assert "changed=0" in out


@pytest.mark.parametrize("extra, named", [
    ('{"gpu_tuning_profile": "turbo"}', "profile 'turbo'"),
    ('{"gpu_tuning_power_cap_w": 0}', "power_capped needs gpu_tuning_power_cap_w > 0"),
    ('{"gpu_tuning_power_limit": "lots"}', "gpu_tuning_power_limit: 'lots' is not accepted"),
    ('{"gpu_tuning_application_clocks": {"memory": 2619}}', "gpu_tuning_application_clocks: {'memory': 2619} is not accepted"),
    ('{"gpu_tuning_locked_clocks": {"min": 2000, "max": 1000}}', "min 2000 MHz is above max 1000 MHz"),
    ('{"gpu_tuning_gpus": ["GPU0"]}', "gpu_tuning_gpus: 'GPU0' is not a GPU index"),
    ('{"gpu_tuning_boot_unit": "sometimes"}', "gpu_tuning_boot_unit"),
])
def test_bad_input_fails_before_any_change(host, extra, named):
    before = host.check_output("md5sum %s" % UNIT)
    run = _role(extra, '{"gpu_tuning_power_cap_w": 450}' if "power_cap_w" not in extra else "{}")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert named in out, out
    assert "changed=0" in out, out
    assert host.check_output("md5sum %s" % UNIT) == before
