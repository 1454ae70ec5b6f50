#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nvidia_gpu_info
short_description: Read NVIDIA GPU facts through NVML
version_added: "0.1.0"
description:
  - Reads the host's NVIDIA GPUs through NVML (the C(nvidia-ml-py) binding) in one NVML session,
    without shelling out, and returns host facts, per-GPU facts and a topology summary.
  - Also reads the PCI bus (C(/sys/bus/pci/devices)), which works before any driver is installed,
    so a host with GPUs but no driver is told apart from a host without GPUs.
  - Read-only; safe in check mode. Reports its own run time.
author:
  - llmfleet.deepseek maintainers (@llmfleet)
options:
  gpus:
    description:
      - GPUs to read, by index (V(0)) or uuid (V(GPU-...)). Empty reads every GPU.
      - An index is a whole number 0 or more in ASCII digits; a uuid is C(GPU-) and 32 hex digits
        grouped 8-4-4-4-12, as C(nvidia-smi -L) prints it (any case). Anything else - an empty
        entry, a sign, a MIG device uuid, a typo'd uuid - fails at once naming the entry, before
        NVML is touched and also on a host without a GPU or without NVML.
      - A GPU that does not exist fails the task, naming the GPUs the host has. Without NVML an
        index at or past the number of GPUs on the PCI bus fails the same way (whatever
        O(allow_unavailable) says), as it can never match.
      - A selection that cannot be checked is not an error with O(allow_unavailable=true) but a
        warning naming the entries and why (NVML unavailable, or no GPU on the host); without
        O(allow_unavailable) such a host fails as before.
    type: list
    elements: str
    default: []
  allow_unavailable:
    description:
      - What to do when NVML cannot be used (nvidia-ml-py missing, driver not loaded, NVML error
        at start).
      - V(false) fails with a message that says why.
      - V(true) returns RV(nvml.available=false) with the reason and the PCI view, so a play can
        gather facts on hosts that have no GPU or no driver yet.
    type: bool
    default: false
extends_documentation_fragment:
  - llmfleet.deepseek.attributes.read_only
requirements:
  - nvidia-ml-py (the C(pynvml) module) on the managed host, and a loaded NVIDIA driver, for the
    NVML facts. The PCI view needs neither.
seealso:
  - name: NVML API reference
    description: The library behind every value this module returns.
    link: https://docs.nvidia.com/deploy/nvml-api/
"""

EXAMPLES = r"""
- name: Read every GPU
  llmfleet.deepseek.nvidia_gpu_info:
  register: gpu_info

- name: Read two GPUs, one by index and one by uuid
  llmfleet.deepseek.nvidia_gpu_info:
    gpus: [0, GPU-5b9c2c4e-8f3a-4d43-9a0e-0c1d2e3f4a5b]

- name: Gather facts on any host, GPU or not (no driver yet is not an error)
  llmfleet.deepseek.nvidia_gpu_info:
    allow_unavailable: true
  register: gpu_info

- name: Fail early when the host needs a fabric manager it does not run
  ansible.builtin.assert:
    that: not gpu_info.topology.fabric_manager_needed
"""

RETURN = r"""
present:
  description: Whether the host has an NVIDIA GPU (NVML sees one, or the PCI bus shows one).
  returned: always
  type: bool
  sample: true
nvml:
  description: Whether NVML could be used, and why not.
  returned: always
  type: dict
  contains:
    available:
      description: NVML started.
      type: bool
    reason:
      description: Why NVML could not be used (null when it could).
      type: str
  sample: {"available": true, "reason": null}
host:
  description: Host-level facts. Driver and NVML fields are null when NVML is unavailable.
  returned: always
  type: dict
  contains:
    driver_version:
      description: Driver version NVML reports.
      type: str
    cuda_driver_version:
      description: Highest CUDA version the driver supports.
      type: str
    nvml_version:
      description: NVML library version.
      type: str
    kernel_module:
      description: V(open) or V(proprietary), from C(/proc/driver/nvidia/version); null when no module is loaded.
      type: str
    kernel_module_version:
      description: Version of the loaded kernel module (compare it with RV(host.driver_version)).
      type: str
    gpu_count:
      description: Number of GPUs NVML sees (the PCI count when NVML is unavailable).
      type: int
  sample:
    driver_version: "580.159.04"
    cuda_driver_version: "13.0"
    nvml_version: "13.580.159.04"
    kernel_module: open
    kernel_module_version: "580.159.04"
    gpu_count: 1
pci:
  description: NVIDIA devices on the PCI bus (bus ids), read without NVML.
  returned: always
  type: dict
  sample: {"gpus": ["0000:2a:00.0"], "nvswitches": [], "other": []}
topology:
  description: The layout other roles decide on.
  returned: always
  type: dict
  contains:
    gpu_count:
      description: GPUs on the host.
      type: int
    nvlink_gpus:
      description: Read GPUs with at least one active NVLink.
      type: int
    nvswitch_count:
      description: NVSwitch devices on the PCI bus.
      type: int
    fabric_manager_needed:
      description: The host has NVSwitches or fabric-attached GPUs, so nvidia-fabricmanager must run.
      type: bool
    architectures:
      description: Architectures of the read GPUs.
      type: list
      elements: str
  sample: {"gpu_count": 1, "nvlink_gpus": 0, "nvswitch_count": 0, "fabric_manager_needed": false, "architectures": ["hopper"]}
