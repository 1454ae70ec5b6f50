# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewall role's source groups as allowlist rules (the iptables_allowlist module's format)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

GROUP_KEYS = ("sources", "ports", "proto")


def group_rules(groups, variable="firewall_groups"):
    """One rule per port of each group, named `<variable>.<group>` (or the group's own name when
    `variable` is empty: the role's built-in groups are named after their variable); a group
    without sources adds no rule (the port stays as the rest of INPUT leaves it). The rules
    themselves (addresses, port range, protocol) are judged by the module, which names the rule."""
    if groups is None:
        return []
    if not isinstance(groups, dict):
        raise AnsibleFilterError("%s must be a mapping of group name to {sources, ports, proto}, not %r" % (variable or "the groups", groups))
    rules = []
    for name, group in groups.items():
        where = "%s.%s" % (variable, name) if variable else str(name)
        if not isinstance(group, dict):
            raise AnsibleFilterError("%s must be a mapping with sources and ports (and an optional proto), not %r" % (where, group))
        unknown = sorted(set(group) - set(GROUP_KEYS))
        if unknown:
            raise AnsibleFilterError("%s: unknown key(s) %s; a group has sources, ports and an optional proto" % (where, ", ".join(unknown)))
        sources, ports = group.get("sources", []), group.get("ports")
        if not isinstance(sources, (list, tuple)):
            raise AnsibleFilterError("%s.sources must be a list of addresses or networks, not %r" % (where, sources))
        if not isinstance(ports, (list, tuple)) or not ports:
            raise AnsibleFilterError("%s.ports must be a non-empty list of ports, not %r" % (where, ports))
        if not sources:
            continue
        for port in ports:
            rule = {"name": where, "port": port,
                    "proto": group.get("proto", "tcp"), "sources": list(sources)}
            rules.append(rule)
    return rules


class FilterModule(object):
    def filters(self):
        return {"firewall_group_rules": group_rules}
