#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nvidia_driver_info
short_description: Read the NVIDIA driver stack and judge whether it is coherent
version_added: "0.1.0"
description:
  - Reads, in one call, everything that decides whether a host's NVIDIA driver works after the
    next boot and right now - Secure Boot (C(mokutil --sb-state), or the EFI variable), the
    loaded kernel module (C(/proc/driver/nvidia/version)), the module the running kernel would
    load (C(modinfo)), DKMS builds (C(dkms status)), whether nouveau is loaded, the user-space
    driver version through NVML, package versions and holds (C(dpkg-query)), and unit states
    (C(systemctl show)).
  - Returns the B(coherence gate) verdict - loaded module = module on disk = NVML (user space) =
    the pinned version, fabric manager at the driver's version and running where needed - as a
    list of problems that say what to do, and the reasons a reboot is required.
  - NVML is read through nvidia-ml-py when it is installed, otherwise straight from
    C(libnvidia-ml.so.1) with ctypes, so it works right after a driver install.
  - Read-only; runs the same in check mode.
author:
  - llmfleet.deepseek maintainers (@llmfleet)
options:
  packages:
    description:
      - Package names or C(dpkg-query) glob patterns (V(nvidia-*)) to report with their version
        and hold state. Patterns that match nothing are not an error.
    type: list
    elements: str
    default: []
  services:
    description:
      - systemd units to report (load, active and enabled state). Skipped where systemd is not
        running.
    type: list
    elements: str
    default: []
  module_name:
    description: Kernel module name (or alias) given to C(modinfo) for the running kernel.
    type: str
    default: nvidia
  expected_version:
    description:
      - The pin the coherence gate checks the driver against - a branch (V(580)), a prefix
        (V(580.95)) or an exact version (V(580.95.05)). Empty accepts any version.
    type: str
    default: ""
  expected_flavour:
    description: Kernel module flavour the gate expects; empty accepts either.
    type: str
    choices: ["", open, proprietary]
    default: ""
  fabric_manager:
    description:
      - Whether the gate requires nvidia-fabricmanager at the driver's exact version and active
        (NVSwitch systems). Its version is read from the installed C(nvidia-fabricmanager*)
        package, so include that pattern in O(packages).
    type: bool
    default: false
extends_documentation_fragment:
  - llmfleet.deepseek.attributes.read_only
  - llmfleet.deepseek.attributes.posix
attributes:
  platform:
    description: Debian and Ubuntu hosts (dpkg).
notes:
  - Without a GPU on the PCI bus nothing can be loaded, so the gate is not checked
    (RV(coherence) has C(checked=false)); packages, DKMS builds and the module on disk are still
    reported, which is how a GPU-less test host says what it installed.
seealso:
  - module: llmfleet.deepseek.nvidia_gpu_info
  - name: NVIDIA driver installation guide
    description: Package names, Secure Boot and the open kernel modules.
    link: https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/
"""

EXAMPLES = r"""
- name: Read the driver stack and the gate's verdict for a 580 open driver
  llmfleet.deepseek.nvidia_driver_info:
    packages: ["nvidia-*", "libnvidia-*", "linux-modules-nvidia-*"]
    services: [nvidia-persistenced.service]
    expected_version: "580"
    expected_flavour: open
  register: driver

- name: Fail with what is out of line
  ansible.builtin.assert:
    that: driver.coherence.ok
    fail_msg: "{{ driver.coherence.problems + driver.coherence.reboot_reasons }}"
"""

RETURN = r"""
gpu_present:
  description: Whether the PCI bus shows an NVIDIA GPU.
  returned: always
  type: bool
pci:
  description: Bus ids of NVIDIA GPUs and NVSwitches (C(gpus), C(nvswitches), C(other)).
  returned: always
  type: dict
