# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every NVML call of the collection goes through this file: one seam for the modules, the
gpu_tuning role's boot entry and the tests (which hand a fake library to NvmlSession instead of
pynvml).

Host facts, per-GPU facts, the PCI view that works without a driver, and the settings side: the
settings as a GPU reports them and one set call per setting (read_settings, apply_setting; what
to set and in which order is plugins/module_utils/gpu_settings.py's). Imports nothing from
Ansible: the gpu_tuning role copies it onto the host for its boot unit.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os
import re

PCI_DEVICES = "/sys/bus/pci/devices"
DRIVER_VERSION_FILE = "/proc/driver/nvidia/version"
NVIDIA_PCI_VENDOR = "0x10de"

# NVML return codes we treat specially (values from nvml.h, stable across releases).
NOT_SUPPORTED = 3
NO_PERMISSION = 4
INVALID_ARGUMENT = 2
NOT_FOUND = 6
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
LIB_RM_VERSION_MISMATCH = 18
# A field the GPU or the driver does not offer reads as None instead of failing the whole read.
_ABSENT = (NOT_SUPPORTED, INVALID_ARGUMENT, FUNCTION_NOT_FOUND, NOT_FOUND, NO_PERMISSION)

ARCHITECTURES = {
    2: "kepler", 3: "maxwell", 4: "pascal", 5: "volta", 6: "turing", 7: "ampere", 8: "ada",
    9: "hopper", 10: "blackwell", 13: "rubin",
}
COMPUTE_MODES = {0: "default", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}
CLOCK_GRAPHICS, CLOCK_SM, CLOCK_MEM = 0, 1, 2
TEMPERATURE_GPU = 0
FABRIC_STATES = {0: "not_supported", 1: "not_started", 2: "in_progress", 3: "completed"}
CLOCK_EVENT_REASONS = (
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)
NVLINK_MAX_LINKS = 18  # NVLink 4 (Hopper) has 18 links; later parts report NOT_SUPPORTED past their count.


class NvmlUnavailable(Exception):
    """NVML cannot be used on this host; `reason` says why in words a user acts on."""

    def __init__(self, reason, code=None):
        super(NvmlUnavailable, self).__init__(reason)
        self.reason = reason
        self.code = code


class GpuSelectionError(Exception):
    """A requested GPU (index or uuid) does not exist on this host."""


def load_pynvml():
    """The real binding. ImportError propagates: the caller reports missing_required_lib."""
    import pynvml  # pylint: disable=import-outside-toplevel

    return pynvml


class _CtypesNvmlError(Exception):
    """NVMLError of the ctypes fallback: `value` is the NVML return code, like pynvml's."""

    def __init__(self, value):
        super(_CtypesNvmlError, self).__init__("NVML return code %s" % value)
        self.value = value


class CtypesNvml:
    """The few calls the driver coherence gate needs, straight from libnvidia-ml.so.1 through
    ctypes, for hosts where nvidia-ml-py is not installed yet (the driver role runs before the
    gpu_tuning role installs it). Same names and error type as pynvml, so NvmlSession accepts it.
    """

    NVMLError = _CtypesNvmlError

    def __init__(self, library="libnvidia-ml.so.1"):
        try:
            self._lib = ctypes.CDLL(library)
        except OSError:
            raise _CtypesNvmlError(LIBRARY_NOT_FOUND)

    def _call(self, name, *args):
        func = getattr(self._lib, name, None)
        if func is None:
            raise _CtypesNvmlError(FUNCTION_NOT_FOUND)
        ret = func(*args)
        if ret != 0:
            raise _CtypesNvmlError(ret)

    def nvmlInit(self):
        self._call("nvmlInit_v2")

    def nvmlShutdown(self):
        self._call("nvmlShutdown")

    def nvmlSystemGetDriverVersion(self):
        buf = ctypes.create_string_buffer(96)
        self._call("nvmlSystemGetDriverVersion", buf, ctypes.c_uint(96))
        return buf.value.decode("ascii", "replace")

    def nvmlDeviceGetCount(self):
        count = ctypes.c_uint(0)
        self._call("nvmlDeviceGetCount_v2", ctypes.byref(count))
        return count.value


def read_driver_version(lib):
    """{'available', 'driver_version', 'gpu_count', 'reason'} from one short NVML session with
    `lib` (pynvml, CtypesNvml or a test double)."""
    try:
        with NvmlSession(lib) as session:
            return {
                "available": True,
                "driver_version": _text(session.lib.nvmlSystemGetDriverVersion()),
                "gpu_count": session.lib.nvmlDeviceGetCount(),
                "reason": None,
            }
    except NvmlUnavailable as exc:
        return {"available": False, "driver_version": None, "gpu_count": None, "reason": exc.reason}
    except lib.NVMLError as exc:
        return {"available": False, "driver_version": None, "gpu_count": None, "reason": describe_error(exc)}


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def error_code(exc):
    return getattr(exc, "value", None)


def describe_error(exc):
    """NVMLError as 'Not Supported (NVML code 3)'."""
    code = error_code(exc)
    try:
        text = str(exc)
    except Exception:  # pylint: disable=broad-except
        text = "NVML error"
    return "%s (NVML code %s)" % (text, code) if code is not None else text


def read_kernel_module(path=DRIVER_VERSION_FILE):
    """(flavour, version) of the loaded NVIDIA kernel module, from /proc/driver/nvidia/version.

    'open' for the open GPU kernel modules ("Open Kernel Module"), 'proprietary' otherwise;
    (None, None) when no module is loaded.
    """
    try:
        with open(path) as handle:
            first = handle.readline()
    except (IOError, OSError):
        return None, None
    flavour = "open" if "Open Kernel Module" in first else "proprietary"
    match = re.search(r"\s(\d+\.\d+(?:\.\d+)?)\s", first)
    return flavour, (match.group(1) if match else None)


def read_pci(root=PCI_DEVICES):
    """NVIDIA devices on the PCI bus, without any driver: {'gpus': [bus ids], 'nvswitches': [...]}.

    GPUs are display/3D controllers (class 0x03xxxx); NVSwitches are bridges (class 0x0680xx).
    """
    found = {"gpus": [], "nvswitches": [], "other": []}
    try:
        entries = sorted(os.listdir(root))
    except (IOError, OSError):
        return found
    for bus_id in entries:
        try:
            with open(os.path.join(root, bus_id, "vendor")) as handle:
                vendor = handle.read().strip()
            if vendor != NVIDIA_PCI_VENDOR:
                continue
            with open(os.path.join(root, bus_id, "class")) as handle:
                klass = handle.read().strip()
        except (IOError, OSError):
            continue
        if klass.startswith("0x03"):
            found["gpus"].append(bus_id)
        elif klass.startswith("0x0680"):
            found["nvswitches"].append(bus_id)
        else:
            found["other"].append(bus_id)
    return found


def cuda_version_string(value):
    """13000 -> '13.0' (the encoding of nvmlSystemGetCudaDriverVersion)."""
    if value is None:
        return None
    return "%d.%d" % (value // 1000, (value % 1000) // 10)


class NvmlSession:
    """One nvmlInit .. nvmlShutdown. Use as a context manager.

    `lib` is the pynvml module, or a test double with the same functions and NVMLError.
    """

    def __init__(self, lib):
        self.lib = lib
        self._open = False

    def __enter__(self):
        try:
            self.lib.nvmlInit()
        except self.lib.NVMLError as exc:
            code = error_code(exc)
            if code == DRIVER_NOT_LOADED:
                reason = "the NVIDIA driver is not loaded (nvmlInit: %s)" % describe_error(exc)
            elif code == LIB_RM_VERSION_MISMATCH:
                reason = ("Driver/library version mismatch: the loaded kernel module and the user-space "
                          "driver differ, reboot or reload the module (nvmlInit: %s)" % describe_error(exc))
            elif code == LIBRARY_NOT_FOUND:
                reason = "libnvidia-ml.so is not installed (nvmlInit: %s)" % describe_error(exc)
            else:
                reason = "NVML could not start: %s" % describe_error(exc)
            raise NvmlUnavailable(reason, code)
        self._open = True
        return self

    def __exit__(self, *exc_info):
        if self._open:
            try:
                self.lib.nvmlShutdown()
            except self.lib.NVMLError:
                pass
            self._open = False
        return False

    # -- helpers -------------------------------------------------------------------------
    def optional(self, func, *args):
        """func(*args), or None when this GPU or driver does not offer the value."""
        try:
            return func(*args)
        except self.lib.NVMLError as exc:
            if error_code(exc) in _ABSENT:
                return None
            raise

    # -- host ----------------------------------------------------------------------------
    def host(self):
        lib = self.lib
        cuda = self.optional(lib.nvmlSystemGetCudaDriverVersion_v2) if hasattr(
            lib, "nvmlSystemGetCudaDriverVersion_v2") else self.optional(lib.nvmlSystemGetCudaDriverVersion)
        return {
            "driver_version": _text(lib.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": cuda_version_string(cuda),
            "nvml_version": _text(self.optional(lib.nvmlSystemGetNVMLVersion)),
            "gpu_count": lib.nvmlDeviceGetCount(),
        }

    # -- selection -----------------------------------------------------------------------
    def select(self, wanted=None):
        """[(index, handle)] for every GPU, or for the indices/uuids in `wanted` (in that order).

        Raises GpuSelectionError naming what does not exist and what does.
        """
        lib = self.lib
        count = lib.nvmlDeviceGetCount()
        handles = [(i, lib.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        if not wanted:
            return handles
        by_uuid = dict((_text(lib.nvmlDeviceGetUUID(h)), (i, h)) for i, h in handles)
        lowered = dict((uuid.lower(), pick) for uuid, pick in by_uuid.items())
        chosen, missing = [], []
        for item in wanted:
            key = str(item).strip()
            if key.isdigit() and int(key) < count:
                pick = handles[int(key)]
            elif key.lower() in lowered:
                pick = lowered[key.lower()]
            else:
                missing.append(key)
                continue
            if pick not in chosen:
                chosen.append(pick)
        if missing:
            raise GpuSelectionError(
                "no GPU %s on this host; it has %d GPU(s): indices 0-%d, uuids %s"
                % (", ".join(missing), count, count - 1, ", ".join(sorted(by_uuid))))
        return chosen

    # -- one GPU -------------------------------------------------------------------------
    def nvlinks(self, handle):
        """Per-link state (True active / False inactive) for the links the GPU has."""
        lib = self.lib
        links = []
        for link in range(NVLINK_MAX_LINKS):
            try:
                links.append(bool(lib.nvmlDeviceGetNvLinkState(handle, link)))
            except lib.NVMLError as exc:
                if error_code(exc) in _ABSENT:
                    break
                raise
        return links

    def fabric(self, handle):
        """GPU fabric (NVSwitch) registration, or None where the GPU has no fabric."""
        lib = self.lib
        if not hasattr(lib, "nvmlDeviceGetGpuFabricInfoV") or not hasattr(lib, "c_nvmlGpuFabricInfoV_t"):
            return None
        info = lib.c_nvmlGpuFabricInfoV_t()
        try:
            lib.nvmlDeviceGetGpuFabricInfoV(handle, ctypes.byref(info))
        except lib.NVMLError as exc:
            if error_code(exc) in _ABSENT:
                return None
            raise
        state = FABRIC_STATES.get(info.state, str(info.state))
        if state == "not_supported":
            return None
        return {"state": state, "status": info.status, "clique_id": info.cliqueId}

    def read_gpu(self, index, handle):
        lib, opt = self.lib, self.optional
        pci = opt(lib.nvmlDeviceGetPciInfo, handle)
        memory = opt(lib.nvmlDeviceGetMemoryInfo, handle)
        arch = opt(lib.nvmlDeviceGetArchitecture, handle)
        capability = opt(lib.nvmlDeviceGetCudaComputeCapability, handle)
        mig = opt(lib.nvmlDeviceGetMigMode, handle)
        ecc = opt(lib.nvmlDeviceGetEccMode, handle)
        compute = opt(lib.nvmlDeviceGetComputeMode, handle)
        persistence = opt(lib.nvmlDeviceGetPersistenceMode, handle)
        mem_clocks = opt(lib.nvmlDeviceGetSupportedMemoryClocks, handle) or []
        supported = {}
        for mem in mem_clocks:
            supported[str(mem)] = sorted(opt(lib.nvmlDeviceGetSupportedGraphicsClocks, handle, mem) or [], reverse=True)
        limits = opt(lib.nvmlDeviceGetPowerManagementLimitConstraints, handle)
        events_fn = getattr(lib, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            lib, "nvmlDeviceGetCurrentClocksThrottleReasons")
        events = opt(events_fn, handle)
        links = self.nvlinks(handle)
        return {
            "index": index,
            "name": _text(opt(lib.nvmlDeviceGetName, handle)),
            "uuid": _text(lib.nvmlDeviceGetUUID(handle)),
            "serial": _text(opt(lib.nvmlDeviceGetSerial, handle)),
            "pci_bus_id": _text(pci.busId) if pci is not None else None,
            "memory_total_mib": memory.total // (1024 * 1024) if memory is not None else None,
            "architecture": ARCHITECTURES.get(arch, "unknown") if arch is not None else None,
            "compute_capability": "%d.%d" % tuple(capability) if capability else None,
            "persistence_mode": bool(persistence) if persistence is not None else None,
            "compute_mode": COMPUTE_MODES.get(compute, str(compute)) if compute is not None else None,
            "mig_mode": {"current": bool(mig[0]), "pending": bool(mig[1])} if mig else None,
            "ecc_mode": {"current": bool(ecc[0]), "pending": bool(ecc[1])} if ecc else None,
            "application_clocks": {
                "graphics": opt(lib.nvmlDeviceGetApplicationsClock, handle, CLOCK_GRAPHICS),
                "memory": opt(lib.nvmlDeviceGetApplicationsClock, handle, CLOCK_MEM),
            },
            "default_application_clocks": {
                "graphics": opt(lib.nvmlDeviceGetDefaultApplicationsClock, handle, CLOCK_GRAPHICS),
                "memory": opt(lib.nvmlDeviceGetDefaultApplicationsClock, handle, CLOCK_MEM),
            },
            "max_clocks": {
                "graphics": opt(lib.nvmlDeviceGetMaxClockInfo, handle, CLOCK_GRAPHICS),
                "sm": opt(lib.nvmlDeviceGetMaxClockInfo, handle, CLOCK_SM),
                "memory": opt(lib.nvmlDeviceGetMaxClockInfo, handle, CLOCK_MEM),
            },
            "supported_memory_clocks": sorted(mem_clocks, reverse=True),
            "supported_graphics_clocks": supported,
            "power_limit_w": _watts(opt(lib.nvmlDeviceGetPowerManagementLimit, handle)),
            "power_limit_default_w": _watts(opt(lib.nvmlDeviceGetPowerManagementDefaultLimit, handle)),
            "power_limit_min_w": _watts(limits[0]) if limits else None,
            "power_limit_max_w": _watts(limits[1]) if limits else None,
            "temperature_c": opt(lib.nvmlDeviceGetTemperature, handle, TEMPERATURE_GPU),
            "clock_event_reasons": [name for bit, name in CLOCK_EVENT_REASONS if events and events & bit],
            "nvlink": {"links": len(links), "active": sum(1 for up in links if up)},
            "fabric": self.fabric(handle),
        }


def _watts(milliwatts):
    if milliwatts is None:
        return None
    return milliwatts / 1000.0 if milliwatts % 1000 else milliwatts // 1000


def topology(gpus, pci, gpu_count=None):
    """What other roles need to know about the host's GPU layout.

    `gpus` are the GPUs read through NVML (maybe a selection), `gpu_count` NVML's count of all of
    them (None without NVML: the PCI bus counts then).
    """
    nvswitches = len(pci.get("nvswitches", []))
    fabric = [g for g in gpus if g.get("fabric")]
    return {
        "gpu_count": gpu_count if gpu_count is not None else len(pci.get("gpus", [])),
        "nvlink_gpus": sum(1 for g in gpus if g["nvlink"]["active"] > 0),
        "nvswitch_count": nvswitches,
        # NVSwitch systems (HGX/DGX) need nvidia-fabricmanager at the driver's exact version.
        "fabric_manager_needed": nvswitches > 0 or bool(fabric),
        "architectures": sorted(set(g["architecture"] for g in gpus if g.get("architecture"))),
    }


# -- settings (the desired-state side; gpu_settings.py plans, these read and set) -------------
COMPUTE_MODE_IDS = {"default": 0, "prohibited": 2, "exclusive_process": 3}


def read_settings(session, handle):
    """The settings nvidia_gpu manages, as the GPU reports them (locked clocks cannot be read
    through NVML: the caller supplies them from its own record)."""
    lib, opt = session.lib, session.optional
    persistence = opt(lib.nvmlDeviceGetPersistenceMode, handle)
    compute = opt(lib.nvmlDeviceGetComputeMode, handle)
    return {
        "persistence_mode": bool(persistence) if persistence is not None else None,
        "compute_mode": COMPUTE_MODES.get(compute, str(compute)) if compute is not None else None,
        "power_limit": _watts(opt(lib.nvmlDeviceGetPowerManagementLimit, handle)),
        "application_clocks": {
            "memory": opt(lib.nvmlDeviceGetApplicationsClock, handle, CLOCK_MEM),
            "graphics": opt(lib.nvmlDeviceGetApplicationsClock, handle, CLOCK_GRAPHICS),
        },
    }


def apply_setting(session, handle, name, value):
    """One NVML set call for one setting. `value` is the normalised desired value
    (application_clocks / locked_clocks: a dict, or None for 'back to default / unlocked')."""
    lib = session.lib
    if name == "persistence_mode":
        lib.nvmlDeviceSetPersistenceMode(handle, 1 if value else 0)
    elif name == "compute_mode":
        lib.nvmlDeviceSetComputeMode(handle, COMPUTE_MODE_IDS[value])
    elif name == "power_limit":
        lib.nvmlDeviceSetPowerManagementLimit(handle, int(round(value * 1000)))
    elif name == "application_clocks":
        if value is None:
            lib.nvmlDeviceResetApplicationsClocks(handle)
        else:
            lib.nvmlDeviceSetApplicationsClocks(handle, value["memory"], value["graphics"])
    elif name == "locked_clocks":
        if value is None:
            lib.nvmlDeviceResetGpuLockedClocks(handle)
        else:
            lib.nvmlDeviceSetGpuLockedClocks(handle, value["min"], value["max"])
    else:
        raise ValueError("unknown setting %s" % name)
