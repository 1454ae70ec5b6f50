# -*- coding: utf-8 -*-
"""The firewall role's source groups as allowlist rules (plugins/filter/firewall.py)."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.llmfleet.deepseek.plugins.filter.firewall import FilterModule, group_rules


def test_one_rule_per_port_named_after_the_group():
    rules = group_rules({"scrapers-b": {"sources": ["10.1.2.0/24"], "ports": [9100, 9400]}})
    assert rules == [
        {"name": "firewall_groups.scrapers-b", "port": 9100, "proto": "tcp", "sources": ["10.1.2.0/24"]},
        {"name": "firewall_groups.scrapers-b", "port": 9400, "proto": "tcp", "sources": ["10.1.2.0/24"]},
    ]


def test_the_built_in_groups_keep_the_name_of_their_variable():
    rules = group_rules({"firewall_edge_sources": {"sources": ["10.0.0.0/8"], "ports": [443], "proto": "tcp"}}, variable="")
    assert rules == [{"name": "firewall_edge_sources", "port": 443, "proto": "tcp", "sources": ["10.0.0.0/8"]}]


def test_udp_and_port_ranges_pass_through_to_the_module():
    rules = group_rules({"dns": {"sources": ["10.0.0.53"], "ports": ["5000:5010"], "proto": "udp"}})
    assert rules == [{"name": "firewall_groups.dns", "port": "5000:5010", "proto": "udp", "sources": ["10.0.0.53"]}]


def test_a_group_without_sources_adds_no_rule():
    assert group_rules({"later": {"sources": [], "ports": [9100]}, "none": {"ports": [1]}}) == []
    assert group_rules({}) == [] and group_rules(None) == []


@pytest.mark.parametrize("groups, words", [
    ([{"sources": []}], "firewall_groups must be a mapping"),
    ({"a": ["10.0.0.1"]}, "firewall_groups.a must be a mapping"),
    ({"a": {"sources": ["10.0.0.1"], "ports": [1], "port": 2}}, "firewall_groups.a: unknown key(s) port"),
    ({"a": {"sources": "10.0.0.1", "ports": [1]}}, "firewall_groups.a.sources must be a list"),
    ({"a": {"sources": ["10.0.0.1"], "ports": 9100}}, "firewall_groups.a.ports must be a non-empty list"),
    ({"a": {"sources": ["10.0.0.1"], "ports": []}}, "firewall_groups.a.ports must be a non-empty list"),
    ({"a": {"sources": ["10.0.0.1"]}}, "firewall_groups.a.ports must be a non-empty list"),
])
def test_a_bad_group_is_named(groups, words):
    with pytest.raises(AnsibleFilterError) as err:
        group_rules(groups)
    assert words in str(err.value)


def test_the_variable_named_in_messages_can_be_another():
    with pytest.raises(AnsibleFilterError, match="site_groups.x must be a mapping"):
        group_rules({"x": 1}, variable="site_groups")


def test_the_filter_is_registered():
    assert FilterModule().filters()["firewall_group_rules"] is group_rules
