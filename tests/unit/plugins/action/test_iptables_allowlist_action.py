"""The action plugin of iptables_allowlist: what it decides before the module runs (no host is
contacted: the connection is a mock that fails the test if anything is executed)."""
from unittest import mock

import pytest

from ansible_collections.llmfleet.deepseek.plugins.action import iptables_allowlist as action


def make(args, transport="ssh", timeout=10):
    task = mock.MagicMock()
    task.args = args
    task.async_val = 0
    connection = mock.MagicMock()
    connection.transport = transport
    connection._shell.tmpdir = None
    play_context = mock.MagicMock()
    play_context.timeout = timeout
    plugin = action.ActionModule(task, connection, play_context, loader=mock.MagicMock(),
                                 templar=mock.MagicMock(), shared_loader_obj=mock.MagicMock())
    plugin._execute_module = mock.MagicMock(side_effect=AssertionError("the module must not run"))
    plugin._low_level_execute_command = mock.MagicMock(side_effect=AssertionError("nothing may run on the host"))
    return plugin


def run(plugin):
    with mock.patch.object(action.ActionBase, "run", return_value={}):
        return plugin.run(task_vars={})


@pytest.mark.parametrize("args, message", [
    ({"rules": [{"port": 443, "sources": ["10.0.0.1/8"]}]}, "has host bits set; did you mean 10.0.0.0/8?"),
    ({"rules": [{"port": 22, "sources": []}]}, "drops SSH (port 22) from everywhere"),
    ({"rules": [], "chain": "INPUT"}, "chain 'INPUT' is not a name this module can own"),
    ({"rules": [], "ssh_port": 0}, "ssh_port 0 is out of range"),
    ({"rules": [{"port": 443, "sources": ["10.0.0.0/8"]}], "default_deny": True}, "default_deny: true drops SSH"),
])
def test_bad_input_fails_on_the_controller(args, message):
    result = run(make(args))
    assert result["failed"] is True and message in result["msg"]


def test_rollback_shorter_than_a_connection_attempt_is_refused():
    result = run(make({"rules": [], "rollback_timeout": 12}, timeout=10))
    assert result["failed"] is True
    assert "rollback_timeout (12 s) must exceed the connection timeout (10 s) plus 5 s" in result["msg"]


def test_validate_only_answers_without_the_host():
    result = run(make({"rules": [{"port": 443, "sources": ["10.0.0.0/8"]}], "validate_only": True}))
    assert result.get("failed") is not True and result["validated"] is True and result["changed"] is False


def test_local_connection_gets_no_rollback_and_no_guard_lookup():
    plugin = make({"rules": []}, transport="local")
    plugin._execute_module = mock.MagicMock(return_value={
        "changed": True, "rollback": {"armed": False, "timeout": 0},
        "ssh_guard": {"enabled": True, "address": None, "reason": "no SSH connection found"}})
    result = run(plugin)
    sent = plugin._execute_module.call_args.kwargs["module_args"]
    assert sent["rollback_timeout"] == 0 and "ssh_connection" not in sent
    assert result["ssh_guard"]["reason"] == "local connection: there is nothing to guard"
    assert "no rollback armed" in result["rollback"]["reason"]


@pytest.mark.parametrize("transport", ["local", "ssh", "docker"])
@pytest.mark.parametrize("args, message", [
    ({"rules": [], "rollback_timeout": -5}, "rollback_timeout -5 must be 0 (off)"),
    ({"rules": [], "rollback_timeout": "soon"}, "rollback_timeout 'soon' is not a whole number"),
    ({"rules": [], "ssh_connection": "garbage"}, "ssh_connection 'garbage' is not an SSH_CONNECTION value"),
    ({"rules": [], "ssh_guard": "perhaps"}, "ssh_guard 'perhaps' is not a boolean"),
    ({"rules": [], "chain": "LLMFLEET-DOCKER"}, "ends in -DOCKER"),
    ({"rules": [], "chain": "RETURN", "validate_only": True}, "iptables target name"),
    ({"state": "absent", "chain": "f2b-sshd"}, "fail2ban"),
])
def test_bad_options_fail_on_every_connection_before_anything_is_forced(transport, args, message):
    """Validation comes first: a local connection's forced rollback_timeout 0 no longer hides a bad
    value, and a guard that cannot work is an error, not silently off."""
    result = run(make(args, transport=transport))
    assert result["failed"] is True and message in result["msg"], result


