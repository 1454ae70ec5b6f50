# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The releases the collection supports, and the vars files a role loads for a host's release:
the one rule every role that has per-release values follows (docs/architecture.md). Evaluated on
the controller, in the role's one task that loads them (tasks/os_vars.yml), before any change."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

# Every role of the collection supports the same releases: site.yml applies them all to one host,
# so a host is supported or it is not. (distribution, major version, the release as people name
# it, its codename (the roles' Galaxy platforms), a note). Adding a release is a line here, then a
# vars file in each role whose values really differ for it (tests/unit/roles/test_os_vars.py names
# the roles that lack one, and the meta/main.yml platforms to extend).
SUPPORTED = (
    ("Ubuntu", "22", "Ubuntu 22.04", "jammy", ""),
    ("Ubuntu", "24", "Ubuntu 24.04", "noble", ""),
    ("Debian", "12", "Debian 12", "bookworm", "the test bed"),
)

_FACTS = ("distribution", "distribution_major_version", "os_family")


def _fact(facts, name):
    value = facts.get(name) if isinstance(facts, dict) else None
    return "" if value is None else str(value)


def _supported_names():
    return ", ".join(name + (" (%s)" % note if note else "") for _d, _m, name, _c, note in SUPPORTED)


def os_release_problem(facts, role="llmfleet.deepseek"):
    """"" for a host whose facts show a supported release, else the sentence that refuses it,
    naming the release found and the supported ones."""
    missing = [name for name in _FACTS if not _fact(facts, name)]
    if missing:
        return ("%s: this host's facts do not name its release (no %s): gather them first "
                "(ansible.builtin.setup with gather_subset min). %s changed nothing."
                % (role, ", ".join(missing), role))
    distribution = _fact(facts, "distribution")
    major = _fact(facts, "distribution_major_version")
    if any(distribution == d and major == m for d, m, _name, _codename, _note in SUPPORTED):
        return ""
    found = "%s %s" % (distribution, _fact(facts, "distribution_version") or major)
    return ("%s supports %s; this host runs %s (%s_%s), which is not supported. %s changed nothing."
            % (role, _supported_names(), found, distribution, major, role))


def os_vars_files(facts, role="llmfleet.deepseek"):
    """The vars files to try, first match wins: <distribution>_<major>.yml, <distribution>.yml,
    <os_family>.yml. Raises the refusal of os_release_problem for a release not supported."""
    problem = os_release_problem(facts, role)
    if problem:
        raise AnsibleFilterError(problem)
    names = ["%s_%s.yml" % (_fact(facts, "distribution"), _fact(facts, "distribution_major_version")),
             "%s.yml" % _fact(facts, "distribution"),
             "%s.yml" % _fact(facts, "os_family")]
    return [name for index, name in enumerate(names) if name not in names[:index]]


class FilterModule(object):
    def filters(self):
        return {
            "os_release_problem": os_release_problem,
            "os_vars_files": os_vars_files,
        }
