"""gpu_tuning's boot path: llmfleet-gpu-settings.service runs the role's entry point
(roles/gpu_tuning/files/llmfleet_gpu_settings.py) on the desired-state file, with the collection's
gpu_settings.py and nvml.py copied next to it - the code the nvidia_gpu module runs. Proven here
against the FAKE NVML binding (tests/unit/fakes): in-process, as a process without Ansible in the
host's layout, and on the document and unit the role itself renders."""
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.llmfleet.deepseek.plugins.module_utils import gpu_settings as gs
from ansible_collections.llmfleet.deepseek.plugins.module_utils import inputs
from fakes.fake_pynvml import NVML_ERROR_DRIVER_NOT_LOADED, FakePynvml, h100
from module_runner import loader_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLE = os.path.join(ROOT, "roles", "gpu_tuning")
FAKES = os.path.join(ROOT, "tests", "unit", "fakes")
UUID0 = "GPU-00000000-0000-4000-8000-000000000000"


def document(tmp_path, options, persistence_daemon=False):
    options = dict({"state_file": str(tmp_path / "state" / "nvidia-gpu-state.json")}, **options)
    path = tmp_path / "gpu-settings.json"
    path.write_text(json.dumps({"format": 1, "options": options, "persistence_daemon": persistence_daemon}))
    return str(path)


def cli(args, lib):
    out, err = io.StringIO(), io.StringIO()
    code = gs.cli(args, loader=loader_for(lib), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def booted(index=0, **over):
    """An H100 as after a boot: persistence off, everything else at its default."""
    return h100(index, persistence=0, **over)


# -- in-process ---------------------------------------------------------------------------------
def test_boot_applies_what_differs_and_reads_back(tmp_path):
    lib = FakePynvml(gpus=[booted()])
    doc = document(tmp_path, {"gpus": ["0"], "persistence_mode": True, "power_limit": 500, "compute_mode": "default",
                              "application_clocks": {"memory": 2619, "graphics": 1980}})
    code, out, err = cli([doc], lib)
    assert (code, err) == (0, "")
    assert out.splitlines() == ["GPU 0 (%s): persistence_mode false -> true" % UUID0,
                                "GPU 0 (%s): power_limit 700 -> 500" % UUID0,
                                "2 setting(s) changed on 1 GPU(s)"]
    assert lib.setters_called() == ["nvmlDeviceSetPersistenceMode", "nvmlDeviceSetPowerManagementLimit"]
    assert lib.gpus[0]["persistence"] == 1 and lib.gpus[0]["power_limit"] == 500000
    lib.calls.clear()
    assert cli([doc], lib)[1].splitlines() == ["0 setting(s) changed on 1 GPU(s)"]
    assert lib.setters_called() == []


def test_check_says_what_would_change_and_sets_nothing(tmp_path):
    lib = FakePynvml(gpus=[booted(), booted(1)])
    doc = document(tmp_path, {"power_limit": 450})
    code, out, err = cli(["--check", "--json", doc], lib)
    result = json.loads(out)
    assert code == 0 and err == "" and result["check"] is True and result["changed"] is True and result["changes"] == 2
    assert result["gpus"][1]["changes"] == {"power_limit": {"before": 700, "after": 450}}
    assert lib.setters_called() == [] and not (tmp_path / "state").exists()


def test_persistence_is_left_to_nvidia_persistenced_when_the_document_says_so(tmp_path):
    lib = FakePynvml(gpus=[booted()])
    code, out, err = cli([document(tmp_path, {"persistence_mode": True, "power_limit": 500}, persistence_daemon=True)], lib)
    assert (code, err) == (0, "") and lib.setters_called() == ["nvmlDeviceSetPowerManagementLimit"]
    assert "persistence_mode" not in out


def test_a_lock_is_set_again_at_boot_whatever_the_record_says(tmp_path):
    """NVML cannot read locked clocks back; the record says what was set before the boot, which
    the driver forgot. The boot entry sets the lock again and keeps the record."""
    doc = document(tmp_path, {"locked_clocks": {"min": 1755, "max": 1980}})
    state = tmp_path / "state" / "nvidia-gpu-state.json"
    state.parent.mkdir()
    state.write_text(json.dumps({UUID0: {"min": 1755, "max": 1980}}))
    lib = FakePynvml(gpus=[booted()])
    assert cli([doc], lib)[0] == 0
    assert lib.gpus[0]["locked"] == (1755, 1980) and lib.setters_called() == ["nvmlDeviceSetGpuLockedClocks"]
    assert json.loads(state.read_text()) == {UUID0: {"min": 1755, "max": 1980}}


def test_a_stale_lock_record_is_dropped_at_boot(tmp_path):
    """After a boot no GPU is locked: a record of an old lock would make the next Ansible run
    report a false drift, so the boot entry rewrites it."""
    state = tmp_path / "state" / "nvidia-gpu-state.json"
    state.parent.mkdir()
    state.write_text(json.dumps({UUID0: {"min": 1755, "max": 1980}}))
    lib = FakePynvml(gpus=[booted()])
    assert cli([document(tmp_path, {"locked_clocks": "reset"})], lib)[0] == 0
    assert lib.setters_called() == [] and json.loads(state.read_text()) == {}


@pytest.mark.parametrize("lib, options, message", [
    (FakePynvml(gpus=[booted()]), {"power_limit": 900},
     "nothing was changed on any GPU: GPU 0 (%s): power_limit 900 W is outside what it accepts (200-700 W)" % UUID0),
    (FakePynvml(gpus=[booted()]), {"gpus": ["3"], "power_limit": 500}, "gpus: no GPU 3 on this host; it has 1 GPU(s)"),
    (FakePynvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED), {"power_limit": 500},
     "NVML is unavailable on this host: the NVIDIA driver is not loaded"),
    (None, {"power_limit": 500}, "nvidia-ml-py is not installed for"),
    (FakePynvml(gpus=[booted(refused={"nvmlDeviceSetPowerManagementLimit"})]), {"power_limit": 500},
     "setting power_limit to 500 failed: Insufficient Permissions (NVML code 4) - NVML refuses it to this user (run as root)"),
])
def test_what_cannot_be_applied_fails_the_unit_saying_why(tmp_path, lib, options, message):
    code, out, err = cli([document(tmp_path, options)], lib)
    assert code == 1 and out == ""
    assert err.startswith("llmfleet-gpu-settings: ") and message in err, err


