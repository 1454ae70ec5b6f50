# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet drift report (playbooks/drift.yml) from the drift recorder's record and the hosts' facts."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _get(mapping, *path):
    for key in path:
        if not isinstance(mapping, dict) and not hasattr(mapping, "get"):
            return None
        try:
            mapping = mapping.get(key)
        except Exception:  # pylint: disable=broad-except  # hostvars of a host that never ran raise
            return None
        if mapping is None:
            return None
    return mapping


def _driver(hv):
    """The running driver when NVML answers; else what nvidia_driver decided, and that it is not loaded."""
    running = _get(hv, "llmfleet_gpu", "driver_version")
    if running:
        return str(running)
    state = _get(hv, "nvidia_driver_state")
    if not state:
        return ""
    branch = _get(state, "branch")
    loaded = _get(state, "loaded")
    return "branch %s%s" % (branch, "" if loaded else ", module not loaded") if branch else ""


def drift_report(run, hostvars, generated=""):
    """One report: a row per host (status, GPUs, driver, drift count, last converge, the changes
    with their diffs, handlers, failures) and the fleet's totals."""
    if not isinstance(run, dict) or not isinstance(run.get("hosts"), dict):
        raise AnsibleFilterError("drift_report: the input must be llmfleet_drift_run, the drift recorder's record")
    rows = []
    for name in sorted(run["hosts"]):
        rec = run["hosts"][name]
        try:
            hv = hostvars[name]
        except Exception:  # pylint: disable=broad-except
            hv = {}
        local = _get(hv, "ansible_facts", "ansible_local", "llmfleet") or {}
        changes = list(rec.get("changes") or [])
        rows.append({
            "host": name,
            "status": rec.get("status", "ok"),
            "gpus": _get(hv, "llmfleet_gpu", "count"),
            "driver": _driver(hv),
            "last_converge": _get(local, "last_converge") or "",
            "drift": len(changes),
            "changes": changes,
            "handlers": list(rec.get("handlers") or []),
            "failures": list(rec.get("failures") or []),
        })
    drifted = [r["host"] for r in rows if r["drift"]]
    failed = [r["host"] for r in rows if r["status"] != "ok"]
    return {
        "format": run.get("format", 1),
        "generated": generated,
        "playbook": run.get("playbook") or "",
        "clean": not drifted and not failed,
        "totals": {
            "hosts": len(rows),
            "drifted": len(drifted),
            "failed": len(failed),
            "changes": sum(r["drift"] for r in rows),
        },
        "drifted_hosts": drifted,
        "failed_hosts": failed,
        "hosts": rows,
    }


def drift_summary(report):
    """What AWX shows as job artifacts (set_stats): no diffs, one line per change."""
    if not isinstance(report, dict) or "hosts" not in report:
        raise AnsibleFilterError("drift_summary: the input must be a drift_report")
    hosts = {}
    for row in report["hosts"]:
        hosts[row["host"]] = {
            "status": row["status"],
            "drift": row["drift"],
            "gpus": row["gpus"],
            "driver": row["driver"],
            "last_converge": row["last_converge"],
            "changes": [
                ("%s: %s" % (c.get("role"), c.get("task")) if c.get("role") else c.get("task", ""))
                + (" [%s]" % c["item"] if c.get("item") else "")
                for c in row["changes"]
            ],
            "failures": [f.get("msg", "") for f in row["failures"]],
        }
    return {
        "generated": report["generated"],
        "clean": report["clean"],
        "totals": report["totals"],
        "hosts": hosts,
    }


class FilterModule(object):
    def filters(self):
        return {"drift_report": drift_report, "drift_summary": drift_summary}
