# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU settings requests as data: their shape, sign and order (judged without a GPU), the GPU
selectors' form, and whether one GPU, described by its facts, can take a request.

One implementation for two places: the nvidia_gpu module judges its options with it before it
starts NVML, and the gpu_tuning role judges its variables with it on the controller (through
plugins/filter/inputs.py), against the GPUs of `llmfleet_gpu` where they are known. Pure
functions, no NVML call."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

COMPUTE_MODES = ("default", "exclusive_process", "prohibited")
SETTINGS = ("persistence_mode", "compute_mode", "power_limit", "application_clocks", "locked_clocks")
# An index, or a GPU uuid as NVML reports it (nvmlDeviceGetUUID).
SELECTOR = re.compile(r"^([0-9]+|GPU-[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12})$")
SELECTOR_ACCEPTED = "a GPU index (0, 1, ...) or a GPU uuid (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, as nvidia-smi -L prints it)"

# option: (keyword meaning "back to the GPU's own state", keys of the map form, how to say it)
SHAPES = {
    "power_limit": ("default", None, "watts as an integer, or 'default'"),
    "application_clocks": ("default", ("graphics", "memory"), "{memory: MHz, graphics: MHz} or 'default'"),
    "locked_clocks": ("reset", ("max", "min"), "{min: MHz, max: MHz} or 'reset'"),
}
_TRUE = ("yes", "on", "1", "true", "y", "t")
_FALSE = ("no", "off", "0", "false", "n", "f")


def _int(value):
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, float):
        if value != int(value):
            raise ValueError(value)
        return int(value)
    return int(str(value).strip())


