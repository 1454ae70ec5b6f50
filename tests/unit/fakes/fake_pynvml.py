"""FAKE NVML binding for unit tests: a stand-in for the `pynvml` module (nvidia-ml-py).

Never used outside tests. Its data is modelled on what a real H100 reported through NVML on the
device machine (shared/ANCHORS.md): driver 580.159.04, CUDA 13.0, application clocks 1980/2619
MHz, supported memory clocks [2619, 1593], 110 graphics clocks, power limit 700 W (200-700 W),
architecture 9 (Hopper), compute capability 9.0. Every call is recorded in `calls`, so a test
can assert that nothing set anything.
"""
import copy
import ctypes

NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_UNKNOWN = 999

_MESSAGES = {2: "Invalid Argument", 3: "Not Supported", 4: "Insufficient Permissions",
             9: "Driver Not Loaded", 12: "NVML Shared Library Not Found", 999: "Unknown Error"}


class NVMLError(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return _MESSAGES.get(self.value, "NVML Error with code %d" % self.value)


class c_nvmlGpuFabricInfoV_t(ctypes.Structure):  # pylint: disable=invalid-name
    _fields_ = [("version", ctypes.c_uint), ("status", ctypes.c_uint), ("cliqueId", ctypes.c_uint32),
                ("state", ctypes.c_uint), ("healthMask", ctypes.c_uint32)]


class _Struct:
    def __init__(self, **fields):
        self.__dict__.update(fields)


H100_GRAPHICS_CLOCKS = list(range(1980, 344, -15))  # 110 clocks, 1980 .. 345 MHz


def h100(index=0, **overrides):
    """One H100 SXM as the device machine reports it; keyword arguments override fields."""
    gpu = {
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-00000000-0000-4000-8000-%012d" % index,
        "serial": "16528230%05d" % index,
        "bus_id": "00000000:%02X:00.0" % (0x18 + index * 0x10),
        "memory_total": 81559 * 1024 * 1024,
        "arch": 9,
        "capability": (9, 0),
        "persistence": 1,
        "compute_mode": 0,
        "mig": [0, 0],
        "ecc": [1, 1],
        "app_clocks": {0: 1980, 2: 2619},
        "default_app_clocks": {0: 1980, 2: 2619},
        "max_clocks": {0: 1980, 1: 1980, 2: 2619},
        "mem_clocks": [2619, 1593],
        "graphics_clocks": {2619: list(H100_GRAPHICS_CLOCKS), 1593: list(H100_GRAPHICS_CLOCKS)},
        "power_limit": 700000,
        "power_default": 700000,
        "power_constraints": [200000, 700000],
        "temperature": 31,
        "events": 0x1,
        "nvlinks": [],
        "fabric": None,
        "unsupported": set(),  # names of NVML functions that answer NOT_SUPPORTED for this GPU
        "refused": set(),  # names of NVML set functions that answer NO_PERMISSION
        "ignored": set(),  # names of NVML set functions that succeed but change nothing
        "locked": None,  # what nvmlDeviceSetGpuLockedClocks last set (NVML cannot read it back)
    }
    gpu.update(overrides)
    return gpu


class FakePynvml:
    """Module-like fake: attributes are the pynvml functions the collection calls."""

    NVMLError = NVMLError
    c_nvmlGpuFabricInfoV_t = c_nvmlGpuFabricInfoV_t

    def __init__(self, gpus=None, driver="580.159.04", cuda=13000, nvml_version="13.580.159.04", init_error=None):
        self.gpus = copy.deepcopy(gpus if gpus is not None else [h100(0)])
        self.driver = driver
        self.cuda = cuda
        self.nvml_version = nvml_version
        self.init_error = init_error
        self.calls = []
        self.initialised = 0

    # -- plumbing --------------------------------------------------------------------------
    def _gpu(self, handle, fn):
        self.calls.append(fn)
        if not self.initialised:
            raise NVMLError(1)
        gpu = self.gpus[handle]
        if fn in gpu["unsupported"]:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def nvmlInit(self):
        self.calls.append("nvmlInit")
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self):
        self.calls.append("nvmlShutdown")
        self.initialised -= 1

    # -- system ----------------------------------------------------------------------------
    def nvmlSystemGetDriverVersion(self):
        self.calls.append("nvmlSystemGetDriverVersion")
        return self.driver

    def nvmlSystemGetCudaDriverVersion_v2(self):
        self.calls.append("nvmlSystemGetCudaDriverVersion_v2")
        return self.cuda

    def nvmlSystemGetNVMLVersion(self):
        self.calls.append("nvmlSystemGetNVMLVersion")
        return self.nvml_version

    def nvmlDeviceGetCount(self):
        self.calls.append("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        self.calls.append("nvmlDeviceGetHandleByIndex")
        if index >= len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return index

    # -- device reads ----------------------------------------------------------------------
    def nvmlDeviceGetName(self, h):
        return self._gpu(h, "nvmlDeviceGetName")["name"]

    def nvmlDeviceGetUUID(self, h):
        return self._gpu(h, "nvmlDeviceGetUUID")["uuid"]

    def nvmlDeviceGetSerial(self, h):
        return self._gpu(h, "nvmlDeviceGetSerial")["serial"]

    def nvmlDeviceGetPciInfo(self, h):
        return _Struct(busId=self._gpu(h, "nvmlDeviceGetPciInfo")["bus_id"].encode())

    def nvmlDeviceGetMemoryInfo(self, h):
        return _Struct(total=self._gpu(h, "nvmlDeviceGetMemoryInfo")["memory_total"])

    def nvmlDeviceGetArchitecture(self, h):
        return self._gpu(h, "nvmlDeviceGetArchitecture")["arch"]

    def nvmlDeviceGetCudaComputeCapability(self, h):
        return self._gpu(h, "nvmlDeviceGetCudaComputeCapability")["capability"]

    def nvmlDeviceGetPersistenceMode(self, h):
        return self._gpu(h, "nvmlDeviceGetPersistenceMode")["persistence"]

    def nvmlDeviceGetComputeMode(self, h):
        return self._gpu(h, "nvmlDeviceGetComputeMode")["compute_mode"]

    def nvmlDeviceGetMigMode(self, h):
        return list(self._gpu(h, "nvmlDeviceGetMigMode")["mig"])

    def nvmlDeviceGetEccMode(self, h):
        return list(self._gpu(h, "nvmlDeviceGetEccMode")["ecc"])

    def nvmlDeviceGetApplicationsClock(self, h, kind):
        return self._gpu(h, "nvmlDeviceGetApplicationsClock")["app_clocks"][kind]

    def nvmlDeviceGetDefaultApplicationsClock(self, h, kind):
        return self._gpu(h, "nvmlDeviceGetDefaultApplicationsClock")["default_app_clocks"][kind]

    def nvmlDeviceGetMaxClockInfo(self, h, kind):
        return self._gpu(h, "nvmlDeviceGetMaxClockInfo")["max_clocks"][kind]

    def nvmlDeviceGetSupportedMemoryClocks(self, h):
        return list(self._gpu(h, "nvmlDeviceGetSupportedMemoryClocks")["mem_clocks"])

    def nvmlDeviceGetSupportedGraphicsClocks(self, h, mem):
        clocks = self._gpu(h, "nvmlDeviceGetSupportedGraphicsClocks")["graphics_clocks"]
        if mem not in clocks:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return list(clocks[mem])

    def nvmlDeviceGetPowerManagementLimit(self, h):
        return self._gpu(h, "nvmlDeviceGetPowerManagementLimit")["power_limit"]

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h):
        return self._gpu(h, "nvmlDeviceGetPowerManagementDefaultLimit")["power_default"]

    def nvmlDeviceGetPowerManagementLimitConstraints(self, h):
        return list(self._gpu(h, "nvmlDeviceGetPowerManagementLimitConstraints")["power_constraints"])

    def nvmlDeviceGetTemperature(self, h, sensor):
        assert sensor == 0
        return self._gpu(h, "nvmlDeviceGetTemperature")["temperature"]

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return self._gpu(h, "nvmlDeviceGetCurrentClocksEventReasons")["events"]

    def nvmlDeviceGetNvLinkState(self, h, link):
        links = self._gpu(h, "nvmlDeviceGetNvLinkState")["nvlinks"]
        if link >= len(links):
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED if not links else NVML_ERROR_INVALID_ARGUMENT)
        return links[link]

    def nvmlDeviceGetGpuFabricInfoV(self, h, ref):
        fabric = self._gpu(h, "nvmlDeviceGetGpuFabricInfoV")["fabric"]
        info = ref._obj  # pylint: disable=protected-access
        if fabric is None:
            info.state = 0
            return 0
        info.state, info.status, info.cliqueId = fabric["state"], fabric.get("status", 0), fabric.get("clique", 0)
        return 0

    # -- device writes ---------------------------------------------------------------------
    def _set(self, h, fn):
        gpu = self._gpu(h, fn)
        if fn in gpu["refused"]:
            raise NVMLError(NVML_ERROR_NO_PERMISSION)
        return None if fn in gpu["ignored"] else gpu

    def nvmlDeviceSetPersistenceMode(self, h, mode):
        gpu = self._set(h, "nvmlDeviceSetPersistenceMode")
        if gpu is not None:
            gpu["persistence"] = mode

    def nvmlDeviceSetComputeMode(self, h, mode):
        gpu = self._set(h, "nvmlDeviceSetComputeMode")
        if gpu is not None:
            gpu["compute_mode"] = mode

    def nvmlDeviceSetPowerManagementLimit(self, h, milliwatts):
        gpu = self._set(h, "nvmlDeviceSetPowerManagementLimit")
        if gpu is not None:
            low, high = self.gpus[h]["power_constraints"]
            if not low <= milliwatts <= high:
                raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
            gpu["power_limit"] = milliwatts

    def nvmlDeviceSetApplicationsClocks(self, h, mem, graphics):
        gpu = self._set(h, "nvmlDeviceSetApplicationsClocks")
        if gpu is not None:
            if graphics not in self.gpus[h]["graphics_clocks"].get(mem, []):
                raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
            gpu["app_clocks"] = {0: graphics, 2: mem}

    def nvmlDeviceResetApplicationsClocks(self, h):
        gpu = self._set(h, "nvmlDeviceResetApplicationsClocks")
        if gpu is not None:
            gpu["app_clocks"] = dict(gpu["default_app_clocks"])

    def nvmlDeviceSetGpuLockedClocks(self, h, low, high):
        gpu = self._set(h, "nvmlDeviceSetGpuLockedClocks")
        if gpu is not None:
            gpu["locked"] = (low, high)

    def nvmlDeviceResetGpuLockedClocks(self, h):
        gpu = self._set(h, "nvmlDeviceResetGpuLockedClocks")
        if gpu is not None:
            gpu["locked"] = None

    def setters_called(self):
        return [c for c in self.calls if c.startswith(("nvmlDeviceSet", "nvmlDeviceReset"))]
