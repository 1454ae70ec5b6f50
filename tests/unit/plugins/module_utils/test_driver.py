"""The nvidia_driver parsers and coherence rules, fed the text real tools print."""
import pytest

from ansible_collections.llmfleet.deepseek.plugins.module_utils import driver


@pytest.mark.parametrize("package_version,upstream", [
    ("580.95.05-0ubuntu0.24.04.2", "580.95.05"),
    ("1:535.261.03-1", "535.261.03"),
    ("535.261.03-1~deb12u1", "535.261.03"),
    ("580.82.07-1ubuntu1", "580.82.07"),
    ("6.8.0-85.85+1", "6.8.0"),
    ("", None),
    (None, None),
])
def test_upstream_version(package_version, upstream):
    assert driver.upstream_version(package_version) == upstream


@pytest.mark.parametrize("actual,wanted,ok", [
    ("580.95.05", "580", True),
    ("580.95.05", "580.95", True),
    ("580.95.05", "580.95.05", True),
    ("580.95.05", "580.95.0", False),
    ("570.195.03", "580", False),
    ("5800.1", "580", False),
    (None, "580", False),
    ("580.95.05", "", False),
])
def test_version_matches(actual, wanted, ok):
    assert driver.version_matches(actual, wanted) is ok


@pytest.mark.parametrize("text,rc,enabled,enforcing", [
    ("SecureBoot enabled\n", 0, True, True),
    ("SecureBoot enabled\nSecureBoot validation is disabled in shim\n", 0, True, False),
    ("SecureBoot disabled\n", 0, False, False),
    ("This system doesn't support Secure Boot\n", 255, False, False),
    ("EFI variables are not supported on this system\n", 255, False, False),
    ("Failed to read SecureBoot\n", 1, None, None),
    ("", 127, None, None),
])
def test_mokutil_sb_state(text, rc, enabled, enforcing):
    state = driver.parse_mokutil_sb_state(text, rc)
    assert (state["enabled"], state["enforcing"]) == (enabled, enforcing)
    assert state["detail"]


@pytest.mark.parametrize("data,enabled", [
    (b"\x06\x00\x00\x00\x01", True),
    (b"\x06\x00\x00\x00\x00", False),
    (None, False),
    (b"\x06\x00", None),
])
def test_secure_boot_efivar(data, enabled):
    assert driver.parse_secure_boot_efivar(data)["enabled"] is enabled


MODINFO_OPEN = """filename:       /lib/modules/6.8.0-85-generic/kernel/nvidia-580srv-open/nvidia.ko
import_ns:      DMA_BUF
alias:          char-major-195-*
version:        580.95.05
supported:      external
license:        Dual MIT/GPL
firmware:       nvidia/580.95.05/gsp_tu10x.bin
vermagic:       6.8.0-85-generic SMP preempt mod_unload modversions
signer:         Canonical Ltd. Kernel Module Signing
sig_key:        4A:...
"""
MODINFO_PROPRIETARY = """filename:       /lib/modules/6.1.0-41-amd64/updates/dkms/nvidia-current.ko
alias:          char-major-195-*
version:        535.261.03
supported:      external
license:        NVIDIA
vermagic:       6.1.0-41-amd64 SMP preempt mod_unload modversions
"""


def test_modinfo_open_signed():
    found = driver.parse_modinfo(MODINFO_OPEN)
    assert found == {"version": "580.95.05", "flavour": "open", "signer": "Canonical Ltd. Kernel Module Signing",
                     "filename": "/lib/modules/6.8.0-85-generic/kernel/nvidia-580srv-open/nvidia.ko",
                     "vermagic": "6.8.0-85-generic SMP preempt mod_unload modversions"}


def test_modinfo_proprietary_unsigned_and_missing():
    found = driver.parse_modinfo(MODINFO_PROPRIETARY)
    assert found["flavour"] == "proprietary" and found["signer"] is None and found["version"] == "535.261.03"
    assert driver.parse_modinfo("modinfo: ERROR: Module nvidia not found.\n") is None


def test_dpkg_query():
    text = ("nvidia-smi\t535.261.03-1\thi \n"
            "libnvidia-ml1:amd64\t535.261.03-1\tii \n"
            "nvidia-driver\t\tun \n"
            "nvidia-kernel-dkms:amd64\t535.261.03-1\trc \n"
            "garbage line\n")
    found = driver.parse_dpkg_query(text)
    assert found["nvidia-smi"] == {"version": "535.261.03-1", "installed": True, "held": True, "status": "hi"}
    assert found["libnvidia-ml1"]["installed"] is True and found["libnvidia-ml1"]["held"] is False
    assert found["nvidia-driver"]["installed"] is False and found["nvidia-driver"]["version"] is None
    assert found["nvidia-kernel-dkms"]["installed"] is False
    assert "garbage line" not in found


def test_dkms_status_both_formats():
    text = ("nvidia-current-open/535.261.03, 6.1.0-41-amd64, x86_64: installed\n"
            "nvidia-current-open/535.261.03: added\n"
            "nvidia, 535.104.05, 5.15.0-91-generic, x86_64: installed (WARNING! Diff between built and installed module!)\n")
    found = driver.parse_dkms_status(text)
    assert found[0] == {"module": "nvidia-current-open", "version": "535.261.03", "kernel": "6.1.0-41-amd64",
                        "arch": "x86_64", "state": "installed"}
    assert found[1]["state"] == "added" and found[1]["kernel"] is None
    assert found[2]["module"] == "nvidia" and found[2]["kernel"] == "5.15.0-91-generic"
    assert found[2]["state"] == "installed"


