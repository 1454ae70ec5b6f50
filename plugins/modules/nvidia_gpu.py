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
  - Judging, planning, applying and reading back live in the collection's module_utils
    (C(gpu_settings.py), C(nvml.py)), which import nothing from Ansible. The gpu_tuning role
    writes these options as a JSON document and its boot unit applies that document at boot with
    the same code, so a run and a boot cannot disagree.
author:
  - llmfleet.deepseek maintainers (@llmfleet)
options:
  gpus:
    description:
      - GPUs to manage, by index (V(0)) or uuid (V(GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), as
        C(nvidia-smi -L) prints it, any case). Empty means every GPU.
      - Anything else (a MIG device, a GPU named twice) is refused before NVML starts; the rule
        is the one M(llmfleet.deepseek.nvidia_gpu_info) and the gpu_tuning role apply.
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
  - name: The gpu_tuning role
    description: Writes these options as the desired state and re-applies them at boot with the same code.
    link: https://github.com/llmfleet/deepseek/blob/main/docs/roles/gpu_tuning.md
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

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.llmfleet.deepseek.plugins.module_utils import gpu_settings, nvml


def build_module():
    # The settings' options come from gpu_settings (one table for the module and the role).
    spec = dict(
        gpus=dict(type="list", elements="str", default=[]),
        state_file=dict(type="path", default=gpu_settings.DEFAULT_STATE_FILE),
    )
    spec.update((name, dict(option)) for name, option in gpu_settings.SETTING_SPECS.items())
    return AnsibleModule(argument_spec=spec, supports_check_mode=True)


class GpuSettings:
    """Options in, result out: judging, planning, applying and reading back are
    gpu_settings.judge() and gpu_settings.apply_request(), which the gpu_tuning role's boot unit
    runs too."""

    def __init__(self, module, loader=nvml.load_pynvml):
        self.module = module
        self.loader = loader

    def run(self):
        started = time.monotonic()
        params = self.module.params
        # Everything that needs no GPU is judged before NVML starts, so a bad value gets its own
        # message on every host, GPU or not.
        request, selectors, problems = gpu_settings.judge(params)
        if problems:
            self.module.fail_json(msg="; ".join(problems))
        try:
            lib = self.loader()
        except ImportError:
            self.module.fail_json(msg=missing_required_lib("nvidia-ml-py"), exception=traceback.format_exc())
        try:
            result = gpu_settings.apply_request(lib, request, selectors, params["state_file"],
                                                check=self.module.check_mode, move=self.module.atomic_move)
        except gpu_settings.ApplyFailed as exc:
            extra = {} if exc.gpus is None else {"changed": exc.changed, "gpus": exc.gpus}
            self.module.fail_json(msg=exc.msg, **extra)
        if not self.module._diff:
            result.pop("diff")
        result["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        return result


def main():
    module = build_module()
    module.exit_json(**GpuSettings(module).run())


if __name__ == "__main__":
    main()