gpus:
  description: One entry per read GPU, in the order asked for (index order by default).
  returned: always
  type: list
  elements: dict
  sample:
    - index: 0
      name: NVIDIA H100 80GB HBM3
      uuid: GPU-5b9c2c4e-8f3a-4d43-9a0e-0c1d2e3f4a5b
      serial: "1652823012345"
      pci_bus_id: "00000000:2A:00.0"
      memory_total_mib: 81559
      architecture: hopper
      compute_capability: "9.0"
      persistence_mode: true
      compute_mode: default
      mig_mode: {current: false, pending: false}
      ecc_mode: {current: true, pending: true}
      application_clocks: {graphics: 1980, memory: 2619}
      default_application_clocks: {graphics: 1980, memory: 2619}
      max_clocks: {graphics: 1980, sm: 1980, memory: 2619}
      supported_memory_clocks: [2619, 1593]
      supported_graphics_clocks: {"2619": [1980, 1965], "1593": [1980, 1965]}
      power_limit_w: 700
      power_limit_default_w: 700
      power_limit_min_w: 200
      power_limit_max_w: 700
      temperature_c: 31
      clock_event_reasons: [gpu_idle]
      nvlink: {links: 0, active: 0}
      fabric: null
elapsed_ms:
  description: Time the module spent reading, in milliseconds.
  returned: always
  type: float
  sample: 41.7
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmfleet.deepseek.plugins.module_utils import gpu_settings, nvml


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            gpus=dict(type="list", elements="str", default=[]),
            allow_unavailable=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )


def parse_selectors(gpus):
    """(selectors, problems) for the gpus option, before NVML is touched: each entry as
    NvmlSession.select takes it, and a sentence for the entries of the wrong form. The rule is
    gpu_settings.parse_selectors (the nvidia_gpu module and the gpu_tuning role judge with it);
    a GPU named twice is read once."""
    return gpu_settings.parse_selectors(gpus, "gpus", repeats=True)


class GpuInfo:
    """Reads the PCI bus, then NVML in one session."""

    def __init__(self, module, loader=nvml.load_pynvml, pci_root=nvml.PCI_DEVICES,
                 version_file=nvml.DRIVER_VERSION_FILE):
        self.module = module
        self.loader = loader
        self.pci_root = pci_root
        self.version_file = version_file

    def unavailable(self, result, reason, library_missing=False, trace=None, selectors=None):
        if not self.module.params["allow_unavailable"]:
            if library_missing:
                self.module.fail_json(msg=missing_required_lib("nvidia-ml-py"), exception=trace, **result)
            self.module.fail_json(msg="NVML is unavailable on this host: %s" % reason, **result)
        result["nvml"] = {"available": False, "reason": reason}
        if selectors:
            self.unchecked(result, selectors, "NVML is unavailable on this host (%s)" % reason)
        return result

    def unchecked(self, result, selectors, why):
        """A selection NVML could not check: fail for an index the PCI bus proves absent,
        else warn naming the entries and why."""
        bus = result["pci"]["gpus"]
        absent = [s for s in selectors if s.isdigit() and bus and int(s) >= len(bus)]
        if absent:
            self.module.fail_json(msg="gpus: no GPU %s on this host; the PCI bus shows %d NVIDIA GPU(s) (%s), and %s"
                                  % (", ".join(absent), len(bus), ", ".join(bus), why), **result)
        seen = "the PCI bus shows %d NVIDIA GPU(s)" % len(bus) if bus else "the PCI bus shows no NVIDIA GPU"
        self.module.warn("gpus: %s could not be checked: %s; %s, no per-GPU facts were read"
                         % (", ".join(selectors), why, seen))

    def run(self):
        started = time.monotonic()
        result = self.read()
        result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        return result

    def read(self):
        selectors, problems = parse_selectors(self.module.params["gpus"])
        if problems:
            self.module.fail_json(msg="; ".join(problems))
        pci = nvml.read_pci(self.pci_root)
        flavour, module_version = nvml.read_kernel_module(self.version_file)
        result = {
            "changed": False,
            "present": bool(pci["gpus"]),
            "nvml": {"available": False, "reason": None},
            "host": {"driver_version": None, "cuda_driver_version": None, "nvml_version": None,
                     "kernel_module": flavour, "kernel_module_version": module_version,
                     "gpu_count": len(pci["gpus"])},
            "pci": pci,
            "gpus": [],
            "topology": nvml.topology([], pci),
        }
        try:
            lib = self.loader()
        except ImportError:
            return self.unavailable(result, "nvidia-ml-py (pynvml) is not installed", library_missing=True,
                                    trace=traceback.format_exc(), selectors=selectors)
        try:
            with nvml.NvmlSession(lib) as session:
                host = session.host()
                if selectors and not host["gpu_count"]:
                    gpus = None
                else:
                    chosen = session.select(selectors)
                    gpus = [session.read_gpu(index, handle) for index, handle in chosen]
        except nvml.NvmlUnavailable as exc:
            return self.unavailable(result, exc.reason, selectors=selectors)
        except nvml.GpuSelectionError as exc:
            self.module.fail_json(msg="gpus: %s" % exc)
        except lib.NVMLError as exc:
            self.module.fail_json(msg="NVML failed while reading GPU facts: %s" % nvml.describe_error(exc))
        result["host"].update(host)
        result["nvml"] = {"available": True, "reason": None}
        if gpus is None:
            # NVML runs but sees no GPU: nothing the selection could match.
            if not self.module.params["allow_unavailable"]:
                self.module.fail_json(msg="gpus: no GPU %s on this host; NVML sees no GPU (allow_unavailable: true "
                                          "gathers facts on such a host with a warning)" % ", ".join(selectors), **result)
            self.unchecked(result, selectors, "NVML sees no GPU on this host")
            gpus = []
        result["gpus"] = gpus
        result["present"] = host["gpu_count"] > 0 or result["present"]
        result["topology"] = nvml.topology(gpus, pci, host["gpu_count"])
        return result


def main():
    module = build_module()
    module.exit_json(**GpuInfo(module).run())


if __name__ == "__main__":
    main()
