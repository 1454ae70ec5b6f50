"""nvidia_gpu_info against the FAKE NVML binding (tests/unit/fakes/fake_pynvml.py)."""
import json

import pytest

from ansible_collections.llmfleet.deepseek.plugins.modules import nvidia_gpu_info
from fakes.fake_pynvml import FakePynvml, NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_UNKNOWN, h100
from module_runner import loader_for, run_module

VERSION_OPEN = ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build"
                "  (dvs-builder@U22-I3-AF03-09-1)  Thu Oct 30 00:00:00 UTC 2025\n")
VERSION_PROPRIETARY = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.261.03  Wed Sep 10 00:00:00 UTC 2025\n"


@pytest.fixture
def sysfs(tmp_path):
    """A PCI tree and a driver version file; returns (pci_root, version_file, add_device)."""
    pci = tmp_path / "pci"
    pci.mkdir()

    def add(bus_id, vendor, klass):
        dev = pci / bus_id
        dev.mkdir()
        (dev / "vendor").write_text(vendor + "\n")
        (dev / "class").write_text(klass + "\n")

    add("0000:00:00.0", "0x8086", "0x060000")
    version = tmp_path / "version"
    return pci, version, add


def run(monkeypatch, args, lib, sysfs_fixture):
    pci, version = sysfs_fixture[0], sysfs_fixture[1]
    return run_module(monkeypatch, nvidia_gpu_info, args, lambda module: nvidia_gpu_info.GpuInfo(
        module, loader=loader_for(lib), pci_root=str(pci), version_file=str(version)))


def test_reads_a_full_h100(monkeypatch, sysfs):
    sysfs[1].write_text(VERSION_OPEN)
    sysfs[2]("0000:18:00.0", "0x10de", "0x030200")
    done = run(monkeypatch, {}, FakePynvml(), sysfs)
    assert not done.failed
    res = done.result
    assert res["changed"] is False and res["present"] is True
    assert res["nvml"] == {"available": True, "reason": None}
    assert res["host"] == {"driver_version": "580.159.04", "cuda_driver_version": "13.0",
                           "nvml_version": "13.580.159.04", "kernel_module": "open",
                           "kernel_module_version": "580.159.04", "gpu_count": 1}
    gpu = res["gpus"][0]
    assert gpu["index"] == 0 and gpu["name"] == "NVIDIA H100 80GB HBM3"
    assert gpu["pci_bus_id"] == "00000000:18:00.0"  # bytes from the binding become text
    assert gpu["memory_total_mib"] == 81559
    assert gpu["architecture"] == "hopper" and gpu["compute_capability"] == "9.0"
    assert gpu["persistence_mode"] is True and gpu["compute_mode"] == "default"
    assert gpu["mig_mode"] == {"current": False, "pending": False}
    assert gpu["ecc_mode"] == {"current": True, "pending": True}
    assert gpu["application_clocks"] == {"graphics": 1980, "memory": 2619}
    assert gpu["default_application_clocks"] == {"graphics": 1980, "memory": 2619}
    assert gpu["max_clocks"] == {"graphics": 1980, "sm": 1980, "memory": 2619}
    assert gpu["supported_memory_clocks"] == [2619, 1593]
    assert len(gpu["supported_graphics_clocks"]["2619"]) == 110
    assert gpu["supported_graphics_clocks"]["2619"][0] == 1980
    assert (gpu["power_limit_w"], gpu["power_limit_default_w"]) == (700, 700)
    assert (gpu["power_limit_min_w"], gpu["power_limit_max_w"]) == (200, 700)
    assert gpu["temperature_c"] == 31 and gpu["clock_event_reasons"] == ["gpu_idle"]
    assert gpu["nvlink"] == {"links": 0, "active": 0} and gpu["fabric"] is None
    assert res["topology"] == {"gpu_count": 1, "nvlink_gpus": 0, "nvswitch_count": 0,
                               "fabric_manager_needed": False, "architectures": ["hopper"]}
    assert isinstance(res["elapsed_ms"], float)
    json.dumps(res)  # what Ansible sends back must serialise


