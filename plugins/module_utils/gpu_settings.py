# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU settings as desired state: the one implementation of every rule about them.

- Judged without a GPU (shape, sign, min <= max, the GPU selectors' form): `judge()`. The
  nvidia_gpu module runs it before NVML starts, the boot entry runs it on the desired-state file,
  and the gpu_tuning role runs it on the controller (plugins/module_utils/inputs.py).
- Judged against one GPU's facts: `desired_for()` (the module and the boot entry on each selected
  GPU read through NVML; the role against the GPUs of `llmfleet_gpu`).
- Read, planned, applied through NVML and read back: `converge()`, shared by the nvidia_gpu module
  and the boot entry `cli()`, which llmfleet-gpu-settings.service runs at boot from the role's
  NVML virtualenv on the role's desired-state file (a JSON document whose `options` are the
  module's options).

Imports nothing from Ansible, so the gpu_tuning role can copy this file and nvml.py onto the host
(in the same ansible_collections/llmfleet/deepseek/plugins/module_utils layout) for the boot
unit, where Ansible is not installed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import os
import re
import sys
import tempfile

from ansible_collections.llmfleet.deepseek.plugins.module_utils import nvml

COMPUTE_MODES = ("default", "exclusive_process", "prohibited")
# The settings, in the order they are applied to a GPU: persistence first, clocks last.
SETTINGS = ("persistence_mode", "compute_mode", "power_limit", "application_clocks", "locked_clocks")
# Each setting as an option of the nvidia_gpu module (its argument spec; the module adds gpus and
# state_file). The values themselves are judged by parse_request, not by these types.
SETTING_SPECS = {
    "persistence_mode": {"type": "bool"},
    "compute_mode": {"type": "str", "choices": list(COMPUTE_MODES)},
    "power_limit": {"type": "raw"},
    "application_clocks": {"type": "raw"},
    "locked_clocks": {"type": "raw"},
}
DEFAULT_STATE_FILE = "/var/lib/llmfleet/nvidia-gpu-state.json"
# The options of the nvidia_gpu module, which are the `options` of the desired-state document.
OPTIONS = ("gpus", "state_file") + SETTINGS
DOCUMENT_FORMAT = 1

