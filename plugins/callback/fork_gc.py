# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller CPU: every process Ansible forks (a worker per task and host, Mitogen's
multiplexer) freezes the garbage collector's view of the heap it inherited, so the collections
it runs never walk (and copy) the controller's objects."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: fork_gc
version_added: "0.2.0"
type: aggregate
short_description: Less controller CPU per task - forked workers leave the inherited heap to the parent
description:
  - Ansible forks a worker process for every task on every host, skipped tasks included. The worker
    inherits the controller's whole heap (parsed playbooks, inventory, every host's variables and
    facts). When Python's cyclic garbage collector runs in the worker, it walks all those inherited
    objects and writes to each one's header, so the kernel copies page after page that the worker
    would otherwise have shared with the controller, and the walk itself costs CPU.
  - Enabled (C(callbacks_enabled = llmfleet.deepseek.fork_gc) in C(ansible.cfg), or
    C(ANSIBLE_CALLBACKS_ENABLED)), it registers one C(os.register_at_fork) hook in the controller;
    right after each fork the child calls C(gc.freeze), which moves the inherited objects to the
    collector's permanent generation. The child still collects the garbage it makes itself; the
    controller process is not changed at all (it collects as before), so nothing leaks there.
  - Measured on a no-op C(site.yml) run against one host, it takes about a tenth off the controller's
    CPU seconds; the figures are in the collection's C(docs/performance.md).
  - It prints nothing and needs no options. Child processes that C(exec) another program (ssh) are not
    affected.
author: llmfleet.deepseek maintainers (@llmfleet)
requirements:
  - enabled in the configuration, see the description
"""

import gc
import os

from ansible.plugins.callback import CallbackBase

# One hook per controller process, however often the plugin is instantiated.
_REGISTERED = []


def freeze_inherited_heap():
    """The at-fork hook (in the child): the objects inherited from the parent go to the permanent
    generation, so this process's collections never walk them."""
    gc.freeze()


def register():
    """Register the hook once; True when this call registered it."""
    if _REGISTERED:
        return False
    os.register_at_fork(after_in_child=freeze_inherited_heap)
    _REGISTERED.append(True)
    return True


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "llmfleet.deepseek.fork_gc"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display=display)
        register()
