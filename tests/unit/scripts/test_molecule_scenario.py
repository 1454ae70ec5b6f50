"""molecule/_shared/scenario.py: the helpers every Molecule scenario's testinfra tests import (the
scenario's paths, ansible-playbook runs, the PLAY RECAP, the edge probe), without Molecule."""
import http.client
import importlib.util
import os
import pathlib
import shlex
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("molecule_scenario", ROOT / "molecule" / "_shared" / "scenario.py")
scenario = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenario)

RECAP = """\
TASK [Say so] ******************************************************************
ok: [fleet-node-1] => changed=false

PLAY RECAP *********************************************************************
fleet-node-1               : ok=95   changed=0    unreachable=0    failed=0    skipped=41   rescued=0    ignored=0
fleet-node-2               : ok=97   changed=6    unreachable=0    failed=1    skipped=40   rescued=0    ignored=1
localhost                  : ok=2    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
"""


def _run(stdout="", stderr="", returncode=0):
    return subprocess.CompletedProcess(["ansible-playbook"], returncode, stdout, stderr)


@pytest.fixture
def molecule_env(monkeypatch, tmp_path):
    scenario_dir = tmp_path / "molecule" / "demo"
    scenario_dir.mkdir(parents=True)
    monkeypatch.setenv("LLMFLEET_SCENARIO_DIR", str(scenario_dir))
    monkeypatch.setenv("MOLECULE_INVENTORY_FILE", "/eph/inventory/ansible_inventory.yml")
    monkeypatch.setenv("MOLECULE_EPHEMERAL_DIRECTORY", "/eph")
    return scenario_dir


def test_paths_come_from_the_verifier_environment(molecule_env, tmp_path):
    assert scenario.scenario_dir() == str(molecule_env)
    assert scenario.project_dir() == str(tmp_path)
    assert scenario.inventory() == "/eph/inventory/ansible_inventory.yml"
    assert scenario.ephemeral_dir() == "/eph"


def test_the_environment_is_read_when_asked_not_on_import(monkeypatch):
    monkeypatch.delenv("LLMFLEET_SCENARIO_DIR", raising=False)
    with pytest.raises(KeyError):
        scenario.scenario_dir()


def test_playbook_runs_the_scenario_playbook_on_its_inventory(molecule_env, monkeypatch):
    calls = []
    monkeypatch.setattr(scenario.subprocess, "run", lambda cmd, **kwargs: calls.append((cmd, kwargs)) or _run())
    scenario.playbook("converge.yml", "--check", "--diff")
    scenario.playbook("/abs/playbooks/drift.yml", "-e", "x=1", timeout=300, env={"A": "1"})
    assert calls[0] == (["ansible-playbook", "-i", "/eph/inventory/ansible_inventory.yml",
                         os.path.join(str(molecule_env), "converge.yml"), "--check", "--diff"],
                        {"capture_output": True, "text": True, "timeout": 900, "check": False, "env": None})
    assert calls[1][0] == ["ansible-playbook", "-i", "/eph/inventory/ansible_inventory.yml", "/abs/playbooks/drift.yml",
                           "-e", "x=1"]
    assert calls[1][1]["timeout"] == 300 and calls[1][1]["env"] == {"A": "1"}


def test_a_failed_playbook_is_returned_not_raised(molecule_env, monkeypatch):
    monkeypatch.setattr(scenario.subprocess, "run", lambda cmd, **kwargs: _run("out", "err", 2))
    run = scenario.playbook("converge.yml")
    assert run.returncode == 2 and run.stdout == "out" and run.stderr == "err"


def test_extra_vars_pass_strings_as_they_are_and_the_rest_as_json():
    assert scenario.extra_vars() == []
    assert scenario.extra_vars('{"a": 1}', {"b": [1, "x"]}, "c=d") == ["-e", '{"a": 1}', "-e", '{"b": [1, "x"]}', "-e", "c=d"]


