#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: nvidia_gpu
short_description: Keep NVIDIA GPU settings in a desired state through NVML
version_added: "0.1.0"
description:
  - Reads each selected GPU's settings through NVML (nvidia-ml-py), compares them with the request
    and changes only what differs. Every option is optional; an option left out is left alone.
  - Before NVML starts, judges what needs no GPU (the shapes, a power limit or clock not above
    0, locked clocks with min above max, a GPU selector that is neither an index nor a uuid), so
    such a value fails with its own message on every host, with or without a GPU.
  - Before any change, validates the whole request against what every selected GPU reports (a
    clock it does not support, a power limit outside its constraints, an unknown GPU). A bad
    request fails naming the GPU, the value and what is accepted, and no GPU is changed.
  - After a change, reads the values back and fails if a GPU did not take them.
  - NVML cannot read locked clocks back. The module records the locked clocks it set in
    O(state_file) and compares against that record; a lock set by other means is not seen.
author:
  - llmfleet.deepseek maintainers (@llmfleet)
options:
  gpus:
    description:
      - GPUs to manage, by index (V(0)) or uuid (V(GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), as
        C(nvidia-smi -L) prints it). Empty means every GPU.
      - Anything else is refused before NVML starts.
    type: list
    elements: str
    default: []
  persistence_mode:
    description:
      - Driver persistence mode. NVIDIA recommends the C(nvidia-persistenced) daemon over this
        switch; the gpu_tuning role enables the daemon.
    type: bool
  application_clocks:
    description:
      - "Application clocks as a map C({memory: MHz, graphics: MHz}), or V(default) for the GPU's
        default application clocks."
      - The memory clock must be one the GPU lists, and the graphics clock one it lists for
        that memory clock (the C(supported_memory_clocks) and C(supported_graphics_clocks) that
        M(llmfleet.deepseek.nvidia_gpu_info) returns).
    type: raw
  locked_clocks:
    description:
      - "Lock the GPU (graphics) clock into a range C({min: MHz, max: MHz}), or V(reset) to unlock."
      - Both bounds must lie between the lowest supported graphics clock and the maximum graphics
        clock, and min must not exceed max.
    type: raw
  power_limit:
    description:
      - Power limit in watts (an integer above 0), or V(default) for the GPU's default limit.
        Must lie within the GPU's min/max constraints.
    type: raw
  compute_mode:
    description: Compute mode.
    type: str
    choices: [default, exclusive_process, prohibited]
  state_file:
    description: Where the module records the locked clocks it set (JSON, by GPU uuid).
    type: path
    default: /var/lib/llmfleet/nvidia-gpu-state.json
attributes:
  check_mode:
    support: full
    description: Reports exactly what would change; makes no NVML call that sets anything.
  diff_mode:
    support: full
    description: One before/after pair per changed GPU, with only the settings that change.
requirements:
  - nvidia-ml-py (the C(pynvml) module) and a loaded NVIDIA driver on the managed host.
  - Root (NVML refuses setting changes to other users).
seealso:
  - module: llmfleet.deepseek.nvidia_gpu_info
"""

EXAMPLES = r"""
- name: Maximum performance on every GPU
  llmfleet.deepseek.nvidia_gpu:
    persistence_mode: true
    application_clocks: {memory: 2619, graphics: 1980}
    power_limit: default
    compute_mode: default

- name: Cap power on two GPUs, leave everything else alone
  llmfleet.deepseek.nvidia_gpu:
    gpus: [0, GPU-5b9c2c4e-8f3a-4d43-9a0e-0c1d2e3f4a5b]
    power_limit: 500

- name: Lock the graphics clock, then later unlock it
  llmfleet.deepseek.nvidia_gpu:
    locked_clocks: {min: 1755, max: 1980}

- name: Unlock
  llmfleet.deepseek.nvidia_gpu:
    locked_clocks: reset
"""

RETURN = r"""
gpus:
  description: One entry per selected GPU with the changes made (or, in check mode, that would be made).
  returned: always
  type: list
  elements: dict
  sample:
    - index: 0
      uuid: GPU-5b9c2c4e-8f3a-4d43-9a0e-0c1d2e3f4a5b
      changes:
        power_limit: {before: 700, after: 500}
changes:
  description: Number of settings changed (or that would change) over all GPUs.
  returned: always
  type: int
  sample: 1
elapsed_ms:
  description: Time the module spent, in milliseconds.
  returned: always
  type: float
  sample: 63.2
