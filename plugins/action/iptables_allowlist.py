# -*- coding: utf-8 -*-
# Copyright: llmfleet.deepseek contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of llmfleet.deepseek.iptables_allowlist: runs the module, and when it armed a
rollback, confirms over a NEW connection that the controller still reaches the host. Without the
confirmation the host puts the previous rules back by itself when rollback_timeout runs out, and
this task fails saying so."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex
import time

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.plugins.loader import become_loader, connection_loader
from ansible_collections.llmfleet.deepseek.plugins.module_utils import iptables as ipt

MODULE = "llmfleet.deepseek.iptables_allowlist"
# Seconds the module itself may take after the connection is up (reads, --test, apply, read-back).
MODULE_MARGIN = 5
LOCAL = ("local", "ansible.builtin.local")
# Transports a firewall can cut (the others - docker exec, podman, lxc, machinectl... - do not go
# through the host's packet filter).
NETWORK = ("ssh", "paramiko", "paramiko_ssh", "ansible.builtin.ssh", "ansible.builtin.paramiko_ssh", "winrm", "psrp")
# Seconds waited past rollback_timeout before looking again: the host's clock started when the
# module armed the watcher, a little after this plugin's.
ROLLBACK_MARGIN = 5
# The connection timeout assumed when the play sets none (Ansible's own default, 10 s).
CONNECTION_TIMEOUT = 10
# After a rollback: how often, and how many seconds apart, the plugin tries to reach the host again.
RECONNECT_ATTEMPTS = 3
RECONNECT_PAUSE = 2


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True

    def _mitogen(self):
        """Under Mitogen's strategy the connection is Mitogen's: it cannot be reset and used again
        inside a task, nor run a raw command after a module (its broker is gone: Mitogen 0.3.54)."""
        return any(cls.__module__.startswith("ansible_mitogen.") for cls in type(self._connection).__mro__)

    def _command(self, argv, task_vars):
        """Run argv on the host over a fresh connection; {rc, stdout, stderr}. Under Mitogen over
        SSH through a new connection of Ansible's own ssh plugin (_fresh_ssh); under Mitogen over
        transports a firewall cannot cut, through a module call on Mitogen's connection."""
        command = " ".join(shlex.quote(a) for a in argv)
        if not self._mitogen():
            self._connection.reset()
            return self._low_level_execute_command(command, sudoable=True)
        if to_text(self._connection.transport) in NETWORK:
            return self._fresh_ssh(command, task_vars)
        res = self._execute_module(module_name="ansible.legacy.command", module_args={"argv": argv},
                                   task_vars=task_vars)
        return {"rc": res.get("rc", 1), "stdout": res.get("stdout", ""), "stderr": res.get("stderr") or res.get("msg", "")}

    def _plugin_vars(self, plugin_type, plugin, task_vars):
        """The task's variables that set this plugin's options, templated (as TaskExecutor does)."""
        names = C.config.get_plugin_vars(plugin_type, plugin._load_name)
        return {k: self._templar.template(task_vars[k]) for k in names if k in task_vars}

    def _fresh_ssh(self, command, task_vars, sudoable=True):
        """Mitogen's connection is one long-lived ssh session that cannot be reset inside a task.
        The confirmation needs a NEW TCP connection through the new rules, so it goes through a
        new instance of Ansible's ssh plugin, set up from the task's variables (host, port, user,
        key, ssh arguments) with the task's become. Its ControlPersist master, if one is left from
        an earlier run, is stopped first: an old session would prove nothing."""
        conn = connection_loader.get("ansible.builtin.ssh", self._play_context)
        task_keys = self._task.dump_attrs()
        task_keys["timeout"] = self._play_context.timeout
        task_keys.pop("retries", None)
        if self._play_context.password:
            task_keys["password"] = self._play_context.password
        conn.set_options(task_keys=task_keys, var_options=self._plugin_vars("connection", conn, task_vars))
        if sudoable and self._play_context.become:
            become = become_loader.get(self._play_context.become_method or "sudo")
            if self._play_context.become_pass:
                task_keys["become_pass"] = self._play_context.become_pass
            become.set_options(task_keys=task_keys, var_options=self._plugin_vars("become", become, task_vars))
            conn.set_become_plugin(become)
        mitogen, self._connection = self._connection, conn
        try:
            conn.reset()
            # Ansible's own method, not the one Mitogen mixes into action plugins (which passes
            # Mitogen's arguments to the connection).
            return ActionBase._low_level_execute_command(self, command, sudoable=sudoable)
        finally:
            self._connection = mitogen
            try:
                conn.close()
            except Exception:  # pylint: disable=broad-except  # best effort: the result is known
                pass

    def _confirm(self, cookie, task_vars):
        """Close the current connection (SSH's ControlPersist master included), then remove the
        cookie over a fresh one. Returns (confirmed, why not)."""
        try:
            res = self._command(["rm", cookie], task_vars)
        except AnsibleError as e:
            return False, to_text(e)
        if res.get("rc") == 0:
            return True, None
        return False, "the confirmation ran but the rollback cookie was gone (%s): the host had already rolled back" % (
            to_text(res.get("stderr")).strip() or "rc %s" % res.get("rc"))

    def _login_ssh_connection(self, task_vars):
        """SSH_CONNECTION in the login shell of the task's connection, read without become
        (sudo drops it); empty for connections that have none (Docker's, for example). Under
        Mitogen over SSH through a new ssh connection from this controller: commands on Mitogen's
        connection do not see the login's SSH_CONNECTION, and without it the guard would be empty."""
        command = 'printf %s "$SSH_CONNECTION"'
        try:
            if self._mitogen() and to_text(self._connection.transport) in NETWORK:
                res = self._fresh_ssh(command, task_vars, sudoable=False)
            else:
                res = self._low_level_execute_command(command, sudoable=False)
        except AnsibleError:
            return ""
        value = to_text(res.get("stdout")).strip()
        return value if res.get("rc") == 0 and len(value.split()) == 4 else ""

    def _after_rollback(self, marker, task_vars, attempts=RECONNECT_ATTEMPTS):
        """Connect again once the host's deadline has passed and read the watcher's record."""
        error = None
        for _attempt in range(attempts):
            try:
                res = self._command(["cat", marker], task_vars)
            except AnsibleError as e:
                error = to_text(e)
                time.sleep(RECONNECT_PAUSE)
                continue
            if res.get("rc") == 0:
                return "the host put the previous rules back (%s) and is reachable again" % to_text(res.get("stdout")).strip()
            return "the host is reachable again, but no rollback record was found (%s)" % to_text(res.get("stderr")).strip()
        return "the host is still unreachable after the rollback time (%s)" % error

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        transport = to_text(self._connection.transport)
        local = transport in LOCAL
        # Every option is checked first, on the controller, before anything is decided from it or
        # runs on the host: a bad value fails here naming the option, whatever the connection.
        try:
            opts = ipt.validate_args(args)
        except ipt.AllowlistError as e:
            result.update(failed=True, changed=False, msg=to_text(e))
            return result
        timeout = opts["rollback_timeout"]
        conn_timeout = int(self._play_context.timeout or CONNECTION_TIMEOUT)
        if timeout > 0 and not local and timeout < conn_timeout + MODULE_MARGIN:
            result.update(failed=True, changed=False, msg=(
                "rollback_timeout (%d s) must exceed the connection timeout (%d s) plus %d s, or a working "
                "connection could be rolled back before it confirms; raise rollback_timeout"
                % (timeout, conn_timeout, MODULE_MARGIN)))
            return result
        if opts["validate_only"]:
            result.update(changed=False, validated=True, msg="the allowlist's inputs are valid")
            return result
        if local:
            # A firewall cannot cut a local connection: nothing to confirm, nothing to roll back.
            args["rollback_timeout"] = 0

        if not local and "ssh_connection" not in args and opts["ssh_guard"] and opts["state"] == "present":
            args["ssh_connection"] = self._login_ssh_connection(task_vars)

        started = time.time()
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        guard = result.get("ssh_guard") or {}
        rollback = result.get("rollback") or {}
        if local:
            if guard.get("enabled") and not guard.get("address"):
                guard["reason"] = "local connection: there is nothing to guard"
            rollback["reason"] = "local connection: a firewall cannot cut it, no rollback armed"
        elif (transport in NETWORK and opts["ssh_guard"] and opts["state"] == "present"
              and guard.get("enabled") and not guard.get("address") and not result.get("failed")):
            # Over SSH the guard should always find the connection; when it cannot, say why.
            result.setdefault("warnings", []).append(
                "ssh_guard is on but found no SSH connection to guard (%s): the controller's access "
                "over %s rests on the rules alone%s" % (
                    guard.get("reason") or "no reason given", transport,
                    " and the rollback" if rollback.get("armed") else ""))
        if not rollback.get("armed"):
            return result

        cookie = rollback.pop("cookie")
        marker = rollback.pop("marker")
        rollback.pop("deadline", None)
        confirmed, why = self._confirm(cookie, task_vars)
        rollback["confirmed"] = confirmed
        if confirmed:
            rollback["confirmed_after"] = round(time.time() - started, 1)
            return result

        # Not confirmed: the watcher restores the previous rules at the deadline; wait for it,
        # then look again.
        wait = started + rollback["timeout"] + ROLLBACK_MARGIN - time.time()
        if wait > 0:
            time.sleep(wait)
        after = self._after_rollback(marker, task_vars)
        result.update(failed=True, msg=(
            "the new allowlist was applied, but the controller could not reach the host again over "
            "a new connection within rollback_timeout (%d s): %s. Rollback: %s. "
            "Check that the rules accept the controller (ssh_guard, a rule for port %s) before trying again."
            % (rollback["timeout"], why, after, opts["ssh_port"])))
        rollback["rolled_back"] = True
        return result