def test_one_nvml_session_and_no_setter_called(monkeypatch, sysfs):
    lib = FakePynvml(gpus=[h100(0), h100(1)])
    run(monkeypatch, {}, lib, sysfs)
    assert lib.calls.count("nvmlInit") == 1 and lib.calls.count("nvmlShutdown") == 1
    assert lib.initialised == 0
    assert not [c for c in lib.calls if any(w in c for w in ("Set", "Reset", "Clear"))]


def test_selection_by_index_and_uuid_in_the_order_asked(monkeypatch, sysfs):
    lib = FakePynvml(gpus=[h100(i) for i in range(8)])
    done = run(monkeypatch, {"gpus": ["GPU-00000000-0000-4000-8000-000000000005", "2", "5"]}, lib, sysfs)
    assert [g["index"] for g in done.result["gpus"]] == [5, 2]
    assert done.result["host"]["gpu_count"] == 8 and done.result["topology"]["gpu_count"] == 8


def test_unknown_gpu_fails_naming_what_exists(monkeypatch, sysfs):
    lib = FakePynvml(gpus=[h100(0), h100(1)])
    done = run(monkeypatch, {"gpus": ["7", "GPU-00000000-0000-4000-8000-000000000009"]}, lib, sysfs)
    assert done.failed
    assert done.result["msg"].startswith(
        "gpus: no GPU 7, GPU-00000000-0000-4000-8000-000000000009 on this host; it has 2 GPU(s): indices 0-1")
    assert "GPU-00000000-0000-4000-8000-000000000001" in done.result["msg"]
    assert lib.initialised == 0  # the session was closed


def test_unsupported_fields_read_as_none(monkeypatch, sysfs):
    gpu = h100(0, unsupported={"nvmlDeviceGetSerial", "nvmlDeviceGetMigMode", "nvmlDeviceGetApplicationsClock",
                               "nvmlDeviceGetPowerManagementLimitConstraints"})
    done = run(monkeypatch, {}, FakePynvml(gpus=[gpu]), sysfs)
    g = done.result["gpus"][0]
    assert g["serial"] is None and g["mig_mode"] is None
    assert g["application_clocks"] == {"graphics": None, "memory": None}
    assert g["power_limit_min_w"] is None and g["power_limit_w"] == 700


def test_nvlink_and_fabric_make_fabric_manager_needed(monkeypatch, sysfs):
    gpus = [h100(i, nvlinks=[1] * 18, fabric={"state": 3, "clique": 7}) for i in range(2)]
    for i in range(2):
        sysfs[2]("0000:%02x:00.0" % (0x18 + i), "0x10de", "0x030200")
    sysfs[2]("0000:05:00.0", "0x10de", "0x068000")  # an NVSwitch
    done = run(monkeypatch, {}, FakePynvml(gpus=gpus), sysfs)
    res = done.result
    assert res["gpus"][0]["nvlink"] == {"links": 18, "active": 18}
    assert res["gpus"][0]["fabric"] == {"state": "completed", "status": 0, "clique_id": 7}
    assert res["pci"]["nvswitches"] == ["0000:05:00.0"] and len(res["pci"]["gpus"]) == 2
    assert res["topology"]["nvlink_gpus"] == 2 and res["topology"]["nvswitch_count"] == 1
    assert res["topology"]["fabric_manager_needed"] is True


def test_missing_library_fails_with_missing_required_lib(monkeypatch, sysfs):
    done = run(monkeypatch, {}, None, sysfs)
    assert done.failed and "nvidia-ml-py" in done.result["msg"]
    assert "exception" in done.result


