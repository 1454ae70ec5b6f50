# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewall's rollback watcher. iptables_allowlist starts it on the host right after it
applied a change, apart from the module (a transient systemd unit, or a detached process): it
puts the saved state back unless the cookie file is taken away - the controller's confirmation
over a new connection - before the deadline. Whoever comes first wins atomically: the action
plugin's `rm` of the cookie against the watcher's rename of it.

How it reaches the host: the module imports this file, so it travels in the module's AnsiballZ
payload (or through Mitogen's importer). That payload is deleted when the module exits, long
before the deadline, so the module starts the watcher as `python -c <this file's source>`
(watcher_argv() reads the source through the loader that imported it), and this file imports
nothing but the standard library.

The spec file (JSON) the module writes for it:
  restores  [[argv, path], ...]   each argv runs with the file at path on its stdin (iptables-restore)
  files     [[dest, backup], ...] the backup is copied over dest; a null backup removes dest
  cleanup   [path, ...]           removed when the watcher ends, with the spec itself
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import inspect
import json
import os
import shutil
import subprocess
import sys
import time

# Seconds between two looks at the cookie.
POLL_SECONDS = 0.2
# Started without systemd: a session of its own (setsid -f forks and returns at once), no pipes
# back to the module.
DETACH = ('if command -v setsid >/dev/null 2>&1; then setsid -f "$@"; else nohup "$@" & fi '
          '</dev/null >/dev/null 2>&1')


def watch(cookie, deadline, marker, spec_path, clock=time.time, sleep=time.sleep):
    """Wait until deadline (epoch seconds) for the cookie to go. When it is still there then, take
    it (rename it to <cookie>.rollback), roll back and write the marker. The spec and the files it
    lists for cleanup are removed in every case. True when it rolled back."""
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    try:
        while clock() < deadline:
            if not os.path.exists(cookie):
                return False
            sleep(POLL_SECONDS)
        try:
            os.rename(cookie, cookie + ".rollback")
        except OSError:
            return False  # confirmed at the last moment
        roll_back(spec, marker, clock)
        os.remove(cookie + ".rollback")
        return True
    finally:
        for path in spec["cleanup"] + [spec_path]:
            if os.path.exists(path):
                os.remove(path)


def roll_back(spec, marker, clock=time.time):
    """Run every restore, put every file back, then record it in the marker (which the action
    plugin reads once it can connect again)."""
    codes = []
    for argv, path in spec["restores"]:
        with open(path, "rb") as handle:
            codes.append(subprocess.call(argv, stdin=handle))
    for dest, backup in spec["files"]:
        if backup:
            shutil.copy2(backup, dest + ".llmfleet-rollback")
            os.rename(dest + ".llmfleet-rollback", dest)
        elif os.path.exists(dest):
            os.remove(dest)
    with open(marker, "w", encoding="utf-8") as handle:
        handle.write("rolled back at %d, restore exit codes %s\n" % (clock(), codes))


def source():
    """This file's text, read through the loader that imported it (AnsiballZ's zip, Mitogen's
    importer, a plain file): what `python -c` runs on the host."""
    return inspect.getsource(sys.modules[__name__])


def watcher_argv(python, cookie, deadline, marker, spec_path):
    """The watcher's command line: this file's source run by python, with its arguments."""
    return [python, "-c", source(), cookie, "%.3f" % deadline, marker, spec_path]


def launch_argv(argv, unit, systemd_run=None):
    """The command that starts argv apart from the module: a transient systemd unit named unit
    when systemd_run is given (it outlives the SSH session even where logind kills a session's
    processes at logout), else a detached process."""
    if systemd_run:
        return [systemd_run, "--quiet", "--collect", "--unit", unit, "--"] + argv
    return ["/bin/sh", "-c", DETACH, "llmfleet-firewall-rollback"] + argv


def main(args):
    watch(args[0], float(args[1]), args[2], args[3])


if __name__ == "__main__":
    main(sys.argv[1:])
