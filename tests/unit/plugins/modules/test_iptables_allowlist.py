"""iptables_allowlist against the real iptables tools, nf_tables and legacy backends, each test in
a network namespace of its own (root only: CI runs as root; elsewhere these tests fail, they are
never skipped)."""
import ipaddress
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[4]
MODULE = ROOT / "plugins" / "modules" / "iptables_allowlist.py"
COLLECTIONS = ROOT / ".cache" / "unit-collections"  # made by tests/unit/conftest.py

RULES = [
    {"port": 443, "proto": "tcp", "sources": ["10.20.0.0/16", "2001:db8:20::/48"]},
    {"port": 22, "proto": "tcp", "sources": ["10.0.0.10"]},
    {"port": 53, "proto": "udp", "sources": []},
]


class Netns:
    """A named network namespace, with iptables pointed at one backend."""

    def __init__(self, backend, tmp_path):
        self.name = "llut-%s" % uuid.uuid4().hex[:8]
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        # The module picks its backend from what `iptables` resolves to, as on a host where
        # update-alternatives chose it.
        os.symlink(shutil.which("iptables-%s" % backend) or "/usr/sbin/iptables-%s" % backend, self.bin / "iptables")
        self.backend = backend
        self.tmp = tmp_path
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.sh("ip link set lo up")

    def sh(self, command, env=None):
        full = dict(os.environ, PATH="%s:%s" % (self.bin, os.environ.get("PATH", "/usr/bin:/bin")))
        full.pop("SSH_CONNECTION", None)  # only a test's own env says where "the controller" is
        full.update(env or {})
        return subprocess.run(["ip", "netns", "exec", self.name, "sh", "-c", command],
                              env=full, capture_output=True, text=True, check=False)

    def save(self, family="ipv4"):
        tool = "%s-%s-save" % ("iptables" if family == "ipv4" else "ip6tables", self.backend)
        out = self.sh(tool)
        assert out.returncode == 0, out.stderr
        return [line for line in out.stdout.splitlines() if line and not line.startswith("#")]

    def module(self, check=False, diff=True, env=None, **args):
        args.setdefault("rollback_timeout", 0)
        # The guard reads SSH_CONNECTION from the module's ancestors too: only the guard tests,
        # which say where "the controller" is, turn it on.
        args.setdefault("ssh_guard", False)
        args["_ansible_check_mode"] = check
        args["_ansible_diff"] = diff
        path = self.tmp / ("args-%s.json" % uuid.uuid4().hex[:6])
        path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        env = dict(env or {}, PYTHONPATH=str(COLLECTIONS))
        out = self.sh("%s %s %s" % (sys.executable, MODULE, path), env=env)
        try:
            return json.loads(out.stdout)
        except ValueError:
            raise AssertionError("module output is not JSON: %s %s" % (out.stdout, out.stderr))

    def close(self):
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


@pytest.fixture(params=["nft", "legacy"])
def ns(request, tmp_path):
    if os.geteuid() != 0:
        pytest.fail("these tests need root (network namespaces and iptables)")
    n = Netns(request.param, tmp_path)
    yield n
    n.close()


def ancestors_ssh_connection():
    """What the module would find above it when its own environment has no SSH_CONNECTION:
    this test process's and its ancestors' (an SSH login running the tests)."""
    pid = os.getpid()
    while pid > 1:
        try:
            env = pathlib.Path("/proc/%d/environ" % pid).read_bytes().split(b"\0")
            stat = pathlib.Path("/proc/%d/stat" % pid).read_text()
        except OSError:
            return None
        for item in env:
            if item.startswith(b"SSH_CONNECTION="):
                return item.split(b"=", 1)[1].decode()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return None


def owned(lines):
    return [x for x in lines if "LLMFLEET" in x]


def foreign(lines):
    return [x for x in lines if "LLMFLEET" not in x]