def test_missing_library_tolerated_keeps_the_pci_view(monkeypatch, sysfs):
    sysfs[2]("0000:18:00.0", "0x10de", "0x030200")
    done = run(monkeypatch, {"allow_unavailable": True}, None, sysfs)
    res = done.result
    assert not done.failed
    assert res["present"] is True and res["nvml"]["available"] is False
    assert res["nvml"]["reason"] == "nvidia-ml-py (pynvml) is not installed"
    assert res["host"]["gpu_count"] == 1 and res["host"]["driver_version"] is None
    assert res["host"]["kernel_module"] is None  # no driver loaded: no version file


def test_driver_not_loaded_is_a_clear_message(monkeypatch, sysfs):
    done = run(monkeypatch, {}, FakePynvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED), sysfs)
    assert done.failed
    assert done.result["msg"] == ("NVML is unavailable on this host: the NVIDIA driver is not loaded "
                                  "(nvmlInit: Driver Not Loaded (NVML code 9))")


def test_no_gpu_host_tolerated(monkeypatch, sysfs):
    done = run(monkeypatch, {"allow_unavailable": True}, FakePynvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED), sysfs)
    assert done.result["present"] is False and done.result["gpus"] == []
    assert done.result["topology"]["gpu_count"] == 0


def test_other_nvml_errors_become_messages_not_tracebacks(monkeypatch, sysfs):
    gpu = h100(0)
    lib = FakePynvml(gpus=[gpu])

    def broken(handle):
        raise lib.NVMLError(NVML_ERROR_UNKNOWN)

    lib.nvmlDeviceGetTemperature = lambda h, s: broken(h)
    done = run(monkeypatch, {}, lib, sysfs)
    assert done.failed
    assert done.result["msg"] == "NVML failed while reading GPU facts: Unknown Error (NVML code 999)"
    assert lib.initialised == 0


def test_proprietary_module_flavour(monkeypatch, sysfs):
    sysfs[1].write_text(VERSION_PROPRIETARY)
    done = run(monkeypatch, {}, FakePynvml(driver="535.261.03"), sysfs)
    assert done.result["host"]["kernel_module"] == "proprietary"
    assert done.result["host"]["kernel_module_version"] == "535.261.03"


# --------------------------------------------------------------------------------------------- the gpus selector
# A selector of the wrong form is refused before NVML is touched, on any host; a selection NVML
# could not check warns (allow_unavailable) or fails where it can only be wrong (issue 24, class 6).

UUID_5 = "GPU-00000000-0000-4000-8000-000000000005"
# The rule and its wording are gpu_settings.parse_selectors' (nvidia_gpu and gpu_tuning judge with it too).
FORMS = "is not a GPU index (0, 1, ...) or a GPU uuid (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, as nvidia-smi -L prints it)"


@pytest.fixture
def warned(monkeypatch):
    warnings = []
    monkeypatch.setattr(nvidia_gpu_info.AnsibleModule, "warn", lambda self, msg: warnings.append(msg))
    return warnings


@pytest.mark.parametrize("entry", ["-1", "+1", "1.0", "0x1", "one", "", "  ", "GPU-nope", "GPU-00000000-0000-4000-8000-00000000000",
                                   "GPU-00000000-0000-4000-8000-00000000000g", "00000000-0000-4000-8000-000000000005",
                                   "gpu 0", "0 1", "\u0663", "\u00b2", "all"])
@pytest.mark.parametrize("lib, allow", [(FakePynvml(gpus=[h100(i) for i in range(2)]), False), (None, True),
                                        (FakePynvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED), True)],
                         ids=["gpu-host", "no-nvidia-ml-py", "no-driver"])
def test_a_selector_of_the_wrong_form_is_refused_on_any_host_before_nvml(monkeypatch, sysfs, entry, lib, allow):
    if lib is not None:
        lib.calls.clear()
    done = run(monkeypatch, {"gpus": ["0", entry], "allow_unavailable": allow}, lib, sysfs)
    assert done.failed
    assert done.result["msg"] == "gpus: %r %s" % (entry, FORMS)
    assert lib is None or lib.calls == []