def test_systemctl_show():
    text = ("Id=nvidia-persistenced.service\nLoadState=loaded\nActiveState=inactive\nUnitFileState=enabled\n\n"
            "Id=nvidia-fabricmanager.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n")
    found = driver.parse_systemctl_show(text)
    assert found["nvidia-persistenced.service"] == {"load": "loaded", "active": "inactive", "enabled": "enabled"}
    assert found["nvidia-fabricmanager.service"]["load"] == "not-found"


def _state(**over):
    base = {
        "gpu_present": True,
        "kernel": "6.8.0-85-generic",
        "loaded": {"version": "580.95.05", "flavour": "open"},
        "on_disk": {"version": "580.95.05", "flavour": "open"},
        "nvml": {"available": True, "driver_version": "580.95.05"},
        "nouveau_loaded": False,
        "fabric_manager": None,
    }
    base.update(over)
    return base


EXPECT = {"version": "580", "flavour": "open", "fabric_manager": False}


def test_coherent_host_passes():
    verdict = driver.coherence(_state(), EXPECT)
    assert verdict == {"ok": True, "checked": True, "problems": [], "reboot_reasons": [], "reboot_required": False,
                       "notes": []}


def test_no_gpu_is_not_checked():
    verdict = driver.coherence(_state(gpu_present=False, loaded=None, on_disk=None), EXPECT)
    assert verdict["checked"] is False and verdict["ok"] is True and not verdict["problems"]


def test_updated_module_waiting_for_reboot():
    verdict = driver.coherence(_state(on_disk={"version": "580.105.08", "flavour": "open"},
                                      nvml={"available": False, "reason": "Driver/library version mismatch"}), EXPECT)
    assert verdict["reboot_required"] is True and not verdict["ok"]
    assert "580.95.05" in verdict["reboot_reasons"][0] and "580.105.08" in verdict["reboot_reasons"][0]
    assert verdict["problems"] == []  # NVML is judged after the reboot


def test_library_mismatch_without_module_change_is_a_problem():
    verdict = driver.coherence(_state(nvml={"available": True, "driver_version": "580.105.08"}), EXPECT)
    assert not verdict["ok"] and not verdict["reboot_required"]
    assert any("Driver/library version mismatch" in p for p in verdict["problems"])


def test_no_module_for_running_kernel():
    verdict = driver.coherence(_state(loaded=None, on_disk=None, nvml={"available": False}), EXPECT)
    assert not verdict["ok"]
    assert "no nvidia kernel module for 6.8.0-85-generic" in verdict["problems"][0]


def test_nouveau_needs_reboot():
    verdict = driver.coherence(_state(loaded=None, nouveau_loaded=True), EXPECT)
    assert verdict["reboot_required"] and any("nouveau" in r for r in verdict["reboot_reasons"])


def test_wrong_branch_and_flavour():
    verdict = driver.coherence(_state(loaded={"version": "570.195.03", "flavour": "proprietary"},
                                      on_disk={"version": "570.195.03", "flavour": "proprietary"},
                                      nvml={"available": True, "driver_version": "570.195.03"}), EXPECT)
    assert not verdict["ok"] and not verdict["reboot_required"]
    text = " ".join(verdict["problems"])
    assert "570.195.03, not 580" in text and "wants open" in text and "the pin says 580" in text


def test_flavour_switch_waits_for_reboot():
    verdict = driver.coherence(_state(loaded={"version": "580.95.05", "flavour": "proprietary"}), EXPECT)
    assert verdict["reboot_required"] and not verdict["problems"]


def test_fabric_manager_rules():
    expect = dict(EXPECT, fabric_manager=True)
    missing = driver.coherence(_state(), expect)
    assert any("not installed" in p for p in missing["problems"])
    off_by_one = driver.coherence(_state(fabric_manager={"version": "580.82.07", "active": "active"}), expect)
    assert any("580.82.07 but the driver is 580.95.05" in p for p in off_by_one["problems"])
    stopped = driver.coherence(_state(fabric_manager={"version": "580.95.05", "active": "failed"}), expect)
    assert any("is failed" in p for p in stopped["problems"])
    good = driver.coherence(_state(fabric_manager={"version": "580.95.05", "active": "active"}), expect)
    assert good["ok"]


def test_container_without_module_tree_judges_the_loaded_module():
    verdict = driver.coherence(_state(on_disk=None, modules_tree=False), EXPECT)
    assert verdict["ok"] and verdict["notes"] and "judged instead" in verdict["notes"][0]
    wrong = driver.coherence(_state(on_disk=None, modules_tree=False,
                                    loaded={"version": "570.195.03", "flavour": "open"},
                                    nvml={"available": True, "driver_version": "570.195.03"}), EXPECT)
    assert not wrong["ok"] and any("570.195.03, not 580" in p for p in wrong["problems"])


def test_missing_module_with_a_module_tree_is_a_problem():
    verdict = driver.coherence(_state(on_disk=None, modules_tree=True), EXPECT)
    assert not verdict["ok"] and "no nvidia kernel module for" in verdict["problems"][0]