def test_apply_is_exact_then_a_second_run_changes_nothing(ns):
    first = ns.module(rules=RULES)
    assert first["changed"] is True, first
    assert first["backend"] == ns.backend
    v4 = ns.save()
    assert "-A INPUT -j LLMFLEET-INPUT" in v4
    assert owned(v4) == [
        ":LLMFLEET-INPUT - [0:0]",
        "-A INPUT -j LLMFLEET-INPUT",
        "-A LLMFLEET-INPUT -m comment --comment llmfleet-deepseek-iptables_allowlist",
        "-A LLMFLEET-INPUT -i lo -j ACCEPT",
        "-A LLMFLEET-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A LLMFLEET-INPUT -s 10.20.0.0/16 -p tcp -m tcp --dport 443 -j ACCEPT",
        "-A LLMFLEET-INPUT -s 10.0.0.10/32 -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A LLMFLEET-INPUT -p tcp -m tcp --dport 443 -j DROP",
        "-A LLMFLEET-INPUT -p tcp -m tcp --dport 22 -j DROP",
        "-A LLMFLEET-INPUT -p udp -m udp --dport 53 -j DROP",
    ]
    v6 = ns.save("ipv6")
    assert "-A LLMFLEET-INPUT -s 2001:db8:20::/48 -p tcp -m tcp --dport 443 -j ACCEPT" in v6
    assert "-A LLMFLEET-INPUT -p tcp -m tcp --dport 22 -j DROP" in v6
    second = ns.module(rules=RULES)
    assert second["changed"] is False, second
    assert "transactions" not in second
    assert ns.save() == v4


def test_check_mode_reports_the_exact_change_and_applies_nothing(ns):
    ns.module(rules=RULES)
    before = ns.save()
    wanted = RULES + [{"port": 8443, "sources": ["192.0.2.0/24"]}]
    check = ns.module(check=True, rules=wanted)
    assert check["changed"] is True
    assert "-A LLMFLEET-INPUT -s 192.0.2.0/24 -p tcp -m tcp --dport 8443 -j ACCEPT" in check["diff"][0]["after"]
    assert "8443" not in check["diff"][0]["before"]
    assert ns.save() == before
    fresh = ns.module(check=True, rules=wanted, state="absent")
    assert fresh["changed"] is True and ns.save() == before


def test_docker_and_user_rules_survive_and_absent_removes_only_ours(ns):
    ns.sh("iptables -N USER-CHAIN && iptables -A USER-CHAIN -s 192.0.2.1 -j ACCEPT && "
          "iptables -A INPUT -j USER-CHAIN && iptables -A INPUT -p tcp --dport 25 -j DROP && "
          "iptables -N DOCKER-USER && iptables -A DOCKER-USER -s 198.51.100.0/24 -j DROP && "
          "iptables -A DOCKER-USER -j RETURN && iptables -A FORWARD -j DOCKER-USER && "
          "iptables -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80")
    theirs = foreign(ns.save())
    result = ns.module(rules=RULES, docker_user=True)
    assert result["changed"] is True
    after = ns.save()
    assert foreign([x for x in after if "-j LLMFLEET" not in x]) == theirs
    assert after.index("-A INPUT -j LLMFLEET-INPUT") < after.index("-A INPUT -j USER-CHAIN")
    assert after.index("-A DOCKER-USER -j LLMFLEET-DOCKER") < after.index("-A DOCKER-USER -s 198.51.100.0/24 -j DROP")
    assert "-A LLMFLEET-DOCKER -s 10.20.0.0/16 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 -j RETURN" in after
    assert ns.module(rules=RULES, docker_user=True)["changed"] is False
    # docker_user off again: the Docker chain and its jump go, the rest stays.
    assert ns.module(rules=RULES)["changed"] is True
    assert not any("LLMFLEET-DOCKER" in x for x in ns.save())
    gone = ns.module(state="absent")
    assert gone["changed"] is True
    assert ns.save() == theirs
    assert ns.module(state="absent")["changed"] is False