def test_a_mig_uuid_is_refused_saying_so(monkeypatch, sysfs):
    mig = "MIG-4f1c9a3e-7d2b-5e8f-9a1c-2b3d4e5f6a7b"
    done = run(monkeypatch, {"gpus": [mig, "x"]}, FakePynvml(), sysfs)
    assert done.failed and done.result["msg"] == (
        "gpus: %r is a MIG device; give the parent GPU's index or uuid (settings and facts are per whole GPU); gpus: 'x' %s"
        % (mig, FORMS))


@pytest.mark.parametrize("entries, indices", [
    ([" 1", "01"], [1]), ([UUID_5.upper(), "gpu-" + UUID_5[4:]], [5]), ([7, "3"], [7, 3]),
])
def test_selectors_are_read_as_select_takes_them(monkeypatch, sysfs, entries, indices):
    done = run(monkeypatch, {"gpus": entries}, FakePynvml(gpus=[h100(i) for i in range(8)]), sysfs)
    assert not done.failed, done.result
    assert [g["index"] for g in done.result["gpus"]] == indices


@pytest.mark.parametrize("lib, reason", [
    (None, "nvidia-ml-py (pynvml) is not installed"),
    (FakePynvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED), "the NVIDIA driver is not loaded (nvmlInit: Driver Not Loaded (NVML code 9))"),
], ids=["no-nvidia-ml-py", "no-driver"])
@pytest.mark.parametrize("pci_gpus", [0, 2])
def test_a_selection_nvml_could_not_check_warns_naming_it(monkeypatch, sysfs, warned, lib, reason, pci_gpus):
    for i in range(pci_gpus):
        sysfs[2]("0000:%02x:00.0" % (0x18 + i), "0x10de", "0x030200")
    done = run(monkeypatch, {"gpus": ["1", UUID_5], "allow_unavailable": True}, lib, sysfs)
    assert not done.failed and done.result["gpus"] == [] and done.result["nvml"]["available"] is False
    seen = "the PCI bus shows 2 NVIDIA GPU(s)" if pci_gpus else "the PCI bus shows no NVIDIA GPU"
    assert warned == ["gpus: 1, %s could not be checked: NVML is unavailable on this host (%s); %s, no per-GPU facts were read"
                      % (UUID_5, reason, seen)]


def test_without_nvml_an_index_past_the_pci_gpus_fails_naming_them(monkeypatch, sysfs, warned):
    sysfs[2]("0000:18:00.0", "0x10de", "0x030200")
    sysfs[2]("0000:28:00.0", "0x10de", "0x030200")
    done = run(monkeypatch, {"gpus": ["0", "2", "9"], "allow_unavailable": True}, None, sysfs)
    assert done.failed and warned == []
    assert done.result["msg"] == ("gpus: no GPU 2, 9 on this host; the PCI bus shows 2 NVIDIA GPU(s) (0000:18:00.0, 0000:28:00.0), "
                                  "and NVML is unavailable on this host (nvidia-ml-py (pynvml) is not installed)")


def test_a_selection_on_a_host_nvml_sees_no_gpu_on_warns_or_fails(monkeypatch, sysfs, warned):
    tolerated = run(monkeypatch, {"gpus": ["0"], "allow_unavailable": True}, FakePynvml(gpus=[]), sysfs)
    assert not tolerated.failed and tolerated.result["gpus"] == [] and tolerated.result["nvml"]["available"] is True
    assert warned == ["gpus: 0 could not be checked: NVML sees no GPU on this host; the PCI bus shows no NVIDIA GPU, "
                      "no per-GPU facts were read"]
    strict = run(monkeypatch, {"gpus": ["0", UUID_5]}, FakePynvml(gpus=[]), sysfs)
    assert strict.failed and strict.result["msg"] == (
        "gpus: no GPU 0, %s on this host; NVML sees no GPU (allow_unavailable: true gathers facts on such a host with a warning)"
        % UUID_5)


def test_no_selection_warns_about_nothing(monkeypatch, sysfs, warned):
    done = run(monkeypatch, {"allow_unavailable": True}, None, sysfs)
    assert not done.failed and warned == []
