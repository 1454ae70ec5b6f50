# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over plugins/module_utils/inputs.py: a role's inputs judged on the controller (no
task reaches the host), in site.yml's first play or at the role's start."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.errors import AnsibleFilterError
from ansible_collections.llmfleet.deepseek.plugins.module_utils import inputs


def _plain(value):
    """Ansible's tagged and lazy containers as plain JSON-shaped Python (what the rules expect)."""
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("input_problems: the variables cannot be read as data: %s" % exc)


def input_problems(values, role, spec=None, context=None):
    if not isinstance(values, dict):
        raise AnsibleFilterError("input_problems: the variables must be a dict (name -> value), got %s" % type(values).__name__)
    if spec is not None and not isinstance(spec, dict):
        raise AnsibleFilterError("input_problems: the argument spec must be a dict of options")
    try:
        # The context is read only when the types are right: it may hold what a role derives from
        # its variables (trtllm_service's serving plan), which a value of the wrong type breaks.
        return inputs.input_problems(role, _plain(values), spec or {}, lambda: _plain(context or {}))
    except ValueError as exc:
        raise AnsibleFilterError("input_problems: %s" % exc)


def model_manifest_problems(text, variable="the manifest"):
    """Sentences for a sha256sum manifest that is not one "<sha256>  <relative path>" per line."""
    return inputs.manifest_problems(text, variable)


def gpu_tuning_settings(profiles, profile, explicit):
    """The settings gpu_tuning enforces (the profile's, overridden by the explicit ones set)."""
    if not isinstance(profiles, dict) or profile not in profiles:
        raise AnsibleFilterError("gpu_tuning_settings: no profile %s in gpu_tuning_profiles" % profile)
    return inputs.gpu_tuning_settings(profiles, profile, explicit)


def site_roles_to_check(roles, run_tags=None, skip_tags=None, always=()):
    return inputs.roles_to_check(list(roles or []), list(run_tags or []), list(skip_tags or []), tuple(always or ()))


def _site_roles(role_list, switches, groups):
    if switches is not None and not isinstance(switches, dict):
        raise AnsibleFilterError("site_roles: the switches must be a dict (switch -> value), got %s" % type(switches).__name__)
    try:
        return inputs.site_roles(_plain(role_list), _plain(switches or {}), None if groups is None else list(groups))
    except ValueError as exc:
        raise AnsibleFilterError("site_roles: %s" % exc)


def site_roles(role_list, switches, groups):
    """The roles site.yml runs on a host in `groups` (group_names), in the plays' order."""
    return _site_roles(role_list, switches, groups or [])


def site_roles_by_group(role_list, switches):
    """The roles site.yml runs, by the inventory group of their play."""
    return _site_roles(role_list, switches, None)


class FilterModule(object):
    def filters(self):
        return {
            "input_problems": input_problems,
            "gpu_tuning_settings": gpu_tuning_settings,
            "model_manifest_problems": model_manifest_problems,
            "site_roles_to_check": site_roles_to_check,
            "site_roles": site_roles,
            "site_roles_by_group": site_roles_by_group,
        }
