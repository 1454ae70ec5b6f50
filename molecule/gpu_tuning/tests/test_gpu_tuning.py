"""gpu_tuning on a GPU-less instance, seen from outside: nvidia-ml-py in its virtualenv, the
desired state written once and the boot unit that applies it, enabled and quietly skipped by
systemd without a driver; the unit's own command run by hand against the FAKE NVML binding (the
boot path through the collection's code, as on a GPU host after a reboot); the GPU step skipped
with its message, and bad input refused before any change."""
import base64
import json
import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)

SCENARIO = scenario.scenario_dir()
UNIT = "/etc/systemd/system/llmfleet-gpu-settings.service"
DESIRED = "/opt/llmfleet/gpu-settings/desired-state.json"
DEFAULTS = os.path.join(SCENARIO, "..", "..", "roles", "gpu_tuning", "defaults", "main.yml")
FAKES = os.path.join(SCENARIO, "..", "..", "tests", "unit", "fakes")
FAKE_DIR = "/tmp/fake-nvml"  # the FAKE pynvml, only for the test's own runs of the command


def _role(*extra_vars):
    return scenario.playbook("converge.yml", *scenario.extra_vars(*extra_vars), timeout=300)


def test_nvml_binding_installed_from_the_wheelhouse(host):
    out = host.check_output("/opt/llmfleet/nvml/bin/python -c 'import pynvml, importlib.metadata as m;"
                            " print(m.version(\"nvidia-ml-py\"))'")
    with open(DEFAULTS) as handle:
        assert out == yaml.safe_load(handle)["gpu_tuning_nvml_version"]


def _exec_start(host):
    unit = host.file(UNIT).content_string
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]


def test_desired_state_is_the_settings_of_the_selected_gpu(host):
    desired = host.file(DESIRED)
    assert desired.mode == 0o644 and desired.user == "root"
    # No nvidia-persistenced on this host yet, so the boot unit applies persistence itself.
    assert json.loads(desired.content_string) == {
        "format": 1, "persistence_daemon": False,
        "options": {"gpus": ["0"], "state_file": "/var/lib/llmfleet/nvidia-gpu-state.json",
                    "persistence_mode": True, "compute_mode": "default", "power_limit": 500,
                    "application_clocks": {"memory": 2619, "graphics": 1980}}}


def test_boot_unit_runs_the_collection_code_on_the_desired_state(host):
    unit = host.file(UNIT)
    assert unit.mode == 0o644 and unit.user == "root"
    assert _exec_start(host) == ["/opt/llmfleet/nvml/bin/python /opt/llmfleet/gpu-settings/llmfleet_gpu_settings.py %s" % DESIRED]
    assert "ConditionPathExists=/dev/nvidiactl" in unit.content_string
    utils = "/opt/llmfleet/gpu-settings/ansible_collections/llmfleet/deepseek/plugins/module_utils"
    for name in ("nvml.py", "gpu_settings.py"):
        with open(os.path.join(SCENARIO, "..", "..", "plugins", "module_utils", name)) as handle:
            assert host.file("%s/%s" % (utils, name)).content_string == handle.read()
    assert host.run("/opt/llmfleet/nvml/bin/python -c 'import ansible'").rc != 0, "the boot needs no Ansible"


def test_boot_unit_command_applies_the_desired_state_through_nvml(host):
    """The unit's ExecStart, run by hand with the FAKE NVML binding first on its path (the
    instance has no GPU): what a GPU host runs after a reboot, through the nvidia_gpu module's
    code. A --check first, then the run, then a second run that changes nothing."""
    host.run_expect([0], "mkdir -p %s" % FAKE_DIR)
    for name in ("fake_pynvml.py", os.path.join("pynvml_process", "pynvml.py")):
        with open(os.path.join(FAKES, name), "rb") as handle:
            text = base64.b64encode(handle.read()).decode()
        host.run_expect([0], "echo %s | base64 -d > %s/%s" % (text, FAKE_DIR, os.path.basename(name)))
    env = "env PYTHONPATH=%s FAKE_NVML_STATE=%s/gpus.json " % (FAKE_DIR, FAKE_DIR)
    command = _exec_start(host)[0]
    host.run("rm -f %s/gpus.json" % FAKE_DIR)
    check = host.run(env + command + " --check")
    assert check.rc == 0, check.stderr
    assert check.stdout.splitlines()[-1] == "check: 2 setting(s) would change on 1 GPU(s)"
    first = host.run(env + command + " --json")
    assert first.rc == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["gpus"][0]["changes"] == {"persistence_mode": {"before": False, "after": True},
                                            "power_limit": {"before": 700, "after": 500}}
    again = host.run(env + command)
    assert again.rc == 0 and again.stdout.splitlines() == ["0 setting(s) changed on 1 GPU(s)"], again.stdout + again.stderr
    kept = json.loads(host.file("%s/gpus.json" % FAKE_DIR).content_string)
    assert kept["setters"] == ["nvmlDeviceSetPersistenceMode", "nvmlDeviceSetPowerManagementLimit"]
    assert kept["gpus"][0]["power_limit"] == 500000
    # Without the fake the real nvidia-ml-py finds no driver, and the command says so (the unit's
    # condition keeps systemd from running it on such a host).
    real = host.run(command)
    assert real.rc == 1 and "NVML is unavailable on this host" in real.stderr, real.stderr


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
    before = host.check_output("md5sum %s %s" % (UNIT, DESIRED))
    run = _role(extra, '{"gpu_tuning_power_cap_w": 450}' if "power_cap_w" not in extra else "{}")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert named in out, out
    assert "changed=0" in out, out
    assert host.check_output("md5sum %s %s" % (UNIT, DESIRED)) == before
