"""The allowlist seen from outside: from an allowed and a denied client, and from the controller
(this machine), whose SSH access rests on the guard alone. Then the rules survive a restart of
their unit and a reboot of the server, a drift check is silent, and a change that cuts the
controller off is rolled back by the server itself."""
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "_shared"))
import scenario  # noqa: E402  (molecule/_shared/scenario.py)

SERVER = "10.98.20.11"
SERVER6 = "fd00:98:20::11"
CONTROLLER = "10.98.20.1"
testinfra_hosts = ["fw-server"]
# The errno of a 3 s connect: 0 connected, 11 timed out (dropped), 111 refused.
PROBE = "python3 -c \"import socket; s=socket.socket(); s.settimeout(3); print(s.connect_ex(('%s', %d)))\""
PROBE6 = ("python3 -c \"import socket; s=socket.socket(socket.AF_INET6); s.settimeout(3);"
          " print(s.connect_ex(('%s', %d)))\"")
TIMED_OUT = "11"


def from_client(name, port):
    return scenario.node(name).check_output(PROBE % (SERVER, port))


def from_client6(name, port):
    return scenario.node(name).check_output(PROBE6 % (SERVER6, port))


def from_controller(port):
    s = socket.socket()
    s.settimeout(3)
    try:
        return s.connect_ex((SERVER, port))
    finally:
        s.close()


def playbook(name, *args):
    return scenario.playbook(name, *args, timeout=300)


def owned(host):
    out = host.check_output("iptables-save -t filter")
    return [line for line in out.splitlines() if "LLMFLEET" in line]


def test_allowed_client_reaches_the_ports_it_is_allowed():
    assert from_client("fw-allowed", 443) == "0"
    assert from_client("fw-allowed", 22) == "0"


def test_denied_client_is_dropped_everywhere():
    for port in (443, 22, 8080):
        assert from_client("fw-denied", port) == TIMED_OUT, port


def test_default_deny_drops_a_port_no_rule_names():
    assert from_client("fw-allowed", 8080) == TIMED_OUT


def test_ipv6_clients_get_the_same_allowlist():
    assert from_client6("fw-allowed", 443) == "0"
    assert from_client6("fw-denied", 443) == TIMED_OUT
    # SSH is allowed from the bastion's IPv4 address only: closed over IPv6, as is 8080.
    assert from_client6("fw-allowed", 22) == TIMED_OUT
    assert from_client6("fw-allowed", 8080) == TIMED_OUT


def test_controller_keeps_ssh_through_the_guard_and_nothing_more():
    assert from_controller(22) == 0
    assert from_controller(443) in (11, 110)  # timed out: not in firewall_edge_sources
    assert "-A LLMFLEET-INPUT -s %s/32 -p tcp -m tcp --dport 22 -j ACCEPT" % CONTROLLER in owned(_server())


def test_rules_are_in_their_own_chain_and_docker_user(host):
    rules = owned(host)
    assert rules[:2] == [":LLMFLEET-DOCKER - [0:0]", ":LLMFLEET-INPUT - [0:0]"]
    assert "-A INPUT -j LLMFLEET-INPUT" in rules and "-A DOCKER-USER -j LLMFLEET-DOCKER" in rules
    assert rules[-1] == "-A LLMFLEET-INPUT -j DROP"
    assert "-A LLMFLEET-DOCKER -s 10.98.20.12/32 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 -j RETURN" in rules


def test_drift_check_on_the_converged_server_is_silent():
    run = playbook("converge.yml", "--check", "--diff")
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"fw-server\s+: ok=\d+\s+changed=0 ", run.stdout), run.stdout


def test_restarting_the_unit_changes_nothing_and_reloads_lost_rules(host):
    before = owned(host)
    assert host.service("llmfleet-firewall.service").is_enabled
    host.check_output("systemctl restart llmfleet-firewall.service")
    assert owned(host) == before
    # Rules lost (as after a reboot): the unit puts them back, with their jumps.
    host.check_output("iptables -D INPUT -j LLMFLEET-INPUT && iptables -F LLMFLEET-INPUT && iptables -X LLMFLEET-INPUT")
    assert not any("LLMFLEET-INPUT" in line for line in owned(host))
    host.check_output("systemctl restart llmfleet-firewall.service")
    assert owned(host) == before
    assert from_client("fw-denied", 443) == TIMED_OUT