def test_hand_made_drift_is_reported_then_put_right(ns):
    ns.module(rules=RULES)
    good = ns.save()
    # Inserted first, before the marker rule: still our chain, put right.
    ns.sh("iptables -I LLMFLEET-INPUT 1 -s 203.0.113.0/24 -j ACCEPT && iptables -A INPUT -j LLMFLEET-INPUT")
    check = ns.module(check=True, rules=RULES)
    assert check["changed"] is True
    assert "-A LLMFLEET-INPUT -s 203.0.113.0/24 -j ACCEPT" in check["diff"][0]["before"]
    assert "203.0.113.0/24" not in check["diff"][0]["after"]
    assert "-D INPUT -j LLMFLEET-INPUT" in check["transactions"]["ipv4"]
    assert ns.module(rules=RULES)["changed"] is True
    assert ns.save() == good


def test_bad_input_fails_before_anything_changes(ns):
    ns.module(rules=RULES)
    before = ns.save()
    bad = ns.module(rules=RULES + [{"port": 8443, "sources": ["10.0.0.1/8"]}])
    assert bad["failed"] is True
    assert bad["msg"] == "rules[3] (port 8443): source '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?"
    assert ns.save() == before
    ssh = ns.module(rules=[{"port": 22, "sources": []}])
    assert ssh["failed"] is True and "drops SSH (port 22) from everywhere" in ssh["msg"]
    assert ns.save() == before


def test_ssh_guard_accepts_the_connection_first_unless_a_rule_covers_it(ns):
    env = {"SSH_CONNECTION": "198.51.100.9 50122 10.0.0.5 22"}
    result = ns.module(rules=RULES, default_deny=True, env=env, ssh_guard=True)
    assert result["ssh_guard"]["address"] == "198.51.100.9/32" and result["ssh_guard"]["port"] == 22
    lines = owned(ns.save())
    guard = "-A LLMFLEET-INPUT -s 198.51.100.9/32 -p tcp -m tcp --dport 22 -j ACCEPT"
    assert lines.index(guard) < lines.index("-A LLMFLEET-INPUT -p tcp -m tcp --dport 22 -j DROP")
    assert lines[-1] == "-A LLMFLEET-INPUT -j DROP"
    covered = ns.module(rules=RULES, env={"SSH_CONNECTION": "10.0.0.10 50122 10.0.0.5 22"}, ssh_guard=True)
    assert covered["ssh_guard"]["covered_by"] == "10.0.0.10/32"
    assert not any("198.51.100.9" in x for x in ns.save())
    above = ancestors_ssh_connection()
    nothing = ns.module(rules=RULES, ssh_guard=True)
    if above is None:
        assert nothing["ssh_guard"]["address"] is None and "nothing to guard" in nothing["ssh_guard"]["reason"]
    else:  # the tests themselves run in an SSH login: the module finds that one
        assert nothing["ssh_guard"]["address"] == ipaddress.ip_network(above.split()[0].split("%")[0]).with_prefixlen
    off = ns.module(rules=RULES, ssh_guard=False, env=env)
    assert off["ssh_guard"] == {"enabled": False, "address": None, "port": None, "reason": "ssh_guard is false"}


def test_unconfirmed_change_is_rolled_back(ns):
    ns.module(rules=RULES)
    before = ns.save()
    result = ns.module(rules=[{"port": 22, "sources": ["192.0.2.50"]}], rollback_timeout=2)
    assert result["changed"] is True and result["rollback"]["armed"] is True
    assert "192.0.2.50/32" in "\n".join(ns.save())
    deadline = time.time() + 8
    while time.time() < deadline and not os.path.exists(result["rollback"]["marker"]):
        time.sleep(0.2)
    assert os.path.exists(result["rollback"]["marker"]), "the watcher did not roll back"
    assert ns.save() == before
    os.remove(result["rollback"]["marker"])