def test_a_guard_that_finds_nothing_over_ssh_is_a_warning_naming_why():
    plugin = make({"rules": [{"port": 443, "sources": ["10.0.0.0/8"]}], "ssh_connection": ""})
    plugin._execute_module = mock.MagicMock(return_value={
        "changed": True, "rollback": {"armed": False, "timeout": 30},
        "ssh_guard": {"enabled": True, "address": None, "reason": "no SSH connection found (a local or container connection)"}})
    result = run(plugin)
    assert result.get("failed") is not True
    assert result["warnings"] == [
        "ssh_guard is on but found no SSH connection to guard (no SSH connection found (a local or container "
        "connection)): the controller's access over ssh rests on the rules alone"]
    # Found: no warning.
    plugin._execute_module = mock.MagicMock(return_value={
        "changed": False, "rollback": {"armed": False, "timeout": 30},
        "ssh_guard": {"enabled": True, "address": "10.0.0.1/32", "port": 22}})
    assert "warnings" not in run(plugin)


class _MitogenConnectionDouble:
    """TEST DOUBLE: stands for a connection plugin of Mitogen's strategy (its classes live in
    ansible_mitogen.*), recognised by the plugin through the class's MRO."""

    __module__ = "ansible_mitogen.connection"


def make_mitogen(args, transport):
    plugin = make(args, transport=transport)
    connection = type("MitogenConnection", (_MitogenConnectionDouble,), {})()
    connection.transport = transport
    connection._shell = mock.MagicMock(tmpdir=None)
    connection.reset = mock.MagicMock()
    plugin._connection = connection
    return plugin


class _FreshSshDouble:
    """TEST DOUBLE: Ansible's ssh connection plugin as the loader would hand it out: records its
    options, become plugin, reset and commands; runs nothing."""

    _load_name = "ssh"

    def __init__(self, rc=0):
        self.rc = rc
        self.events = []
        self.become = None
        self._shell = mock.MagicMock(tmpdir=None)

    def set_options(self, task_keys=None, var_options=None):
        self.events.append(("options", dict(var_options or {})))

    def set_become_plugin(self, plugin):
        self.become = plugin

    def reset(self):
        self.events.append(("reset",))

    def close(self):
        self.events.append(("close",))


def _armed(calls):
    def execute(module_name, module_args, task_vars):
        calls.append((module_name, module_args))
        return {"changed": True, "rollback": {"armed": True, "timeout": 30, "cookie": "/run/c", "marker": "/run/m", "deadline": 0}}
    return execute


def test_under_mitogen_over_ssh_the_rollback_is_confirmed_over_a_new_ssh_connection():
    plugin = make_mitogen({"rules": [{"port": 443, "sources": ["10.0.0.0/8"]}], "ssh_connection": "10.0.0.5 5 10.0.0.9 22"}, "ssh")
    plugin._play_context.become = True
    plugin._play_context.become_method = "sudo"
    plugin._play_context.become_pass = None
    plugin._play_context.password = None
    plugin._templar.template = lambda value: value
    calls, ran = [], []
    plugin._execute_module = mock.MagicMock(side_effect=_armed(calls))
    fresh = _FreshSshDouble()

    def low_level(self, command, sudoable=False):
        # Ansible's own method (not the one Mitogen mixes in), through the new connection, with
        # become, while Mitogen's is set aside.
        assert self is plugin and plugin._connection is fresh and sudoable is True
        ran.append(command)
        return {"rc": 0, "stdout": "", "stderr": ""}

    plugin._low_level_execute_command = mock.MagicMock(side_effect=AssertionError("Mitogen's method must not be used"))
    mitogen = plugin._connection
    # The real ssh plugin's option definitions (which variables set them), as loading it registers them.
    fresh._load_name = action.connection_loader.get("ssh", class_only=True)._load_name
    sudo = mock.MagicMock(_load_name="sudo")
    task_vars = {"ansible_host": "10.0.0.9", "ansible_user": "admin", "ansible_ssh_private_key_file": "/k", "unrelated": 1}
    with mock.patch.object(action.connection_loader, "get", return_value=fresh) as get_conn, \
            mock.patch.object(action.become_loader, "get", return_value=sudo), \
            mock.patch.object(action.ActionBase, "_low_level_execute_command", low_level), \
            mock.patch.object(action.ActionBase, "run", return_value={}):
        result = plugin.run(task_vars=task_vars)
    assert result.get("failed") is not True, result
    assert result["rollback"]["confirmed"] is True
    assert get_conn.call_args.args[0] == "ansible.builtin.ssh"
    assert ran == ["rm /run/c"]
    # Options from the task's variables (only the ssh plugin's), an old master stopped first, closed after.
    options = [e[1] for e in fresh.events if e[0] == "options"][0]
    assert options["ansible_host"] == "10.0.0.9" and options["ansible_user"] == "admin" and "unrelated" not in options
    assert [e[0] for e in fresh.events] == ["options", "reset", "close"]
    assert fresh.become is sudo
    assert plugin._connection is mitogen
    mitogen.reset.assert_not_called()
    assert [c[0] for c in calls] == [action.MODULE]