def test_rules_come_back_after_a_reboot(host):
    before = owned(host)
    subprocess.run(["docker", "restart", "fw-server"], check=True, capture_output=True, timeout=120)
    deadline = time.time() + 90
    while time.time() < deadline and from_controller(22) != 0:
        time.sleep(1)
    server = _server()
    server.run("systemctl is-system-running --wait")
    assert server.service("llmfleet-firewall.service").is_running or \
        server.run("systemctl is-active llmfleet-firewall.service").stdout.strip() == "active"
    assert owned(server) == before
    assert from_client("fw-denied", 443) == TIMED_OUT
    assert from_client("fw-allowed", 443) == "0"


def test_a_change_that_cuts_the_controller_off_is_rolled_back():
    server = _server()
    before = owned(server)
    saved = server.check_output("cat /etc/llmfleet/firewall/rules.ipv4")
    started = time.time()
    run = playbook("cutoff.yml")
    took = time.time() - started
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "could not reach the host again over a new connection within rollback_timeout (16 s)" in out, out
    assert "put the previous rules back" in out, out
    assert took >= 16, took
    assert from_controller(22) == 0
    assert owned(server) == before
    assert server.check_output("cat /etc/llmfleet/firewall/rules.ipv4") == saved
    assert from_client("fw-denied", 22) == TIMED_OUT


# --- a chain another tool made (issue 24): never flushed, filled or deleted -------------------------

BANS = [
    ":SITE-BANS - [0:0]",
    "-A INPUT -p tcp -m multiport --dports 22 -j SITE-BANS",
    "-A SITE-BANS -s 203.0.113.7/32 -j REJECT --reject-with icmp-port-unreachable",
    "-A SITE-BANS -s 198.51.100.0/24 -j DROP",
    "-A SITE-BANS -j RETURN",
]


def theirs(host):
    """iptables-save of both families without the allowlist's own lines and the counters."""
    out = []
    for tool in ("iptables-save", "ip6tables-save"):
        for line in host.check_output(tool).splitlines():
            if line.startswith("#") or "LLMFLEET" in line:
                continue
            out.append(re.sub(r"\[\d+:\d+\]$", "[0:0]", line))
    return out


def _server():
    # Not the `host` fixture: pytest reorders fixture-parametrised tests, and these must run in
    # file order, after the tests above.
    return scenario.node("fw-server")


def test_a_foreign_chain_survived_every_run_of_the_role():
    """Converge, idempotence, the check runs, the unit restarts, the reboot and the rolled-back
    cut-off all ran above: the fail2ban-like chain and its jump are exactly as the fixture made them."""
    lines = _server().check_output("iptables-save -t filter").splitlines()
    assert [x for x in lines if "SITE-BANS" in x] == BANS


def test_the_role_refuses_to_own_a_foreign_chain_and_changes_nothing():
    host = _server()
    before = theirs(host) + owned(host)
    run = playbook("converge.yml", "-e", "firewall_chain=SITE-BANS")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "chain SITE-BANS was not made by this module" in out and "nothing was changed" in out, out
    # Named like a fail2ban chain: refused by the role's first check, on the controller.
    run = playbook("converge.yml", "-e", "firewall_chain=f2b-sshd")
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "firewall_chain 'f2b-sshd' is not a name this module can own" in out, out
    assert "named like a chain of fail2ban" in out, out
    assert "Install iptables" not in run.stdout and "Make the owned chains" not in run.stdout, run.stdout
    assert theirs(host) + owned(host) == before


def test_state_absent_removes_only_ours_and_leaves_the_foreign_chain_byte_for_byte():
    host = _server()
    before = theirs(host)
    assert any("LLMFLEET" in x for x in host.check_output("iptables-save").splitlines())
    run = playbook("converge.yml", "-e", "firewall_state=absent")
    assert run.returncode == 0, run.stdout + run.stderr
    assert not any("LLMFLEET" in x for x in host.check_output("iptables-save").splitlines())
    assert not any("LLMFLEET" in x for x in host.check_output("ip6tables-save").splitlines())
    assert theirs(host) == before
    assert [x for x in host.check_output("iptables-save -t filter").splitlines() if "SITE-BANS" in x] == BANS
    # Back to the converged state, so the order of the tests does not matter.
    run = playbook("converge.yml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert any("LLMFLEET" in x for x in host.check_output("iptables-save").splitlines())