_INDEX = re.compile(r"^[0-9]+$")
_UUID = re.compile(r"^GPU-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.IGNORECASE)
SELECTOR_ACCEPTED = "a GPU index (0, 1, ...) or a GPU uuid (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, as nvidia-smi -L prints it)"

# option: (keyword meaning "back to the GPU's own state", keys of the map form, how to say it)
SHAPES = {
    "power_limit": ("default", None, "watts as an integer, or 'default'"),
    "application_clocks": ("default", ("graphics", "memory"), "{memory: MHz, graphics: MHz} or 'default'"),
    "locked_clocks": ("reset", ("max", "min"), "{min: MHz, max: MHz} or 'reset'"),
}
_TRUE = ("yes", "on", "1", "true", "y", "t")
_FALSE = ("no", "off", "0", "false", "n", "f")


# -- judged without a GPU ---------------------------------------------------------------------
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


def parse_selector(item):
    """(selector, why): one GPU selector as NVML names the GPU (an index as its digits without
    leading zeros, a uuid as GPU- and lower-case hex), or (None, why it names no GPU)."""
    if isinstance(item, bool) or item is None:
        return None, "is not " + SELECTOR_ACCEPTED
    text = str(item).strip()
    if _INDEX.match(text):
        return str(int(text)), None
    if _UUID.match(text):
        return "GPU-" + text[4:].lower(), None
    if text.upper().startswith("MIG-"):
        return None, "is a MIG device; give the parent GPU's index or uuid (settings and facts are per whole GPU)"
    return None, "is not " + SELECTOR_ACCEPTED


def parse_selectors(selectors, variable="gpus", repeats=False):
    """(selectors, problems): each entry as parse_selector gives it, and sentences for entries that
    cannot name a GPU on any host, or (unless `repeats`) that name one twice. None is no
    selection (every GPU)."""
    if selectors is None:
        return [], []
    if isinstance(selectors, (str, bytes, dict)) or not isinstance(selectors, (list, tuple)):
        return [], ["%s: %r is not a list; give a list of %s (empty: every GPU)" % (variable, selectors, SELECTOR_ACCEPTED)]
    parsed, bad = [], {}
    for item in selectors:
        selector, why = parse_selector(item)
        if why:
            bad.setdefault(why, []).append(item)
        elif selector not in parsed:
            parsed.append(selector)
        elif not repeats:
            bad.setdefault("twice", []).append(selector)
    problems = []
    for why, items in bad.items():
        if why == "twice":
            problems.append("%s: %s named more than once" % (variable, ", ".join(sorted(set(items)))))
        else:
            problems.append("%s: %s %s" % (variable, ", ".join(repr(b) for b in items),
                                           why if len(items) == 1 else why.replace("is ", "are ", 1)))
    return parsed, problems


def selector_problems(selectors, variable="gpus"):
    """Sentences for GPU selectors that cannot name a GPU on any host, or that name one twice."""
    return parse_selectors(selectors, variable)[1]


def judge(options, labels=None, variable="gpus"):
    """(request, selectors, problems) of a set of nvidia_gpu options (or the role's settings with
    `labels` naming its variables): everything that needs no GPU, every problem at once, the
    selectors' first. The one check before NVML, for the module, the boot entry and the role."""
    selectors, problems = parse_selectors(options.get("gpus"), variable)
    request, more = parse_request(options, labels)
    return request, selectors, problems + more


def select(selectors, gpus, variable="gpus", host="this host"):
    """(chosen GPU facts, problems): the GPUs of `gpus` (facts with index and uuid, as
    nvidia_gpu_info reads them) that `selectors` name, every GPU when there is none."""
    if not selectors:
        return list(gpus), []
    by_index = dict((str(g["index"]), g) for g in gpus)
    by_uuid = dict((str(g.get("uuid")).lower(), g) for g in gpus)
    chosen, missing = [], []
    for item in selectors:
        key = parse_selector(item)[0] or str(item).strip()
        gpu = by_index.get(key) if key.isdigit() else by_uuid.get(key.lower())
        if gpu is None:
            missing.append(key)
        elif gpu not in chosen:
            chosen.append(gpu)
    if missing:
        return chosen, ["%s: no GPU %s on %s; it has %d GPU(s): indices 0-%d, uuids %s"
                        % (variable, ", ".join(missing), host, len(gpus), len(gpus) - 1,
                           ", ".join(sorted(str(g.get("uuid")) for g in gpus)))]
    return chosen, []


# -- judged against one GPU -------------------------------------------------------------------
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


def against_gpus(request, selectors, gpus, labels=None, variable="gpus", host="this host"):
    """Sentences for a request that the GPUs of `gpus` (facts) it selects cannot take."""
    chosen, problems = select(selectors, gpus, variable, host)
    for gpu in chosen:
        problems.extend(desired_for(gpu, request, labels)[1])
    return problems


# -- the desired-state document (what the gpu_tuning role writes, the boot entry reads) --------
def document_problems(doc):
    """Sentences for a desired-state document that cannot be applied: {format: 1, options: the
    nvidia_gpu module's options, persistence_daemon: whether nvidia-persistenced keeps
    persistence mode at boot}."""
    if not isinstance(doc, dict):
        return ["the document is %s, not a JSON object {format, options, persistence_daemon}" % type(doc).__name__]
    problems = []
    if doc.get("format") != DOCUMENT_FORMAT:
        problems.append("format: %r is not accepted; this code reads format %d" % (doc.get("format"), DOCUMENT_FORMAT))
    unknown = sorted(set(doc) - {"format", "options", "persistence_daemon"})
    if unknown:
        problems.append("unknown keys %s; keys are format, options, persistence_daemon" % ", ".join(unknown))
    if not isinstance(doc.get("persistence_daemon", False), bool):
        problems.append("persistence_daemon: %r is not accepted; give true or false" % (doc.get("persistence_daemon"),))
    options = doc.get("options")
    if not isinstance(options, dict):
        return problems + ["options: %r is not accepted; give the nvidia_gpu module's options as an object" % (options,)]
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        problems.append("options: unknown %s; options are %s" % (", ".join(unknown), ", ".join(OPTIONS)))
    state_file = options.get("state_file", DEFAULT_STATE_FILE)
    if not isinstance(state_file, str) or not os.path.isabs(state_file):
        problems.append("options.state_file: %r is not accepted; give an absolute path" % (state_file,))
    return problems + judge(options)[2]


def read_document(path):
    """(document, problems) of the desired-state file at `path`."""
    try:
        with open(path) as handle:
            doc = json.load(handle)
    except (IOError, OSError) as exc:
        return None, ["%s cannot be read: %s" % (path, exc)]
    except ValueError as exc:
        return None, ["%s is not JSON: %s" % (path, exc)]
    return doc, ["%s: %s" % (path, p) for p in document_problems(doc)]


# -- read, plan, apply, read back through NVML -------------------------------------------------
class ApplyFailed(Exception):
    """A request that cannot be (or was not completely) applied: `msg` says what and where,
    `changed` whether a setting was applied before, `gpus` the plan so far."""

    def __init__(self, msg, changed=False, gpus=None):
        super(ApplyFailed, self).__init__(msg)
        self.msg = msg
        self.changed = changed
        self.gpus = gpus


def read_record(path):
    """The locked clocks this code set, by GPU uuid (NVML cannot read them back)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (IOError, OSError, ValueError):
        return {}


def write_record(path, record, move=os.replace):
    """Write the record atomically: a temporary file next to it, then `move` (os.replace, or the
    module's atomic_move)."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".nvidia-gpu-state")
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o644)
    move(tmp, path)


def plan(session, request, selectors, record):
    """[(index, handle, facts, changes)] for the selected GPUs; raises ApplyFailed naming every
    value a GPU cannot take, before anything is changed."""
    plans, problems = [], []
    for index, handle in session.select(selectors):
        facts = session.read_gpu(index, handle)
        want, bad = desired_for(facts, request)
        problems.extend(bad)
        now = nvml.read_settings(session, handle)
        now["locked_clocks"] = record.get(facts["uuid"])
        changes = dict((key, {"before": now[key], "after": want[key]})
                       for key in SETTINGS if key in want and want[key] != now[key])
        plans.append((index, handle, facts, changes))
    if problems:
        raise ApplyFailed("nothing was changed on any GPU: " + "; ".join(problems))
    return plans


def apply(session, plans, record, save, gpus):
    """Apply each GPU's changes in SETTINGS order, then read the GPU back."""
    done = []
    for index, handle, facts, changes in plans:
        for key in SETTINGS:
            if key not in changes:
                continue
            after = changes[key]["after"]
            value = after
            if key == "application_clocks" and after == facts["default_application_clocks"]:
                value = None  # back to the defaults: NVML's reset, not a pinned copy of them
            try:
                nvml.apply_setting(session, handle, key, value)
            except session.lib.NVMLError as exc:
                code = nvml.error_code(exc)
                why = {nvml.NO_PERMISSION: "NVML refuses it to this user (run as root)",
                       nvml.NOT_SUPPORTED: "this GPU does not support it"}.get(code, "")
                raise ApplyFailed("GPU %d (%s): setting %s to %s failed: %s%s. Applied before the failure: %s"
                                  % (index, facts["uuid"], key, after, nvml.describe_error(exc),
                                     " - " + why if why else "", ", ".join(done) or "nothing"),
                                  changed=bool(done), gpus=gpus)
            done.append("GPU %d %s" % (index, key))
            if key == "locked_clocks":
                if after is None:
                    record.pop(facts["uuid"], None)
                else:
                    record[facts["uuid"]] = after
                save(record)
        readback = nvml.read_settings(session, handle)
        wrong = ["%s reads %s, not %s" % (k, readback[k], changes[k]["after"])
                 for k in changes if k in readback and readback[k] != changes[k]["after"]]
        if wrong:
            raise ApplyFailed("GPU %d (%s) did not take the settings: %s" % (index, facts["uuid"], "; ".join(wrong)),
                              changed=True, gpus=gpus)


def converge(session, request, selectors, state_file=DEFAULT_STATE_FILE, check=False, move=os.replace, boot=False):
    """Read the selected GPUs, compare with `request`, change only what differs (not in `check`),
    read back. `boot`: the GPUs have just been reset (a boot, a driver reload), so the record of
    locked clocks is stale (the driver forgot them): it is started afresh and a lock asked for is
    set again. Returns {changed, changes, gpus, diff}."""
    recorded = read_record(state_file)
    record = {} if boot else dict(recorded)
    plans = plan(session, request, selectors, record)
    result = {"changed": False, "changes": 0, "gpus": [], "diff": []}
    for index, handle, facts, changes in plans:
        result["gpus"].append({"index": index, "uuid": facts["uuid"], "changes": changes})
        if changes:
            header = "GPU %d (%s)" % (index, facts["uuid"])
            result["diff"].append({
                "before_header": header, "after_header": header,
                "before": dict((k, v["before"]) for k, v in changes.items()),
                "after": dict((k, v["after"]) for k, v in changes.items()),
            })
    result["changes"] = sum(len(g["changes"]) for g in result["gpus"])
    result["changed"] = result["changes"] > 0
    if check:
        return result
    if result["changed"]:
        apply(session, plans, record, lambda data: write_record(state_file, data, move), result["gpus"])
    if boot and record != recorded:
        write_record(state_file, record, move)
    return result


def apply_request(lib, request, selectors, state_file=DEFAULT_STATE_FILE, check=False, move=os.replace, boot=False):
    """converge() in one NVML session of `lib` (pynvml, or a test double); NVML's own failures
    as ApplyFailed with a sentence."""
    try:
        with nvml.NvmlSession(lib) as session:
            return converge(session, request, selectors, state_file, check, move, boot)
    except nvml.NvmlUnavailable as exc:
        raise ApplyFailed("NVML is unavailable on this host: %s" % exc.reason)
    except nvml.GpuSelectionError as exc:
        raise ApplyFailed("gpus: %s" % exc)
    except lib.NVMLError as exc:
        raise ApplyFailed("NVML failed: %s" % nvml.describe_error(exc))


# -- the boot entry (llmfleet-gpu-settings.service) ------------------------------------------
def _describe(result):
    lines = []
    for gpu in result["gpus"]:
        for key, change in gpu["changes"].items():
            before, after = (json.dumps(change[k], sort_keys=True) for k in ("before", "after"))
            lines.append("GPU %s (%s): %s %s -> %s" % (gpu["index"], gpu["uuid"], key, before, after))
    return lines


def cli(argv=None, loader=nvml.load_pynvml, out=None, err=None):
    """The boot entry: apply the desired-state document through NVML, after the GPUs were reset
    (converge's `boot`: a lock asked for is set again, whatever the record says). Exit status 0
    when the GPUs are as the document asks (after changing them), 1 when it cannot be applied, 2
    for a usage error."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(
        prog="llmfleet-gpu-settings",
        description="Apply the gpu_tuning role's desired GPU settings (a JSON document) through NVML.")
    parser.add_argument("document", help="the desired-state file (the role writes /opt/llmfleet/gpu-settings/desired-state.json)")
    parser.add_argument("--validate", action="store_true",
                        help="only judge the document (no NVML): what the role's copy task runs before it writes it")
    parser.add_argument("--check", action="store_true", help="say what would change, change nothing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (as the nvidia_gpu module returns it)")
    args = parser.parse_args(argv)

    doc, problems = read_document(args.document)
    if problems:
        err.write("llmfleet-gpu-settings: %s\n" % "; ".join(problems))
        return 1
    if args.validate:
        return 0
    options = doc["options"]
    request, selectors = judge(options)[:2]
    if doc.get("persistence_daemon"):
        # At boot nvidia-persistenced (ordered before this unit) keeps persistence mode.
        request.pop("persistence_mode", None)
    try:
        lib = loader()
    except ImportError as exc:
        err.write("llmfleet-gpu-settings: nvidia-ml-py is not installed for %s (%s); the gpu_tuning role installs it "
                  "into its virtualenv\n" % (sys.executable, exc))
        return 1
    try:
        result = apply_request(lib, request, selectors, options.get("state_file", DEFAULT_STATE_FILE),
                               check=args.check, boot=True)
    except ApplyFailed as exc:
        err.write("llmfleet-gpu-settings: %s\n" % exc.msg)
        return 1
    if args.json:
        out.write(json.dumps(dict(result, check=args.check), sort_keys=True) + "\n")
    else:
        for line in _describe(result):
            out.write(line + "\n")
        verb = "would change" if args.check else "changed"
        out.write("%s%d setting(s) %s on %d GPU(s)\n" % ("check: " if args.check else "", result["changes"], verb, len(result["gpus"])))
    return 0
