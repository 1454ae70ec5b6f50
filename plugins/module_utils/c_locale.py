# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Commands whose output a module parses run in the C locale, so that their words and number
formats are the ones the parser was written against, whatever LANG the host or the connection
sets (community.general's run_command_environ_update does the same)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# What run_command's environ_update gets for a command whose output is parsed.
ENV = {"LANG": "C", "LC_ALL": "C"}


def run(module, args, **kwargs):
    """module.run_command(args, **kwargs) in the C locale: (rc, stdout, stderr)."""
    environ = dict(ENV)
    environ.update(kwargs.pop("environ_update", None) or {})
    return module.run_command(args, environ_update=environ, **kwargs)
