# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for playbooks/bundle.yml over plugins/module_utils/bundle.py."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.llmfleet.deepseek.plugins.module_utils import bundle


def bundle_apt_versions(specs, madison_lines):
    if not isinstance(specs, list) or not isinstance(madison_lines, list):
        raise AnsibleFilterError("bundle_apt_versions: the specs and apt-cache madison's lines must be lists")
    resolved, unresolved = bundle.pick_versions([str(s) for s in specs], [str(line) for line in madison_lines])
    return {"resolved": resolved, "unresolved": unresolved}


class FilterModule(object):
    def filters(self):
        return {"bundle_apt_versions": bundle_apt_versions}