modules_tree:
  description: Whether C(/lib/modules/<running kernel>) exists (it does not in a container that shares its host's kernel).
  returned: always
  type: bool
kernel:
  description: The running kernel release (C(uname -r)).
  returned: always
  type: str
  sample: 6.8.0-85-generic
secure_boot:
  description:
    - C(enabled), C(enforcing) (enabled and not disabled in shim - unsigned modules are refused),
      C(detail) and C(source) (C(mokutil), C(efivars) or C(none)). C(enabled)/C(enforcing) are
      null when it could not be told.
  returned: always
  type: dict
  sample: {enabled: true, enforcing: true, detail: SecureBoot enabled, source: mokutil}
loaded:
  description: The loaded nvidia module (C(version), C(flavour) V(open) or V(proprietary)); null when none is loaded.
  returned: always
  type: dict
on_disk:
  description:
    - The nvidia module the running kernel would load (C(version), C(flavour), C(filename),
      C(signer), C(vermagic)); null when there is none.
  returned: always
  type: dict
nouveau_loaded:
  description: Whether the nouveau module is loaded.
  returned: always
  type: bool
nvml:
  description: C(available), C(driver_version), C(gpu_count), C(reason) when unavailable, C(binding) (V(pynvml) or V(ctypes)).
  returned: always
  type: dict
packages:
  description: Per package matching O(packages) - C(version), C(installed), C(held), C(status) (dpkg's abbreviation).
  returned: always
  type: dict
  sample: {nvidia-smi: {version: 535.261.03-1, installed: true, held: true, status: hi}}
services:
  description: Per unit in O(services) - C(load), C(active), C(enabled). Empty without systemd.
  returned: always
  type: dict
dkms:
  description: DKMS builds (C(module), C(version), C(kernel), C(arch), C(state)); empty without dkms.
  returned: always
  type: list
  elements: dict
fabric_manager:
  description: C(version) of the installed nvidia-fabricmanager package (upstream part) and C(active); null when not installed.
  returned: always
  type: dict
coherence:
  description:
    - The gate - C(ok), C(checked) (false without a GPU), C(problems) (each says what to do),
      C(reboot_reasons), C(reboot_required), C(notes) (what could not be read and what was judged instead).
  returned: always
  type: dict
elapsed_ms:
  description: Time this module took, in milliseconds.
  returned: always
  type: float
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmfleet.deepseek.plugins.module_utils import c_locale, driver, nvml

DPKG_FORMAT = "${binary:Package}\\t${Version}\\t${db:Status-Abbrev}\\n"


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            packages=dict(type="list", elements="str", default=[]),
            services=dict(type="list", elements="str", default=[]),
            module_name=dict(type="str", default="nvidia"),
            expected_version=dict(type="str", default=""),
            expected_flavour=dict(type="str", default="", choices=["", "open", "proprietary"]),
            fabric_manager=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )


def load_nvml():
    """pynvml when installed, else the ctypes fallback; (lib, binding name)."""
    try:
        return nvml.load_pynvml(), "pynvml"
    except ImportError:
        return nvml.CtypesNvml(), "ctypes"


class DriverInfo:
    """Every read of the module; paths and the NVML loader are seams for the unit tests. Every
    command's output is parsed, so each runs in the C locale (c_locale.run)."""

    def __init__(self, module, nvml_loader=load_nvml, pci_root=nvml.PCI_DEVICES,
                 version_file=nvml.DRIVER_VERSION_FILE, efivar=driver.SECURE_BOOT_EFIVAR,
                 sys_module="/sys/module", systemd_dir="/run/systemd/system", modules_root="/lib/modules"):
        self.module = module
        self.nvml_loader = nvml_loader
        self.pci_root = pci_root
        self.version_file = version_file
        self.efivar = efivar
        self.sys_module = sys_module
        self.systemd_dir = systemd_dir
        self.modules_root = modules_root

    def _bin(self, name):
        return self.module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin", "/usr/bin"])

    def run(self):
        started = time.monotonic()
        result = self.read()
        result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        return result

    def secure_boot(self):
        mokutil = self._bin("mokutil")
        if mokutil:
            rc, out, err = c_locale.run(self.module, [mokutil, "--sb-state"])
            state = driver.parse_mokutil_sb_state(out + err, rc)
            if state["enabled"] is not None:
                state["source"] = "mokutil"
                return state
        try:
            with open(self.efivar, "rb") as handle:
                data = handle.read()
        except (IOError, OSError):
            data = None
        state = driver.parse_secure_boot_efivar(data)
        state["source"] = "efivars" if data is not None else "none"
        return state

    def on_disk(self):
        modinfo = self._bin("modinfo")
        if not modinfo:
            return None
        rc, out, dummy = c_locale.run(self.module, [modinfo, self.module.params["module_name"]])
        return driver.parse_modinfo(out) if rc == 0 else None

    def packages(self):
        wanted = self.module.params["packages"]
        dpkg_query = self._bin("dpkg-query")
        if not wanted or not dpkg_query:
            return {}
        # Exit 1 only means some pattern matched nothing; what matched is on stdout.
        dummy, out, dummy = c_locale.run(self.module, [dpkg_query, "-W", "-f", DPKG_FORMAT] + wanted)
        return driver.parse_dpkg_query(out)

    def services(self):
        units = self.module.params["services"]
        systemctl = self._bin("systemctl")
        if not units or not systemctl or not os.path.isdir(self.systemd_dir):
            return {}
        rc, out, dummy = c_locale.run(
            self.module, [systemctl, "show", "-p", "Id,LoadState,ActiveState,UnitFileState", "--"] + units)
        return driver.parse_systemctl_show(out) if rc == 0 else {}

    def dkms(self):
        dkms = self._bin("dkms")
        if not dkms:
            return []
        rc, out, dummy = c_locale.run(self.module, [dkms, "status"])
        return driver.parse_dkms_status(out) if rc == 0 else []

    def nvml(self):
        try:
            lib, binding = self.nvml_loader()
        except Exception as exc:  # pylint: disable=broad-except
            code = nvml.error_code(exc)
            reason = ("libnvidia-ml.so.1 is not installed" if code == nvml.LIBRARY_NOT_FOUND
                      else "NVML could not be loaded: %s" % exc)
            return {"available": False, "driver_version": None, "gpu_count": None, "reason": reason, "binding": None}
        found = nvml.read_driver_version(lib)
        found["binding"] = binding
        return found

    def read(self):
        params = self.module.params
        pci = nvml.read_pci(self.pci_root)
        flavour, version = nvml.read_kernel_module(self.version_file)
        loaded = {"version": version, "flavour": flavour} if version else None
        packages = self.packages()
        services = self.services()
        fabric = None
        for name in sorted(packages):
            if name.startswith("nvidia-fabricmanager") and packages[name]["installed"]:
                unit = services.get("nvidia-fabricmanager.service", {})
                fabric = {"package": name, "version": driver.upstream_version(packages[name]["version"]),
                          "active": unit.get("active")}
                break
        kernel = os.uname()[2]
        state = {
            "gpu_present": bool(pci["gpus"]),
            "kernel": kernel,
            "modules_tree": os.path.isdir(os.path.join(self.modules_root, kernel)),
            "loaded": loaded,
            "on_disk": self.on_disk(),
            "nouveau_loaded": os.path.isdir(os.path.join(self.sys_module, "nouveau")),
            # NVML only answers with a loaded module; without one it would only say so.
            "nvml": self.nvml() if loaded else {
                "available": False, "driver_version": None, "gpu_count": None,
                "reason": "no nvidia kernel module is loaded", "binding": None},
            "fabric_manager": fabric,
        }
        verdict = driver.coherence(state, {
            "version": params["expected_version"],
            "flavour": params["expected_flavour"],
            "fabric_manager": params["fabric_manager"],
        })
        state.update({
            "changed": False,
            "pci": pci,
            "secure_boot": self.secure_boot(),
            "packages": packages,
            "services": services,
            "dkms": self.dkms(),
            "coherence": verdict,
        })
        return state


def main():
    module = build_module()
    module.exit_json(**DriverInfo(module).run())


if __name__ == "__main__":
    main()
