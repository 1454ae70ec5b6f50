"""FAKE `pynvml` for running code that imports pynvml in its own process (tests only): the
gpu_tuning role's boot entry, run as llmfleet-gpu-settings.service runs it.

Put this directory, and the one holding fake_pynvml.py (its parent, or a copy next to this file),
first on PYTHONPATH: `import pynvml` then answers with fake_pynvml.FakePynvml. The GPUs keep their
settings between processes, as a real GPU keeps them between runs, in the JSON file named by
FAKE_NVML_STATE; each process appends the set calls it made to that file's "setters". Started
without that file, there are FAKE_NVML_GPUS (default 1) H100s as after a boot: persistence
mode off, everything else at its default. FAKE_NVML_INIT_ERROR makes nvmlInit fail with that
NVML code (9: the driver is not loaded). Never used outside tests.
"""
import json
import os
import sys

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]

import fake_pynvml  # noqa: E402 pylint: disable=wrong-import-position

NVMLError = fake_pynvml.NVMLError
c_nvmlGpuFabricInfoV_t = fake_pynvml.c_nvmlGpuFabricInfoV_t  # pylint: disable=invalid-name
_STATE = os.environ.get("FAKE_NVML_STATE")
# The settings a GPU keeps between runs: (field of fake_pynvml.h100, as JSON, back).
_KEPT = {
    "persistence": (lambda v: v, lambda v: v),
    "compute_mode": (lambda v: v, lambda v: v),
    "power_limit": (lambda v: v, lambda v: v),
    "app_clocks": (lambda v: [v[0], v[2]], lambda v: {0: v[0], 2: v[1]}),
    "locked": (lambda v: list(v) if v else None, lambda v: tuple(v) if v else None),
}


def _load():
    saved = {}
    if _STATE and os.path.exists(_STATE):
        with open(_STATE) as handle:
            saved = json.load(handle)
    count = len(saved.get("gpus", [])) or int(os.environ.get("FAKE_NVML_GPUS", "1"))
    gpus = [fake_pynvml.h100(i, persistence=0) for i in range(count)]
    for gpu, kept in zip(gpus, saved.get("gpus", [])):
        for key, codec in _KEPT.items():
            gpu[key] = codec[1](kept[key])
    error = os.environ.get("FAKE_NVML_INIT_ERROR")
    return fake_pynvml.FakePynvml(gpus=gpus, init_error=int(error) if error else None), saved.get("setters", [])


_LIB, _SETTERS = _load()


def _save():
    if not _STATE:
        return
    data = {"gpus": [dict((key, codec[0](gpu[key])) for key, codec in _KEPT.items()) for gpu in _LIB.gpus],
            "setters": _SETTERS + _LIB.setters_called()}
    with open(_STATE, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)


def nvmlShutdown():  # pylint: disable=invalid-name
    _LIB.nvmlShutdown()
    _save()


def __getattr__(name):
    return getattr(_LIB, name)
