# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot entry of llmfleet-gpu-settings.service (installed by the gpu_tuning role).

Applies the role's desired-state file (/opt/llmfleet/gpu-settings/desired-state.json) through NVML with the
collection's own code - plugins/module_utils/gpu_settings.py and nvml.py, which the role copies
next to this file in their package layout - the same code the nvidia_gpu module runs. Run by the
NVML virtualenv's Python; imports nothing from Ansible, which the host does not need at boot.

    python llmfleet_gpu_settings.py [--check] [--json] /opt/llmfleet/gpu-settings/desired-state.json
    python llmfleet_gpu_settings.py --validate FILE    (judge a document, no NVML)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ansible_collections.llmfleet.deepseek.plugins.module_utils import gpu_settings  # noqa: E402 pylint: disable=wrong-import-position

if __name__ == "__main__":
    sys.exit(gpu_settings.cli(sys.argv[1:]))