"""

import json
import os
import tempfile
import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmfleet.deepseek.plugins.module_utils import gpu_settings, nvml


def build_module():
    return AnsibleModule(
        argument_spec=dict(
            gpus=dict(type="list", elements="str", default=[]),
            persistence_mode=dict(type="bool"),
            application_clocks=dict(type="raw"),
            locked_clocks=dict(type="raw"),
            power_limit=dict(type="raw"),
            compute_mode=dict(type="str", choices=sorted(gpu_settings.COMPUTE_MODES)),
            state_file=dict(type="path", default="/var/lib/llmfleet/nvidia-gpu-state.json"),
        ),
        supports_check_mode=True,
    )


class GpuSettings:
    def __init__(self, module, loader=nvml.load_pynvml):
        self.module = module
        self.loader = loader
        self.state_file = module.params["state_file"]

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, **extra)

    def read_state(self):
        try:
            with open(self.state_file) as handle:
                data = json.load(handle)
            return data if isinstance(data, dict) else {}
        except (IOError, OSError, ValueError):
            return {}

    def write_state(self, state):
        directory = os.path.dirname(self.state_file)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".nvidia-gpu-state")
        with os.fdopen(fd, "w") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
        os.chmod(tmp, 0o644)
        self.module.atomic_move(tmp, self.state_file)

    def run(self):
        started = time.monotonic()
        params = self.module.params
        # Everything that needs no GPU is judged before NVML starts, so a bad value gets its own
        # message on every host, GPU or not.
        request, problems = gpu_settings.parse_request(params)
        problems = gpu_settings.selector_problems(params["gpus"]) + problems
        if problems:
            self.fail("; ".join(problems))
        try:
            lib = self.loader()
        except ImportError:
            self.fail(missing_required_lib("nvidia-ml-py"), exception=traceback.format_exc())
        try:
            with nvml.NvmlSession(lib) as session:
                result = self.converge(session, request)
        except nvml.NvmlUnavailable as exc:
            self.fail("NVML is unavailable on this host: %s" % exc.reason)
        except nvml.GpuSelectionError as exc:
            self.fail("gpus: %s" % exc)
        except lib.NVMLError as exc:
            self.fail("NVML failed: %s" % nvml.describe_error(exc))
        result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        return result

    def converge(self, session, request):
        chosen = session.select(self.module.params["gpus"])
        state = self.read_state()
        plans, problems = [], []
        for index, handle in chosen:
            facts = session.read_gpu(index, handle)
            want, bad = gpu_settings.desired_for(facts, request)
            problems.extend(bad)
            now = nvml.read_settings(session, handle)
            now["locked_clocks"] = state.get(facts["uuid"])
            changes = {}
            for key in nvml.SETTINGS:
                if key in want and want[key] != now[key]:
                    changes[key] = {"before": now[key], "after": want[key]}
            plans.append((index, handle, facts, changes))
        if problems:
            # Nothing has been changed on any GPU at this point.
            self.fail("nothing was changed on any GPU: " + "; ".join(problems))

        result = {"changed": False, "changes": 0, "gpus": []}
        diffs = []
        for index, handle, facts, changes in plans:
            result["gpus"].append({"index": index, "uuid": facts["uuid"], "changes": changes})
            if changes:
                diffs.append({
                    "before_header": "GPU %d (%s)" % (index, facts["uuid"]),
                    "after_header": "GPU %d (%s)" % (index, facts["uuid"]),
                    "before": dict((k, v["before"]) for k, v in changes.items()),
                    "after": dict((k, v["after"]) for k, v in changes.items()),
                })
        result["changes"] = sum(len(g["changes"]) for g in result["gpus"])
        result["changed"] = result["changes"] > 0
        if self.module._diff:
            result["diff"] = diffs
        if self.module.check_mode or not result["changed"]:
            return result

        done = []
        for index, handle, facts, changes in plans:
            for key in nvml.SETTINGS:  # persistence first, clocks last
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
                    self.fail("GPU %d (%s): setting %s to %s failed: %s%s. Applied before the failure: %s"
                              % (index, facts["uuid"], key, after, nvml.describe_error(exc),
                                 " - " + why if why else "", ", ".join(done) or "nothing"),
                              changed=bool(done), gpus=result["gpus"])
                done.append("GPU %d %s" % (index, key))
                if key == "locked_clocks":
                    if after is None:
                        state.pop(facts["uuid"], None)
                    else:
                        state[facts["uuid"]] = after
                    self.write_state(state)
            readback = nvml.read_settings(session, handle)
            wrong = ["%s reads %s, not %s" % (k, readback[k], changes[k]["after"])
                     for k in changes if k in readback and readback[k] != changes[k]["after"]]
            if wrong:
                self.fail("GPU %d (%s) did not take the settings: %s" % (index, facts["uuid"], "; ".join(wrong)),
                          changed=True, gpus=result["gpus"])
        return result


def main():
    module = build_module()
    module.exit_json(**GpuSettings(module).run())


if __name__ == "__main__":
    main()
