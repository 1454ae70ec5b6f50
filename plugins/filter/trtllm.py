# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over plugins/module_utils/trtllm.py: the serving plan's checks, evaluated on the
controller (no task, no round trip to the host)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.llmfleet.deepseek.plugins.module_utils import trtllm, trtllm_options


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


def trtllm_serve_problems(flags, extra_options, option_set, extra_keys=None, owned_flags=None,
                          flags_variable="flags", options_variable="extra_llm_api_options"):
    """{problems, warnings} of trtllm-serve flags and extra_llm_api_options for a named option set."""
    if option_set not in trtllm_options.OPTION_SETS:
        raise AnsibleFilterError("trtllm_serve_problems: unknown option set %s (known: %s)"
                                 % (option_set, ", ".join(sorted(trtllm_options.OPTION_SETS))))
    for name, value in ((flags_variable, flags), (options_variable, extra_options)):
        if value is not None and not isinstance(value, dict):
            raise AnsibleFilterError("trtllm_serve_problems: %s must be a dict, got %s" % (name, type(value).__name__))
    problems, warnings = trtllm.serve_problems(flags, extra_options, trtllm_options.OPTION_SETS[option_set],
                                               extra_keys or (), owned_flags or (), flags_variable, options_variable)
    return {"problems": problems, "warnings": warnings}


def trtllm_batch_problems(node_hosts, batch, nodes):
    """The hosts of a multi-node instance outside this batch of the serving play, as one sentence."""
    try:
        return trtllm.batch_problems(node_hosts, batch, int(nodes))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("trtllm_batch_problems: %s" % exc)


def trtllm_default_instance(index, per_instance, base_port):
    """Instance `index` of the default layout: GPUs index*per..index*per+per-1, port base+index."""
    index, per_instance, base_port = int(index), int(per_instance), int(base_port)
    return {"name": str(index), "port": base_port + index,
            "gpus": list(range(index * per_instance, (index + 1) * per_instance))}


def trtllm_flag_words(item):
    """A flag as command-line words: {key: name, value: true} -> [--name], else [--name, value].
    Values cannot hold whitespace (systemd splits the unit's $TRTLLM_ARGS on it)."""
    name = str(item["key"])
    name = name[2:] if name.startswith("--") else name
    value = item["value"]
    if value is True:
        return ["--" + name]
    text = str(value)
    if not text or any(c.isspace() for c in text):
        raise AnsibleFilterError("trtllm_service_flags: --%s has a value with whitespace or none (%r)" % (name, text))
    return ["--" + name, text]


class FilterModule(object):
    def filters(self):
        return {
            "trtllm_fit_problems": trtllm_fit_problems,
            "trtllm_option_problems": trtllm_option_problems,
            "trtllm_serve_problems": trtllm_serve_problems,
            "trtllm_batch_problems": trtllm_batch_problems,
            "trtllm_default_instance": trtllm_default_instance,
            "trtllm_flag_words": trtllm_flag_words,
        }
