# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift recorder: what every task would change in a --check --diff run, per host, for the
report play of llmfleet.deepseek's drift.yml."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: drift
version_added: "0.2.0"
type: aggregate
short_description: Records, per host, what a --check --diff run would change (the fleet drift report)
description:
  - Enabled beside the usual output callback (C(callbacks_enabled = llmfleet.deepseek.drift) in
    C(ansible.cfg), or C(ANSIBLE_CALLBACKS_ENABLED)). It prints nothing.
  - In a run with C(--check), every task result that reports C(changed) is a setting that differs from
    the desired state. The recorder keeps, per host, the task, its role, the item, and the before and
    after values of the diff the module returned (C(--diff)), as a unified diff and as the raw
    values. Handlers are kept apart (what would be restarted), and not counted as drift.
  - Failed and unreachable hosts are recorded with their message, so a report never shows a host
    that could not be read as one without drift. A failure the play rescued (the host goes on) is
    kept, marked C(rescued), and does not make the host failed.
  - At the start of every play the record so far is published as the fact C(llmfleet_drift_run) of
    the controller (C(localhost)), so the last play of C(llmfleet.deepseek.drift) turns it into the
    JSON and HTML report, the C(set_stats) summary and the exit status. C(llmfleet_drift_recorder)
    (the record's format version) says that the recorder is enabled at all.
  - Outside C(--check) it records nothing.
author: llmfleet.deepseek maintainers (@llmfleet)
options:
  max_chars:
    description: The longest before, after or diff text kept per change; longer ones are cut and say so.
    type: int
    default: 20000
    env:
      - name: LLMFLEET_DRIFT_MAX_CHARS
    ini:
      - section: llmfleet_drift
        key: max_chars
requirements:
  - enabled in the configuration, see the description
"""

import difflib
import json

from ansible import context
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types
from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

FORMAT = 1
CONTROLLER = "localhost"


def _text(value):
    """A before/after value as text: strings as they are, anything else as sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, string_types):
        return to_text(value)
    return json.dumps(value, indent=2, sort_keys=True, default=to_text) + "\n"


def _cut(text, limit):
    if limit and len(text) > limit:
        return text[:limit] + "\n[... %d more characters not kept]\n" % (len(text) - limit)
    return text


def diffs(result, limit):
    """The module's diff(s) as [{header, before, after, diff}]: a unified diff of before and after
    (headers from the module when it names them), or the text a module prepared itself."""
    raw = result.get("diff")
    if not raw:
        return []
    out = []
    for one in raw if isinstance(raw, list) else [raw]:
        if not isinstance(one, dict):
            continue
        if one.get("prepared"):
            out.append({"header": "", "before": None, "after": None,
                        "diff": _cut(_text(one["prepared"]), limit)})
            continue
        if "before" not in one and "after" not in one:
            continue
        before, after = _text(one.get("before")), _text(one.get("after"))
        bh = to_text(one.get("before_header") or "before")
        ah = to_text(one.get("after_header") or "after")
        text = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), bh, ah))
        header = bh if bh == ah else ("%s -> %s" % (bh, ah) if one.get("before_header") else "")
        out.append({"header": header, "before": _cut(before, limit), "after": _cut(after, limit),
                    "diff": _cut(text, limit)})
    return out


def _message(result):
    """What a failed or unreachable result said, in one line."""
    msg = result.get("msg") or result.get("stderr") or result.get("reason") or ""
    return " ".join(to_text(msg).split())[:2000]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "llmfleet.deepseek.drift"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.hosts = {}
        self.playbook = None
        self.check = False
        self._vm = None

    # -- the record -------------------------------------------------------------------------
    def _host(self, name, result_ok=False):
        entry = self.hosts.setdefault(name, {"status": "ok", "changes": [], "handlers": [], "failures": []})
        if result_ok and entry["status"] == "failed":
            # A failed host gets no more tasks: one that goes on had its failure rescued.
            entry["status"] = "ok"
            for failure in entry["failures"]:
                failure["rescued"] = True
        return entry

    @staticmethod
    def _where(task):
        role = task._role.get_name(include_role_fqcn=False) if getattr(task, "_role", None) else ""
        return {"task": to_text(task.get_name()), "role": to_text(role), "action": to_text(task.action)}

    def record(self, host, task, result, item=None):
        """One result of one host. Results of a loop are recorded item by item."""
        if not self.check:
            return
        entry = self._host(host, result_ok=True)
        if "results" in result and isinstance(result["results"], list):
            for one in result["results"]:
                if isinstance(one, dict) and one.get("changed"):
                    label = one.get("_ansible_item_label", one.get("item"))
                    self._change(entry, task, one, label)
            return
        if result.get("changed"):
            self._change(entry, task, result, item)

    def _change(self, entry, task, result, item):
        limit = self.get_option("max_chars")
        change = self._where(task)
        if item is not None:
            change["item"] = _text(item).strip()[:500]
        if result.get("censored"):
            change["diffs"] = []
            change["note"] = "output hidden (no_log): the task would change something it does not show"
        else:
            change["diffs"] = diffs(result, limit)
            if not change["diffs"]:
                change["note"] = _message(result) or "no diff returned (run with --diff, or the module has none)"
        (entry["handlers"] if isinstance(task, Handler) else entry["changes"]).append(change)

    def summary(self):
        return {
            "format": FORMAT,
            "playbook": self.playbook,
            "check": self.check,
            "hosts": self.hosts,
        }

    def publish(self):
        """The record so far, as facts of the controller, for the plays still to come."""
        if self._vm is None:
            return
        self._vm.set_nonpersistent_facts(CONTROLLER, {
            "llmfleet_drift_recorder": FORMAT,
            "llmfleet_drift_run": json.loads(json.dumps(self.summary(), default=to_text)),
        })

    # -- callback events ----------------------------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        self.playbook = to_text(getattr(playbook, "_file_name", "") or "")
        self.check = bool(context.CLIARGS.get("check", False))

    def v2_playbook_on_play_start(self, play):
        self._vm = play.get_variable_manager()
        self.publish()

    def v2_runner_on_ok(self, result):
        self.record(result._host.get_name(), result._task, result._result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if ignore_errors or not self.check:
            return
        entry = self._host(result._host.get_name())
        entry["status"] = "failed"
        entry["failures"].append(dict(self._where(result._task), msg=_message(result._result)))

    def v2_runner_on_unreachable(self, result):
        if not self.check:
            return
        entry = self._host(result._host.get_name())
        entry["status"] = "unreachable"
        entry["failures"].append(dict(self._where(result._task), msg=_message(result._result)))

    def v2_runner_on_skipped(self, result):
        if self.check:
            self._host(result._host.get_name(), result_ok=True)
