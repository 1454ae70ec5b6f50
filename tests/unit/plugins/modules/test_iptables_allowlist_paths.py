"""iptables_allowlist paths that need no kernel: a host without iptables (in-process, with the
tool lookup answering "not found")."""
from ansible_collections.llmfleet.deepseek.plugins.modules import iptables_allowlist
from module_runner import run_module

RULES = [{"port": 443, "sources": ["10.0.0.0/8"]}]


def _run(monkeypatch, check, **args):
    monkeypatch.setattr(iptables_allowlist.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    args = dict(args, _ansible_check_mode=check, ssh_guard=False)
    return run_module(monkeypatch, iptables_allowlist, args, iptables_allowlist.Allowlist)


def test_check_on_a_host_without_iptables_predicts_the_change(monkeypatch):
    done = _run(monkeypatch, True, rules=RULES)
    assert done.failed is False and done.result["changed"] is True
    assert done.result["msg"] == "iptables is not installed yet: the whole allowlist would be created once it is"
    assert done.result["commands"] == {} and done.result["persist"] == {}


def test_apply_on_a_host_without_iptables_says_what_is_missing(monkeypatch):
    done = _run(monkeypatch, False, rules=RULES)
    assert done.failed is True
    assert done.result["msg"] == "iptables is not installed on this host: install the iptables package"


def test_absent_on_a_host_without_iptables_has_nothing_to_do(monkeypatch):
    done = _run(monkeypatch, False, state="absent")
    assert done.failed is False and done.result["changed"] is False


def test_bad_input_fails_before_any_tool_is_looked_up(monkeypatch):
    done = _run(monkeypatch, False, rules=[{"port": 443, "proto": "sctp", "sources": []}])
    assert done.failed is True and done.result["msg"] == "rules[0] (port 443): proto 'sctp' is not one of tcp, udp"


def test_every_iptables_command_runs_in_the_c_locale(monkeypatch):
    """iptables --version's and iptables-save's output is parsed: FAKE tools, the calls recorded."""
    calls = []

    def run_command(self, args, **kwargs):
        calls.append((args, kwargs.get("environ_update")))
        return 0, "iptables v1.8.9 (nf_tables)\n", ""

    monkeypatch.setattr(iptables_allowlist.AnsibleModule, "get_bin_path",
                        lambda self, name, *a, **k: "/nonexistent/sbin/iptables" if name == "iptables" else None)
    monkeypatch.setattr(iptables_allowlist.AnsibleModule, "run_command", run_command)
    done = run_module(monkeypatch, iptables_allowlist, dict(rules=RULES, ssh_guard=False), iptables_allowlist.Allowlist)
    assert done.failed and done.result["msg"] == "iptables-nft-save/-restore not found: install the iptables package"
    assert calls == [(["/nonexistent/sbin/iptables", "--version"], {"LANG": "C", "LC_ALL": "C"})]
