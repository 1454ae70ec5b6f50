# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TensorRT-LLM serving plans as data: whether a deployment fits a host (fit_problems) and
whether serving options are ones the pinned TensorRT-LLM knows (option_problems). Pure
functions: the role calls them through filter plugins on the controller, the tests directly.
Every problem is a sentence with the numbers, naming the variable to change."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import re

GIB = 1024.0 ** 3
MIB = 1024.0 ** 2


def _branch(version):
    match = re.match(r"^(\d+)", str(version or ""))
    return int(match.group(1)) if match else None


def instance_gpus(plan, gpu_count):
    """The GPU indices of each instance: plan['instances'] (a list of index lists) when given,
    else consecutive groups of tp*pp/nodes GPUs, as many as plan['instance_count'] (default: as
    many as fit)."""
    per = int(plan.get("tp_size", 1)) * int(plan.get("pp_size", 1)) // max(1, int(plan.get("nodes", 1)))
    if plan.get("instances"):
        return [list(group) for group in plan["instances"]]
    if per <= 0:
        return []
    count = plan.get("instance_count")
    count = int(count) if count else max(1, gpu_count // per)
    return [list(range(i * per, (i + 1) * per)) for i in range(count)]


def fit_problems(plan, gpu, host="this host"):
    """Problems that keep `plan` from running on a host whose GPU facts are `gpu` (llmfleet_gpu).

    plan: tp_size, pp_size, ep_size (optional), nodes (hosts one instance spans, default 1),
    instances (index lists) or instance_count, weights_gib (the model's weights), kv_fraction
    (trtllm-serve's --kv_cache_free_gpu_memory_fraction), runtime_overhead_fraction (memory
    the runtime takes besides weights and KV cache, default 0.1), min_kv_cache_gib (per
    instance, default 1), min_driver_branch.
    """
    problems = []
    tp = int(plan.get("tp_size", 1))
    pp = int(plan.get("pp_size", 1))
    ep = plan.get("ep_size")
    nodes = int(plan.get("nodes", 1))
    if tp < 1 or pp < 1 or nodes < 1:
        return ["%s: tp_size %s, pp_size %s and nodes %s must be at least 1" % (host, tp, pp, nodes)]
    world = tp * pp
    if world % nodes:
        problems.append("%s: tp_size x pp_size = %d GPUs cannot be split evenly over %d nodes" % (host, world, nodes))
        return problems
    per_host = world // nodes
    if ep not in (None, "", 0):
        ep = int(ep)
        if ep < 1 or tp % ep:
            problems.append("%s: ep_size %d must divide tp_size %d (TensorRT-LLM splits tp into expert x tensor"
                            " parallel for MoE layers)" % (host, ep, tp))
    present = bool(gpu.get("present"))
    gpus = gpu.get("gpus") or []
    count = len(gpus) if gpus else int(gpu.get("count") or 0)
    if not present or count == 0:
        problems.append("%s: no GPU (llmfleet_gpu.present is false); the plan needs %d per host" % (host, per_host))
        return problems
    groups = instance_gpus(plan, count)
    if not groups:
        problems.append("%s: no instance planned" % host)
    needed = per_host * len(groups)
    if needed > count:
        problems.append("%s: %d instance(s) x %d GPUs = %d GPUs needed, the host has %d"
                        % (host, len(groups), per_host, needed, count))
        if not plan.get("instances"):
            return problems  # the default groups only say that much
    seen = {}
    for number, group in enumerate(groups):
        if len(group) != per_host:
            problems.append("%s: instance %d has %d GPUs %s; tp_size %d x pp_size %d over %d node(s) needs %d per host"
                            % (host, number, len(group), group, tp, pp, nodes, per_host))
        for index in group:
            if not 0 <= int(index) < count:
                problems.append("%s: instance %d uses GPU %s; this host has GPUs 0-%d" % (host, number, index, count - 1))
            elif index in seen:
                problems.append("%s: GPU %s is in instances %d and %d" % (host, index, seen[index], number))
            else:
                seen[index] = number
    weights = float(plan.get("weights_gib") or 0)
    if weights > 0 and gpus:
        kv_fraction = float(plan.get("kv_fraction", 0.9))
        overhead = float(plan.get("runtime_overhead_fraction", 0.1))
        min_kv = float(plan.get("min_kv_cache_gib", 1))
        for number, group in enumerate(groups):
            mem = [gpus[i].get("memory_total_mib") for i in group if 0 <= int(i) < len(gpus)]
            if len(mem) != len(group) or None in mem:
                continue
            total = sum(mem) * MIB * nodes / GIB  # an instance over several nodes uses them all
            usable = total * (1 - overhead)
            if weights > usable:
                values = (host, number, weights, usable, len(mem) * nodes, mem[0] * MIB / GIB, round(overhead * 100))
                problems.append("%s: instance %d: weights %.0f GiB do not fit in %.0f GiB of GPU memory"
                                " (%d x %.0f GiB, %d%% kept for the runtime)" % values)
                continue
            kv = (usable - weights) * kv_fraction
            if kv < min_kv:
                values = (host, number, weights, kv, kv_fraction, usable - weights, min_kv)
                problems.append("%s: instance %d: after %.0f GiB of weights, %.1f GiB would be left for the KV cache"
                                " (fraction %.2f of %.1f GiB free); at least %.1f GiB is needed" % values)
    min_branch = plan.get("min_driver_branch")
    branch = _branch(gpu.get("driver_version"))
    if min_branch and branch is not None and branch < int(min_branch):
        problems.append("%s: driver %s is older than branch %s, which this TensorRT-LLM needs"
                        % (host, gpu.get("driver_version"), min_branch))
    return problems


def option_problems(options, known, variable, flags=False):
    """Unknown names in `options` (a dict) for an option set `known` (names), each with the
    closest known name; `variable` names the inventory variable. flags=True for CLI flags."""
    problems = []
    names = set(known)
    for key in sorted(options or {}):
        name = str(key)
        look = name[2:] if flags and name.startswith("--") else name
        if look in names:
            continue
        close = difflib.get_close_matches(look, sorted(names), n=1, cutoff=0.6)
        hint = " (did you mean %s?)" % close[0] if close else ""
        problems.append("%s: unknown %s %s%s" % (variable, "flag" if flags else "key", name, hint))
    return problems


def known_flags(option_set):
    return sorted(name for names in option_set["flags"] for name in names)


def serve_problems(flags, extra_options, option_set, extra_keys=(), owned_flags=(),
                   flags_variable="flags", options_variable="extra_llm_api_options"):
    """(problems, warnings) of a serving configuration against an option set (trtllm_options):
    unknown flags and keys (renamed ones say their new name), unknown keys in kv_cache_config
    and cuda_graph_config, flags the role sets itself (owned_flags), deprecated keys (warnings)."""
    problems = []
    warnings = []
    flags = flags or {}
    extra_options = extra_options or {}
    names = known_flags(option_set)
    for key in sorted(flags):
        bare = str(key)[2:] if str(key).startswith("--") else str(key)
        if bare in owned_flags:
            problems.append("%s: --%s is set by the role (from its own variables); remove it" % (flags_variable, bare))
    problems += option_problems({k: v for k, v in flags.items()
                                 if (str(k)[2:] if str(k).startswith("--") else str(k)) not in owned_flags},
                                names, flags_variable, flags=True)
    keys = set(option_set["keys"]) | set(extra_keys)
    renamed = option_set.get("renamed", {})
    unknown = {}
    for key, value in extra_options.items():
        if key in keys:
            continue
        if key in renamed:
            problems.append("%s: %s was renamed to %s in this TensorRT-LLM" % (options_variable, key, renamed[key]))
        else:
            unknown[key] = value
    problems += option_problems(unknown, keys, options_variable)
    for nested in ("kv_cache_config", "cuda_graph_config"):
        value = extra_options.get(nested)
        if isinstance(value, dict) and option_set.get(nested):
            problems += option_problems(value, option_set[nested], "%s.%s" % (options_variable, nested))
        elif value is not None and not isinstance(value, dict):
            problems.append("%s.%s must be a mapping" % (options_variable, nested))
    for key in sorted(set(extra_options) & set(option_set.get("deprecated", []))):
        warnings.append("%s: %s is deprecated in this TensorRT-LLM" % (options_variable, key))
    return problems, warnings


def batch_problems(node_hosts, batch, nodes):
    """The hosts of a multi-node instance (`node_hosts`, over `nodes` hosts) that are not in this
    batch of the serving play (`batch`: ansible_play_batch): one MPI world rolls together, so they
    must share a batch. Judged at the role's start only (site.yml's first play has no batches)."""
    if int(nodes or 1) <= 1 or not isinstance(node_hosts, (list, tuple)):
        return []
    batch = list(batch or [])
    outside = []
    for host in node_hosts:
        if host not in batch and host not in outside:
            outside.append(host)
    if not outside:
        return []
    return ["the hosts of this instance roll together, but %s are not in this batch (%s): run them in one play and make "
            "llmfleet_serve_serial a multiple of %s (e.g. [%s, 50%%]) with the hosts of an instance next to each other "
            "in the inventory" % (", ".join(str(h) for h in outside), ", ".join(str(h) for h in batch), nodes, nodes)]