def _boolean(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(value)


def _parse_shaped(name, value, label):
    """(parsed value, problem or None) of one shaped option."""
    keyword, keys, accepted = SHAPES[name]
    if value == keyword:
        return keyword, None
    try:
        if keys is None:
            number = _int(value)
            if number <= 0:
                return None, "%s: %r is not accepted; give watts above 0, or 'default'" % (label, value)
            return number, None
        if not isinstance(value, dict) or tuple(sorted(value)) != keys:
            raise ValueError(value)
        parsed = dict((key, _int(value[key])) for key in keys)
    except (TypeError, ValueError, AttributeError):
        return None, "%s: %r is not accepted; give %s" % (label, value, accepted)
    low = [key for key in keys if parsed[key] <= 0]
    if low:
        return None, "%s: %r is not accepted; clocks are MHz above 0 (%s)" % (label, value, ", ".join(low))
    if name == "locked_clocks" and parsed["min"] > parsed["max"]:
        return None, ("%s: %r is not accepted; min %d MHz is above max %d MHz (give min <= max, or 'reset')"
                      % (label, value, parsed["min"], parsed["max"]))
    return parsed, None


def parse_request(params, labels=None):
    """(request, problems): the settings in `params` that are not None, as {setting: value} with
    dicts of ints, 'default'/'reset' markers or ints, and a sentence for every value no GPU could
    accept (a shape, a sign, min above max, an unknown compute mode). `labels` names each setting
    in the sentences (default: the setting's own name)."""
    labels = labels or {}
    request, problems = {}, []
    for name in SETTINGS:
        value = params.get(name)
        if value is None:
            continue
        label = labels.get(name, name)
        if name == "persistence_mode":
            try:
                request[name] = _boolean(value)
            except ValueError:
                problems.append("%s: %r is not accepted; give true or false" % (label, value))
        elif name == "compute_mode":
            if value in COMPUTE_MODES:
                request[name] = value
            else:
                problems.append("%s: %r is not accepted; give one of %s" % (label, value, ", ".join(COMPUTE_MODES)))
        else:
            parsed, problem = _parse_shaped(name, value, label)
            if problem:
                problems.append(problem)
            else:
                request[name] = parsed
    return request, problems


def selector_problems(selectors, variable="gpus"):
    """Sentences for GPU selectors that cannot name a GPU on any host (not an index or a uuid),
    or that name one twice."""
    if selectors is None:
        return []
    if isinstance(selectors, (str, bytes, dict)) or not isinstance(selectors, (list, tuple)):
        return ["%s: %r is not a list; give a list of %s (empty: every GPU)" % (variable, selectors, SELECTOR_ACCEPTED)]
    problems = []
    bad = [item for item in selectors if isinstance(item, bool) or not SELECTOR.match(str(item).strip())]
    if bad:
        problems.append("%s: %s %s not %s" % (variable, ", ".join(repr(b) for b in bad),
                                              "is" if len(bad) == 1 else "are", SELECTOR_ACCEPTED))
    keys = [str(int(str(item).strip())) if str(item).strip().isdigit() else str(item).strip()
            for item in selectors if item not in bad]
    twice = sorted(set(k for k in keys if keys.count(k) > 1))
    if twice:
        problems.append("%s: %s named more than once" % (variable, ", ".join(twice)))
    return problems


def select(selectors, gpus, variable="gpus", host="this host"):
    """(chosen GPU facts, problems): the GPUs of `gpus` (facts with index and uuid, as
    nvidia_gpu_info reads them) that `selectors` name, every GPU when there is none."""
    if not selectors:
        return list(gpus), []
    by_index = dict((int(g["index"]), g) for g in gpus)
    by_uuid = dict((str(g.get("uuid")), g) for g in gpus)
    chosen, missing = [], []
    for item in selectors:
        key = str(item).strip()
        gpu = by_index.get(int(key)) if key.isdigit() else by_uuid.get(key)
        if gpu is None:
            missing.append(key)
        elif gpu not in chosen:
            chosen.append(gpu)
    if missing:
        return chosen, ["%s: no GPU %s on %s; it has %d GPU(s): indices 0-%d, uuids %s"
                        % (variable, ", ".join(missing), host, len(gpus), len(gpus) - 1,
                           ", ".join(sorted(str(g.get("uuid")) for g in gpus)))]
    return chosen, []


def desired_for(gpu, request, labels=None):
    """(desired settings, problems) for one GPU, given its facts (nvml.NvmlSession.read_gpu, or
    an entry of llmfleet_gpu.gpus). `labels` names the settings in the sentences."""
    labels = labels or {}
    name = "GPU %s (%s)" % (gpu["index"], gpu["uuid"])
    want, problems = {}, []
    for key, value in request.items():
        label = labels.get(key, key)
        if key == "power_limit":
            low, high = gpu.get("power_limit_min_w"), gpu.get("power_limit_max_w")
            if value == "default":
                value = gpu.get("power_limit_default_w")
            if value is None or low is None or high is None:
                problems.append("%s: %s cannot be managed here (the GPU reports no power limit constraints)" % (name, label))
                continue
            if not low <= value <= high:
                problems.append("%s: %s %s W is outside what it accepts (%s-%s W)" % (name, label, value, low, high))
                continue
        elif key == "application_clocks":
            if value == "default":
                value = dict(gpu.get("default_application_clocks") or {"memory": None, "graphics": None})
                if None in value.values():
                    problems.append("%s: %s cannot be managed here (no default application clocks reported)" % (name, label))
                    continue
            else:
                mems = gpu.get("supported_memory_clocks") or []
                if value["memory"] not in mems:
                    problems.append("%s: %s memory %s MHz is not supported; supported: %s"
                                    % (name, label, value["memory"], ", ".join(str(m) for m in mems) or "none"))
                    continue
                graphics = (gpu.get("supported_graphics_clocks") or {}).get(str(value["memory"]), [])
                if value["graphics"] not in graphics:
                    problems.append("%s: %s graphics %s MHz is not supported at memory %s MHz; "
                                    "supported: %s MHz in the steps nvidia_gpu_info lists"
                                    % (name, label, value["graphics"], value["memory"],
                                       ("%s-%s" % (min(graphics), max(graphics))) if graphics else "none"))
                    continue
        elif key == "locked_clocks" and value != "reset":
            all_graphics = [c for clocks in (gpu.get("supported_graphics_clocks") or {}).values() for c in clocks]
            low = min(all_graphics) if all_graphics else None
            high = (gpu.get("max_clocks") or {}).get("graphics")
            if low is None or high is None:
                problems.append("%s: %s cannot be managed here (no graphics clock range reported)" % (name, label))
                continue
            if value["min"] > value["max"] or value["min"] < low or value["max"] > high:
                problems.append("%s: %s %s-%s MHz is not accepted; min <= max, both within %s-%s MHz"
                                % (name, label, value["min"], value["max"], low, high))
                continue
        elif key == "locked_clocks":
            value = None
        want[key] = value
    return want, problems