def test_confirmed_change_stays(ns):
    ns.module(rules=RULES)
    result = ns.module(rules=[{"port": 22, "sources": ["192.0.2.50"]}], rollback_timeout=2)
    applied = ns.save()
    os.remove(result["rollback"]["cookie"])  # what the action plugin does over a new connection
    time.sleep(3)
    assert ns.save() == applied
    assert not os.path.exists(result["rollback"]["marker"])
    assert not any(p.name.startswith("restore-") and result["rollback"]["cookie"].split("pending-")[1] in p.name
                   for p in pathlib.Path(result["rollback"]["cookie"]).parent.iterdir())


def test_guard_takes_the_login_shells_ssh_connection_first(ns):
    """What the action plugin reads without become wins over the module's own environment."""
    result = ns.module(rules=RULES, ssh_guard=True, ssh_connection="203.0.113.5 40000 10.0.0.5 22",
                       env={"SSH_CONNECTION": "198.51.100.9 50122 10.0.0.5 22"})
    assert result["ssh_guard"]["address"] == "203.0.113.5/32"
    assert result["ssh_guard"]["reason"] == "SSH_CONNECTION of the task's login shell"
    assert "-A LLMFLEET-INPUT -s 203.0.113.5/32 -p tcp -m tcp --dport 22 -j ACCEPT" in ns.save()


def test_rules_in_the_other_backend_are_reported_never_touched(ns):
    other = "legacy" if ns.backend == "nft" else "nft"
    ns.sh("iptables-%s -A INPUT -s 192.0.2.1/32 -j ACCEPT" % other)
    result = ns.module(rules=RULES)
    assert result["backend"] == ns.backend
    assert "iptables-%s also holds 1 rule(s)" % other in str(result.get("warnings")), result.get("warnings")
    out = ns.sh("iptables-%s-save -t filter" % other).stdout
    assert "-A INPUT -s 192.0.2.1/32 -j ACCEPT" in out and "LLMFLEET" not in out


def test_persisted_files_follow_the_rules_and_roll_back_with_them(ns):
    keep = ns.tmp / "persist"
    first = ns.module(rules=RULES, persist_dir=str(keep))
    v4 = keep / "rules.ipv4"
    assert first["changed"] is True and first["files"] == [str(keep / "rules.ipv4"), str(keep / "rules.ipv6")]
    assert v4.read_text() == first["persist"]["ipv4"]
    assert oct(v4.stat().st_mode & 0o777) == "0o600"
    assert ns.sh("iptables-%s-restore --test --noflush %s" % (ns.backend, v4)).returncode == 0
    assert ns.module(rules=RULES, persist_dir=str(keep))["changed"] is False
    # A file lost by hand is a change (rules unchanged), with its diff.
    v4.unlink()
    check = ns.module(check=True, rules=RULES, persist_dir=str(keep))
    assert check["changed"] is True and "transactions" not in check
    assert check["diff"][1]["before_header"].endswith("(absent)") and "LLMFLEET-INPUT" in check["diff"][1]["after"]
    assert not v4.exists()
    ns.module(rules=RULES, persist_dir=str(keep))
    saved = v4.read_text()
    # An unconfirmed change: rules and files come back together.
    moved = ns.module(rules=[{"port": 22, "sources": ["192.0.2.50"]}], rollback_timeout=2, persist_dir=str(keep))
    assert "192.0.2.50" in v4.read_text()
    deadline = time.time() + 8
    while time.time() < deadline and not os.path.exists(moved["rollback"]["marker"]):
        time.sleep(0.2)
    assert v4.read_text() == saved
    os.remove(moved["rollback"]["marker"])
    gone = ns.module(state="absent", persist_dir=str(keep))
    assert gone["changed"] is True and not keep.exists()


# --- chains this module did not make (issue 24, class 1) --------------------------------------------

F2B = ("iptables -N {c} && iptables -A {c} -s 203.0.113.7/32 -j REJECT --reject-with icmp-port-unreachable && "
       "iptables -A {c} -s 198.51.100.0/24 -j DROP && iptables -A {c} -j RETURN && "
       "iptables -I INPUT 1 -p tcp -m multiport --dports 22 -j {c}")