def test_under_mitogen_over_ssh_an_unconfirmed_change_is_rolled_back_and_fails(monkeypatch):
    plugin = make_mitogen({"rules": [{"port": 443, "sources": ["10.0.0.0/8"]}], "ssh_connection": ""}, "ssh")
    plugin._play_context.become = False
    plugin._play_context.password = None
    plugin._templar.template = lambda value: value
    plugin._execute_module = mock.MagicMock(side_effect=_armed([]))
    monkeypatch.setattr(action.time, "sleep", lambda s: None)
    with mock.patch.object(action.connection_loader, "get", side_effect=lambda *a, **k: _FreshSshDouble()), \
            mock.patch.object(action.ActionBase, "_low_level_execute_command",
                              lambda self, command, sudoable=False: {"rc": 255, "stdout": "", "stderr": "Connection timed out"}), \
            mock.patch.object(action.ActionBase, "run", return_value={}):
        result = plugin.run(task_vars={})
    assert result["failed"] is True and result["rollback"]["confirmed"] is False and result["rollback"]["rolled_back"] is True
    assert "could not reach the host again over a new connection" in result["msg"]


def test_under_mitogen_over_docker_the_rollback_is_confirmed_through_a_module_call():
    plugin = make_mitogen({"rules": [{"port": 443, "sources": ["10.0.0.0/8"]}], "ssh_connection": ""}, "docker")
    calls = []

    def execute(module_name, module_args, task_vars):
        calls.append((module_name, module_args))
        if module_name == action.MODULE:
            return {"changed": True, "rollback": {"armed": True, "timeout": 30, "cookie": "/run/c", "marker": "/run/m",
                                                  "deadline": 0}}
        return {"rc": 0, "stdout": "", "stderr": ""}

    plugin._execute_module = mock.MagicMock(side_effect=execute)
    result = run(plugin)
    assert result["rollback"]["confirmed"] is True
    assert calls[1] == ("ansible.legacy.command", {"argv": ["rm", "/run/c"]})
    plugin._connection.reset.assert_not_called()


def test_under_mitogen_over_ssh_the_guard_reads_ssh_connection_over_a_new_ssh_connection():
    """Mitogen's connection does not see the login's SSH_CONNECTION: without this the guard would
    be empty and a rule set without the controller would be applied (then rolled back)."""
    plugin = make_mitogen({"rules": [{"port": 443, "sources": ["10.0.0.0/8"]}]}, "ssh")
    plugin._play_context.become = True
    plugin._play_context.password = None
    plugin._templar.template = lambda value: value
    sent = []

    def execute(module_name, module_args, task_vars):
        sent.append(module_args)
        return {"changed": False, "rollback": {"armed": False}}

    plugin._execute_module = mock.MagicMock(side_effect=execute)

    def low_level(self, command, sudoable=False):
        assert plugin._connection.__class__ is _FreshSshDouble and sudoable is False
        return {"rc": 0, "stdout": "10.98.30.1 40000 10.98.30.11 22", "stderr": ""}

    with mock.patch.object(action.connection_loader, "get", side_effect=lambda *a, **k: _FreshSshDouble()), \
            mock.patch.object(action.ActionBase, "_low_level_execute_command", low_level), \
            mock.patch.object(action.ActionBase, "run", return_value={}):
        result = plugin.run(task_vars={})
    assert result.get("failed") is not True, result
    assert sent[0]["ssh_connection"] == "10.98.30.1 40000 10.98.30.11 22"
