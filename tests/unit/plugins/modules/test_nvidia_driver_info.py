"""nvidia_driver_info with FAKE tools: run_command answers with outputs recorded from real hosts,
NVML is the FAKE binding (tests/unit/fakes/fake_pynvml.py)."""
import os

import pytest

from ansible_collections.llmfleet.deepseek.plugins.modules import nvidia_driver_info
from fakes.fake_pynvml import FakePynvml
from module_runner import run_module

VERSION_OPEN = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (dvs-builder@U22)\n"
MODINFO = ("filename:       /lib/modules/6.8.0-85-generic/updates/dkms/nvidia.ko\nversion:        580.159.04\n"
           "license:        Dual MIT/GPL\nvermagic:       6.8.0-85-generic SMP\n")
DPKG = ("nvidia-open-580\t580.159.04-1ubuntu1\thi \n"
        "nvidia-fabricmanager-580\t580.159.04-1\thi \n"
        "libnvidia-container1\t1.17.8-1\tii \n")
SYSTEMCTL = ("Id=nvidia-fabricmanager.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n"
             "Id=nvidia-persistenced.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n")


class FakeTools:
    """FAKE command runner: maps a tool's basename to (rc, stdout, stderr); records calls."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []
        self.environs = {}

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return "/usr/bin/" + name if name in self.answers else None

    def run_command(self, args, **kwargs):
        self.calls.append(args)
        self.environs[args[0].rsplit("/", 1)[-1]] = kwargs.get("environ_update")
        return self.answers[args[0].rsplit("/", 1)[-1]]


@pytest.fixture
def host(tmp_path):
    pci = tmp_path / "pci"
    (pci / "0000:18:00.0").mkdir(parents=True)
    (pci / "0000:18:00.0" / "vendor").write_text("0x10de\n")
    (pci / "0000:18:00.0" / "class").write_text("0x030200\n")
    (tmp_path / "sys_module").mkdir()
    (tmp_path / "systemd").mkdir()
    (tmp_path / "modules" / os.uname()[2]).mkdir(parents=True)
    return tmp_path


def run(monkeypatch, host, args, tools, lib=None, loaded=True, binding="pynvml"):
    version = host / "version"
    if loaded:
        version.write_text(VERSION_OPEN)

    def make(module):
        monkeypatch.setattr(module, "get_bin_path", tools.get_bin_path)
        monkeypatch.setattr(module, "run_command", tools.run_command)
        return nvidia_driver_info.DriverInfo(
            module, nvml_loader=lambda: (lib or FakePynvml(), binding), pci_root=str(host / "pci"),
            version_file=str(version), efivar=str(host / "efivar"), sys_module=str(host / "sys_module"),
            systemd_dir=str(host / "systemd"), modules_root=str(host / "modules"))

    return run_module(monkeypatch, nvidia_driver_info, args, make)


ALL_TOOLS = {
    "mokutil": (0, "SecureBoot enabled\n", ""),
    "modinfo": (0, MODINFO, ""),
    "dpkg-query": (1, DPKG, "dpkg-query: no packages found matching linux-modules-nvidia-*\n"),
    "systemctl": (0, SYSTEMCTL, ""),
    "dkms": (0, "nvidia/580.159.04, 6.8.0-85-generic, x86_64: installed\n", ""),
}


def test_coherent_hgx_host(monkeypatch, host):
    tools = FakeTools(ALL_TOOLS)
    done = run(monkeypatch, host, {
        "packages": ["nvidia-*", "libnvidia-*", "linux-modules-nvidia-*"],
        "services": ["nvidia-fabricmanager.service", "nvidia-persistenced.service"],
        "expected_version": "580", "expected_flavour": "open", "fabric_manager": True}, tools)
    assert not done.failed
    res = done.result
    assert res["changed"] is False and res["gpu_present"] is True
    assert res["secure_boot"] == {"enabled": True, "enforcing": True, "detail": "SecureBoot enabled", "source": "mokutil"}
    assert res["loaded"] == {"version": "580.159.04", "flavour": "open"}
    assert res["on_disk"]["version"] == "580.159.04" and res["on_disk"]["flavour"] == "open"
    assert res["nvml"]["available"] is True and res["nvml"]["driver_version"] == "580.159.04"
    assert res["nvml"]["binding"] == "pynvml"
    assert res["packages"]["nvidia-open-580"]["held"] is True
    assert res["fabric_manager"] == {"package": "nvidia-fabricmanager-580", "version": "580.159.04", "active": "active"}
    assert res["dkms"][0]["state"] == "installed"
    assert res["coherence"]["ok"] is True and res["coherence"]["checked"] is True
    # dpkg-query got the patterns as arguments, not through a shell
    dpkg = [c for c in tools.calls if c[0].endswith("dpkg-query")][0]
    assert dpkg[-3:] == ["nvidia-*", "libnvidia-*", "linux-modules-nvidia-*"]


def test_every_tool_runs_in_the_c_locale(monkeypatch, host):
    """Their output is parsed: a German mokutil or dpkg-query would not be understood."""
    tools = FakeTools(ALL_TOOLS)
    run(monkeypatch, host, {"packages": ["nvidia-*"], "services": ["nvidia-persistenced.service"]}, tools)
    assert tools.environs == dict((name, {"LANG": "C", "LC_ALL": "C"}) for name in ALL_TOOLS)


def test_module_not_loaded_skips_nvml(monkeypatch, host):
    tools = FakeTools(ALL_TOOLS)
    lib = FakePynvml()
    done = run(monkeypatch, host, {"expected_version": "580"}, tools, lib=lib, loaded=False)
    res = done.result
    assert res["loaded"] is None
    assert res["nvml"]["reason"] == "no nvidia kernel module is loaded"
    assert res["coherence"]["reboot_required"] is True


def test_no_gpu_no_tools(monkeypatch, host):
    for child in (host / "pci").iterdir():
        for f in child.iterdir():
            f.unlink()
        child.rmdir()
    (host / "efivar").write_bytes(b"\x06\x00\x00\x00\x01")
    done = run(monkeypatch, host, {"packages": ["nvidia-*"]}, FakeTools({}), loaded=False)
    res = done.result
    assert res["gpu_present"] is False and res["packages"] == {} and res["dkms"] == [] and res["services"] == {}
    assert res["on_disk"] is None
    assert res["secure_boot"]["source"] == "efivars" and res["secure_boot"]["enforcing"] is True
    assert res["coherence"] == {"ok": True, "checked": False, "problems": [], "reboot_reasons": [],
                                "reboot_required": False, "notes": []}


def test_nvml_library_missing(monkeypatch, host):
    from ansible_collections.llmfleet.deepseek.plugins.module_utils import nvml

    def missing():
        raise nvml.CtypesNvml.NVMLError(nvml.LIBRARY_NOT_FOUND)

    tools = FakeTools(ALL_TOOLS)

    def make(module):
        monkeypatch.setattr(module, "get_bin_path", tools.get_bin_path)
        monkeypatch.setattr(module, "run_command", tools.run_command)
        (host / "version").write_text(VERSION_OPEN)
        return nvidia_driver_info.DriverInfo(
            module, nvml_loader=missing, pci_root=str(host / "pci"), version_file=str(host / "version"),
            efivar=str(host / "efivar"), sys_module=str(host / "sys_module"), systemd_dir=str(host / "systemd"),
            modules_root=str(host / "modules"))

    res = run_module(monkeypatch, nvidia_driver_info, {}, make).result
    assert res["nvml"]["available"] is False and res["nvml"]["reason"] == "libnvidia-ml.so.1 is not installed"
    assert any("NVML does not answer" in p for p in res["coherence"]["problems"])


def test_ctypes_fallback_reports_missing_library():
    from ansible_collections.llmfleet.deepseek.plugins.module_utils import nvml
    with pytest.raises(nvml.CtypesNvml.NVMLError) as err:
        nvml.CtypesNvml("libnvidia-ml-does-not-exist.so.1")
    assert err.value.value == nvml.LIBRARY_NOT_FOUND
