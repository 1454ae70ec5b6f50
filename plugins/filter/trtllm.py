# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over plugins/module_utils/trtllm.py: the serving plan's checks, evaluated on the
controller (no task, no round trip to the host)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.llmfleet.deepseek.plugins.module_utils import trtllm


def trtllm_fit_problems(plan, gpu, host="this host"):
    if not isinstance(plan, dict) or not isinstance(gpu, dict):
        raise AnsibleFilterError("trtllm_fit_problems: the plan and the GPU facts must be dicts")
    try:
        return trtllm.fit_problems(plan, gpu, host)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("trtllm_fit_problems: %s" % exc)


def trtllm_option_problems(options, known, variable, flags=False):
    if not isinstance(options, dict):
        raise AnsibleFilterError("trtllm_option_problems: %s must be a dict, got %s" % (variable, type(options).__name__))
    return trtllm.option_problems(options, known, variable, flags)


class FilterModule(object):
    def filters(self):
        return {
            "trtllm_fit_problems": trtllm_fit_problems,
            "trtllm_option_problems": trtllm_option_problems,
        }