def test_validate_judges_the_document_without_nvml(tmp_path):
    lib = FakePynvml()
    assert cli(["--validate", document(tmp_path, {"power_limit": 500})], lib) == (0, "", "")
    code, out, err = cli(["--validate", document(tmp_path, {"power_limit": "lots", "gpus": ["GPU0"]})], lib)
    assert code == 1 and out == "" and "gpus: 'GPU0' is not a GPU index" in err and "power_limit: 'lots' is not accepted" in err
    assert lib.calls == []


# -- as a process, in the host's layout, without Ansible ---------------------------------------
def host_layout(root):
    """What the role's copy task puts on the host (vars/main.yml: __gpu_tuning_runtime_files)."""
    utils = root / "ansible_collections" / "llmfleet" / "deepseek" / "plugins" / "module_utils"
    utils.mkdir(parents=True)
    for name in ("nvml.py", "gpu_settings.py"):
        shutil.copy(os.path.join(ROOT, "plugins", "module_utils", name), str(utils / name))
    shutil.copy(os.path.join(ROLE, "files", "llmfleet_gpu_settings.py"), str(root / "llmfleet_gpu_settings.py"))
    return str(root / "llmfleet_gpu_settings.py")


def run_entry(entry, args, fake_state, **env):
    # -S: no site-packages, so neither Ansible nor nvidia-ml-py can be imported; the FAKE pynvml
    # comes from PYTHONPATH.
    env = dict(os.environ, PYTHONPATH=os.path.join(FAKES, "pynvml_process"), FAKE_NVML_STATE=str(fake_state), **env)
    return subprocess.run([sys.executable, "-S", entry] + args, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_the_entry_runs_in_the_host_layout_without_ansible(tmp_path):
    entry = host_layout(tmp_path / "opt")
    fake = tmp_path / "fake-gpus.json"
    doc = document(tmp_path, {"gpus": ["0"], "persistence_mode": True, "power_limit": 500})
    check = run_entry(entry, ["--check", doc], fake)
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[-1] == "check: 2 setting(s) would change on 1 GPU(s)"
    assert json.loads(fake.read_text())["setters"] == []
    first = run_entry(entry, [doc], fake)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "2 setting(s) changed on 1 GPU(s)"
    again = run_entry(entry, [doc], fake)
    assert again.stdout.splitlines() == ["0 setting(s) changed on 1 GPU(s)"]
    kept = json.loads(fake.read_text())
    assert kept["gpus"][0]["power_limit"] == 500000 and kept["gpus"][0]["persistence"] == 1
    assert kept["setters"] == ["nvmlDeviceSetPersistenceMode", "nvmlDeviceSetPowerManagementLimit"]


def test_the_entry_imports_no_ansible(tmp_path):
    entry = host_layout(tmp_path / "opt")
    probe = ("import runpy, sys; sys.argv = [%r, '--validate', %r]\n"
             "try:\n    runpy.run_path(%r, run_name='__main__')\nexcept SystemExit as done:\n    code = done.code\n"
             "print(code, sorted(m for m in sys.modules if m == 'ansible' or m.startswith('ansible.')))"
             % (entry, document(tmp_path, {"power_limit": 500}), entry))
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() == "0 []", done.stdout + done.stderr


def test_without_a_driver_the_entry_fails_naming_why(tmp_path):
    entry = host_layout(tmp_path / "opt")
    done = run_entry(entry, [document(tmp_path, {"power_limit": 500})], tmp_path / "fake.json",
                     FAKE_NVML_INIT_ERROR=str(NVML_ERROR_DRIVER_NOT_LOADED))
    assert done.returncode == 1
    assert done.stderr.startswith("llmfleet-gpu-settings: NVML is unavailable on this host: the NVIDIA driver is not loaded")


# -- what the role renders ----------------------------------------------------------------------
def test_the_role_takes_its_settings_from_its_variables_without_a_list():
    """vars/main.yml passes all the role's variables; the gpu_tuning_<setting> ones that are set
    override the profile, the others are not settings."""
    profiles = {"capped": {"persistence_mode": True, "power_limit": 500}}
    values = {"gpu_tuning_power_limit": 450, "gpu_tuning_compute_mode": None, "gpu_tuning_venv": "/opt/llmfleet/nvml",
              "gpu_tuning_gpus": ["0"], "gpu_tuning_locked_clocks": "reset"}
    assert inputs.gpu_tuning_settings(profiles, "capped", values) == {
        "persistence_mode": True, "power_limit": 450, "locked_clocks": "reset"}


PLAYBOOK = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: Load the role's variables (its controller check, which touches no host)
      ansible.builtin.include_role:
        name: gpu_tuning
        tasks_from: validate_inputs.yml
        public: true
    - name: Render the desired state and the unit as the role's boot tasks do
      ansible.builtin.copy:
        content: "{{ item.content }}"
        dest: "{{ out }}/{{ item.name }}"
        mode: "0644"
      loop:
        - {name: gpu-settings.json, content: "{{ __gpu_tuning_desired | to_nice_json(sort_keys=true) }}"}
        - {name: options.json, content: "{{ __gpu_tuning_options | to_nice_json(sort_keys=true) }}"}
        - {name: unit, content: "{{ lookup('ansible.builtin.template', role_path ~ '/templates/llmfleet-gpu-settings.service.j2') }}"}
      vars:
        role_path: %(role)s
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("render")
    (tmp / "play.yml").write_text(PLAYBOOK % {"role": ROLE})
    extra = {"out": str(tmp), "ansible_python_interpreter": sys.executable, "llmfleet_gpu": {"present": False},
             "gpu_tuning_gpus": ["0"], "gpu_tuning_profile": "power_capped", "gpu_tuning_power_cap_w": 500,
             "gpu_tuning_application_clocks": {"memory": 2619, "graphics": 1980}, "gpu_tuning_compute_mode": "default"}
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    done = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", json.dumps(extra), str(tmp / "play.yml")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp


def test_the_role_writes_the_options_it_passes_to_nvidia_gpu(rendered):
    doc = json.loads((rendered / "gpu-settings.json").read_text())
    assert doc == {"format": 1, "persistence_daemon": False, "options": json.loads((rendered / "options.json").read_text())}
    assert doc["options"] == {"gpus": ["0"], "state_file": "/var/lib/llmfleet/nvidia-gpu-state.json",
                              "persistence_mode": True, "power_limit": 500, "compute_mode": "default",
                              "application_clocks": {"memory": 2619, "graphics": 1980}}
    assert gs.document_problems(doc) == []


def test_the_unit_runs_the_entry_on_the_document(rendered):
    unit = (rendered / "unit").read_text()
    execs = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert execs == ["/opt/llmfleet/nvml/bin/python /opt/llmfleet/gpu-settings/llmfleet_gpu_settings.py /opt/llmfleet/gpu-settings/desired-state.json"]
    assert "ConditionPathExists=/dev/nvidiactl" in unit and "nvidia-smi" not in unit


def test_the_rendered_document_applies_through_the_fake_nvml(rendered, tmp_path):
    doc = json.loads((rendered / "gpu-settings.json").read_text())
    doc["options"]["state_file"] = str(tmp_path / "state.json")
    path = tmp_path / "gpu-settings.json"
    path.write_text(json.dumps(doc))
    lib = FakePynvml(gpus=[booted()])
    code, out, err = cli([str(path)], lib)
    assert (code, err) == (0, ""), err
    assert lib.gpus[0]["power_limit"] == 500000 and lib.gpus[0]["persistence"] == 1
    assert out.splitlines()[-1] == "2 setting(s) changed on 1 GPU(s)"