def test_node_is_the_inventory_host_through_ansible(molecule_env, monkeypatch):
    seen = []
    monkeypatch.setattr(scenario.testinfra, "get_host", lambda spec, **kwargs: seen.append((spec, kwargs)) or "HOST")
    assert scenario.node("fleet-node-2") == "HOST"
    assert seen == [("ansible://fleet-node-2", {"ansible_inventory": "/eph/inventory/ansible_inventory.yml"})]


def test_flat_folds_the_whitespace_of_both_streams():
    assert scenario.flat(_run("a  long\n  message ", "\tand more\n")) == "a long message and more"


def test_recap_reads_each_host_in_order():
    recap = scenario.recap(_run(RECAP))
    assert list(recap) == ["fleet-node-1", "fleet-node-2", "localhost"]
    assert recap["fleet-node-2"] == {"ok": 97, "changed": 6, "unreachable": 0, "failed": 1, "skipped": 40,
                                     "rescued": 0, "ignored": 1}
    assert [h["changed"] for h in recap.values()] == [0, 6, 0]


def test_recap_reads_a_coloured_run_and_nothing_from_a_run_without_one():
    coloured = ("PLAY RECAP *****\n\x1b[0;33mfleet-node-1\x1b[0m               : \x1b[0;32mok=3   \x1b[0m "
                "\x1b[0;33mchanged=1   \x1b[0m unreachable=0    failed=0    skipped=0\n")
    assert scenario.recap(_run(coloured)) == {"fleet-node-1": {"ok": 3, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 0}}
    assert scenario.recap(_run("ERROR! the playbook could not be found\n")) == {}
    # stderr is not read: the recap is on stdout.
    assert scenario.recap(_run("", RECAP)) == {}


def test_uncolored_drops_ansi_codes_only():
    assert scenario.uncolored("\x1b[0;31mfatal: [x]\x1b[0m: FAILED! [1]") == "fatal: [x]: FAILED! [1]"


class _Response:
    def __init__(self, status, body):
        self.status = status
        self._body = body

    def read(self):
        return self._body


class _Connection:
    """http.client.HTTPSConnection as the edge would answer: 401 without a key."""
    requests = []

    def __init__(self, host, port, context=None, timeout=None):
        self.target = (host, port, timeout, context is not None)

    def request(self, method, path, headers=None):
        _Connection.requests.append((self.target, method, path, headers))
        self.authorized = "Authorization" in headers

    def getresponse(self):
        return _Response(200, b'{"data": []}\n') if self.authorized else _Response(401, b"{}")


def _probe_output(command, monkeypatch, capsys):
    """Runs the probe's Python (as the instance's shell would pass it) against _Connection."""
    argv = shlex.split(command)
    assert argv[:2] == ["python3", "-c"] and len(argv) == 3, argv
    _Connection.requests = []
    monkeypatch.setattr(http.client, "HTTPSConnection", _Connection)
    exec(compile(argv[2], "<edge probe>", "exec"), {})  # pylint: disable=exec-used
    return capsys.readouterr().out


def test_edge_probe_prints_the_status_and_body(monkeypatch, capsys):
    out = _probe_output(scenario.edge_probe(key="fleet-test-0123"), monkeypatch, capsys)
    assert out == '200 {"data": []}\n'
    assert _Connection.requests == [(("127.0.0.1", 443, 5, True), "GET", "/v1/models",
                                     {"Authorization": "Bearer fleet-test-0123"})]
    out = _probe_output(scenario.edge_probe("/healthz"), monkeypatch, capsys)
    assert out == "401 {}\n" and _Connection.requests[0][2:] == ("/healthz", {})


def test_edge_probes_label_each_line(monkeypatch, capsys):
    out = _probe_output(scenario.edge_probes(("/v1/models", ""), ("/v1/models", "k-1"), ("/healthz", "")), monkeypatch, capsys)
    assert out.splitlines() == ["/v1/models nokey 401 {}", '/v1/models key 200 {"data": []}', "/healthz nokey 401 {}"]
