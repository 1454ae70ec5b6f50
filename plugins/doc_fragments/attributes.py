# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attribute blocks the collection's modules share. A module names one with
`extends_documentation_fragment: llmfleet.deepseek.attributes.<name>`; its own `attributes:`
entries are merged over the fragment's, key by key, so a module can give its own description
(of check mode, of the platform) and keep the fragment's support level."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # A module that only reads the host: check mode runs the same, and there is no diff.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
"""

    # A module that runs on any POSIX host; the module adds a description saying what it needs there.
    POSIX = r"""
options: {}
attributes:
  platform:
    support: full
    platforms: posix
"""