def full_save(ns, family="ipv4"):
    """Every table, counters left out of the comparison (iptables-save -c is not used)."""
    tool = "%s-%s-save" % ("iptables" if family == "ipv4" else "ip6tables", ns.backend)
    out = ns.sh(tool)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("chain", ["F2B-SITE", "SITE-CHAIN", "LLMFLEET-INPUT"])
def test_a_chain_another_tool_made_is_never_flushed_or_deleted(ns, chain):
    """A fail2ban-like chain with bans, jumped to from INPUT: named as `chain`, every state and
    check mode are refused naming it, and iptables-save is byte for byte the same afterwards."""
    assert ns.sh(F2B.format(c=chain)).returncode == 0
    before, before6 = full_save(ns), full_save(ns, "ipv6")
    for args in ({"rules": RULES}, {"rules": RULES, "check": True}, {"state": "absent"},
                 {"state": "absent", "check": True}, {"rules": RULES, "docker_user": True}):
        args = dict(args)
        result = ns.module(chain=chain, check=args.pop("check", False), **args)
        assert result["failed"] is True, result
        if chain == "F2B-SITE":  # refused on the name alone (a fail2ban chain), before the host is read
            assert "chain 'F2B-SITE' is not a name this module can own" in result["msg"], result["msg"]
        else:
            assert "chain %s was not made by this module" % chain in result["msg"], result["msg"]
            assert "nothing was changed" in result["msg"] and result["foreign_chains"] == [chain]
        assert full_save(ns) == before and full_save(ns, "ipv6") == before6


def test_a_foreign_chain_with_our_docker_chains_name_is_refused(ns):
    ns.sh("iptables -N LLMFLEET-DOCKER && iptables -A LLMFLEET-DOCKER -s 192.0.2.0/24 -j ACCEPT")
    before = full_save(ns)
    for state in ("present", "absent"):
        result = ns.module(rules=RULES, state=state)
        assert result["failed"] is True
        assert "chain LLMFLEET-DOCKER was not made by this module" in result["msg"], result["msg"]
        assert full_save(ns) == before


def test_an_empty_chain_someone_made_is_not_ours(ns):
    ns.sh("iptables -N LLMFLEET-INPUT")
    before = full_save(ns)
    result = ns.module(rules=RULES)
    assert result["failed"] is True and "exists and is empty" in result["msg"]
    assert full_save(ns) == before


def test_a_chain_an_earlier_version_made_is_adopted_and_marked(ns):
    """Chains made before the marker rule (same rules, no marker) stay manageable: the next run
    adds the marker, and a foreign rule among them would make the chain not ours."""
    old = [line for line in ns.module(rules=RULES, check=True)["transactions"]["ipv4"].splitlines()
           if "--comment" not in line]
    assert ns.sh("%s-%s-restore --noflush <<'EOF'\n%s\nEOF" % ("iptables", ns.backend, "\n".join(old))).returncode == 0
    assert not any("--comment" in line for line in ns.save())
    result = ns.module(rules=RULES)
    assert result["changed"] is True and result.get("failed") is not True, result
    assert "-A LLMFLEET-INPUT -m comment --comment llmfleet-deepseek-iptables_allowlist" in ns.save()
    assert ns.module(rules=RULES)["changed"] is False
    # The old form plus one rule no version of this module writes: someone else's chain now.
    ns.module(state="absent")
    tampered = old[:-1] + ["-A LLMFLEET-INPUT -j LOG", "COMMIT"]
    assert ns.sh("%s-%s-restore --noflush <<'EOF'\n%s\nEOF" % ("iptables", ns.backend, "\n".join(tampered))).returncode == 0
    refused = ns.module(state="absent")
    assert refused["failed"] is True and "was not made by this module" in refused["msg"]
